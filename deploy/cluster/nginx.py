"""Rendering of deploy/nginx templates, the same files the compose load balancer uses.

The nginx image substitutes ``${LB_*}`` with envsubst (``NGINX_ENVSUBST_FILTER=^LB_``); this does
the same substitution, but strictly: a placeholder without a value is an error, not an empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

NGINX_DIR = Path(__file__).resolve().parent.parent / "nginx"
SITE_TEMPLATE = NGINX_DIR / "till.conf.template"
MAIN_TEMPLATE = NGINX_DIR / "standalone.conf.template"
PLACEHOLDER = re.compile(r"\$\{(LB_[A-Z0-9_]+)\}")


def placeholders(template: str) -> set[str]:
    return set(PLACEHOLDER.findall(template))


def render(template: str, values: Mapping[str, str]) -> str:
    missing = sorted(placeholders(template) - values.keys())
    if missing:
        raise KeyError(f"no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def upstream_servers(addresses: list[str]) -> str:
    return " ".join(f"server {a} max_fails=3 fail_timeout=10s;" for a in addresses)


def write_config(prefix: Path, listen: str, gateways: list[str]) -> Path:
    """Render the site and the standalone main config under ``prefix``; returns the main config."""
    for sub in ("tmp", "logs"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    site = prefix / "till.conf"
    site.write_text(render(SITE_TEMPLATE.read_text(),
                           {"LB_LISTEN": listen, "LB_UPSTREAM_SERVERS": upstream_servers(gateways),
                            # replicas are addresses, never looked up; the directive must still parse
                            "LB_RESOLVER": "127.0.0.1"}))
    main = prefix / "nginx.conf"
    main.write_text(render(MAIN_TEMPLATE.read_text(), {"LB_PREFIX": str(prefix), "LB_SITE": str(site)}))
    return main
