"""The gateway's periodic JWKS refresh (FT-11, FT-08): retired keys go, a failed fetch keeps the keys."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from till_common.errors import Unavailable
from till_common.jwt import JwksCache
from till_common.protocol.internal import RevocationPage
from till_gateway.background import Background
from till_gateway.revocations import RevocationState
from till_gateway.sessions import SessionHub

OLD, NEW = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())


def jwks(*pairs: tuple[str, Any]) -> bytes:
    return json.dumps({"keys": [{**json.loads(ECAlgorithm.to_jwk(k.public_key())), "kid": kid, "use": "sig",
                                 "alg": "ES256"} for kid, k in pairs]}).encode()


class Auth:
    """Stands in for auth: a JWKS that changes, or fails, between fetches; an empty revocation feed."""

    def __init__(self) -> None:
        self.body: bytes | None = jwks(("old", OLD), ("new", NEW))
        self.fetches = 0

    async def jwks(self) -> bytes:
        self.fetches += 1
        if self.body is None:
            raise Unavailable("auth is down")
        return self.body

    async def revocations(self, after: int) -> RevocationPage:
        return RevocationPage(events=[], cursor=after)


async def wait_for_fetches(auth: Auth, n: int) -> None:
    async with asyncio.timeout(5):
        while auth.fetches < n:
            await asyncio.sleep(0.01)


async def test_jwks_refresh_forgets_a_retired_key_and_survives_auth_being_down() -> None:
    auth = Auth()
    cache = JwksCache(auth.jwks)
    await cache.refresh()
    assert cache.kids == {"old", "new"}
    bg = Background(auth, RevocationState(), SessionHub(None, "t", 60), None, "t",  # type: ignore[arg-type]
                    jwks=cache, jwks_interval=0.05)
    bg.start()
    try:
        auth.body = jwks(("new", NEW))                 # auth retired "old"
        await wait_for_fetches(auth, 2)
        assert cache.kids == {"new"}
        assert await cache.get("old") is None          # a token signed by it is now refused
        auth.body = None                               # auth down: the cached key stays usable
        seen = auth.fetches
        await wait_for_fetches(auth, seen + 2)
        assert cache.kids == {"new"}
        assert await cache.get("new") is not None
    finally:
        await bg.stop()
