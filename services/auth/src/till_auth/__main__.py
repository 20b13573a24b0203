"""``till-auth``: serve the auth service."""

from __future__ import annotations

from till_auth.app import create_app
from till_auth.settings import AuthSettings
from till_common.serve import service_main
from till_db.engine import preflight


async def _preflight(settings: AuthSettings) -> None:
    await preflight(settings.auth_database_url, "TILL_AUTH_DATABASE_URL")


def main(argv: list[str] | None = None) -> None:
    service_main("till-auth", AuthSettings, default_port=8001, create_app=create_app,
                 preflight=_preflight, argv=argv)


if __name__ == "__main__":
    main()
