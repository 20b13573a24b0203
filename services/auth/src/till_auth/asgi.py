"""``uvicorn --factory till_auth.asgi:app``: settings from the environment, read once."""

from __future__ import annotations

import os

from litestar import Litestar

from till_auth.app import create_app
from till_auth.settings import AuthSettings
from till_common.settings import load_settings


def app() -> Litestar:
    return create_app(load_settings(AuthSettings, os.environ))
