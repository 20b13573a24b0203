"""``uvicorn --factory till_tools.asgi:app``: settings from the environment, read once."""

from __future__ import annotations

import os

from litestar import Litestar

from till_common.settings import load_settings
from till_tools.app import create_app
from till_tools.settings import ToolsSettings


def app() -> Litestar:
    return create_app(load_settings(ToolsSettings, os.environ))
