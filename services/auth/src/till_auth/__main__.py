"""``till-auth``: serve the auth service."""

from __future__ import annotations

from sqlalchemy import inspect

from till_auth.app import create_app
from till_auth.keys import KeyRing
from till_auth.settings import AuthSettings
from till_common.serve import service_main
from till_db.engine import make_engine, preflight, sessionmaker


async def check_keys(settings: AuthSettings) -> None:
    """A wrong TILL_KEY_ENCRYPTION_KEY stops start-up in one line (SC-01), before serving anything."""
    engine = make_engine(settings.auth_database_url, "TILL_AUTH_DATABASE_URL")
    try:
        async with engine.connect() as conn:
            has_table = await conn.run_sync(lambda c: inspect(c).has_table("signing_keys"))
        if has_table:
            ring = KeyRing(sessionmaker(engine), settings.key_encryption_key, token_ttl=settings.access_token_ttl,
                           activation_delay=settings.key_activation_delay)
            await ring.check()
    finally:
        await engine.dispose()


async def _preflight(settings: AuthSettings) -> None:
    await preflight(settings.auth_database_url, "TILL_AUTH_DATABASE_URL")
    await check_keys(settings)


def main(argv: list[str] | None = None) -> None:
    service_main("till-auth", AuthSettings, default_port=8001, create_app=create_app,
                 preflight=_preflight, argv=argv)


if __name__ == "__main__":
    main()
