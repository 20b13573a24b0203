"""``till-gateway``: serve the public MCP gateway; ``--port`` runs replicas side by side."""

from __future__ import annotations

from till_common.serve import service_main
from till_gateway.app import create_app
from till_gateway.settings import GatewaySettings


def main(argv: list[str] | None = None) -> None:
    service_main("till-gateway", GatewaySettings, default_port=8000, create_app=create_app, argv=argv)


if __name__ == "__main__":
    main()
