"""The root conftest's helpers, loaded by path (a nested conftest shadows the name ``conftest``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "till_root_conftest"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).resolve().parents[3] / "conftest.py")
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _module
    _spec.loader.exec_module(_module)
_root = sys.modules[_NAME]

Service = _root.Service
clean_environ = _root.clean_environ
free_port = _root.free_port
wait_http = _root.wait_http
