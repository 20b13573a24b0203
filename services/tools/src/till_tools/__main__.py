"""``till-tools``: serve the tools service."""

from __future__ import annotations

from till_common.serve import service_main
from till_db.engine import preflight
from till_tools.app import create_app
from till_tools.settings import ToolsSettings


async def _preflight(settings: ToolsSettings) -> None:
    await preflight(settings.tools_database_url, "TILL_TOOLS_DATABASE_URL")


def main(argv: list[str] | None = None) -> None:
    service_main("till-tools", ToolsSettings, default_port=8002, create_app=create_app,
                 preflight=_preflight, argv=argv)


if __name__ == "__main__":
    main()
