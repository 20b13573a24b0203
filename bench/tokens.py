"""Personal tokens for the bench, minted with auth's own domain function (what ``till tokens mint`` runs)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from deploy.cluster import service_environ

if TYPE_CHECKING:
    from till_auth.operations import MintedToken


def mint_pats(settings: Mapping[str, str], email: str, n: int) -> list[MintedToken]:
    """``n`` personal tokens of ``email`` against the auth database ``settings`` name."""
    from till_auth.operations import mint_token
    from till_auth.settings import AuthSettings
    from till_common.settings import load_settings

    auth = load_settings(AuthSettings, service_environ("auth", settings, base={}))

    async def mint() -> list[MintedToken]:
        return [await mint_token(auth, email) for _ in range(n)]

    return asyncio.run(mint())
