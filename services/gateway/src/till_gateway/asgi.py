"""``uvicorn --factory till_gateway.asgi:app``: settings from the environment, read once."""

from __future__ import annotations

import os

from litestar import Litestar

from till_common.settings import load_settings
from till_gateway.app import create_app
from till_gateway.settings import GatewaySettings


def app() -> Litestar:
    return create_app(load_settings(GatewaySettings, os.environ))
