"""ES256 signing keys: generated here, sealed at rest, published in JWKS, rotated (SPEC §4).

Rotation (OC:server-rotate-keys, FT-11): a new key is published at once and signs only after
``TILL_KEY_ACTIVATION_DELAY`` (gateways refetch JWKS on an unknown ``kid``, but caches of
other resource servers may be older); the keys it replaces leave JWKS once the last token
they signed has expired (activation + token TTL + 60 s verifier leeway).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from till_auth.oauth.pkce import b64url
from till_auth.store.models import SigningKey
from till_common.errors import ConfigError
from till_common.sealing import Sealer, SealError

_PURPOSE = "till signing keys v1"
_LEEWAY = 60
_CACHE_SECONDS = 5.0


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint of an EC key: a stable, unique ``kid``."""
    import hashlib

    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def new_key(sealer: Sealer, *, now: int, activates_at: int) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    public = {"kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"]}
    kid = thumbprint(public)
    public.update({"kid": kid, "use": "sig", "alg": "ES256"})
    pem = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return SigningKey(kid=kid, public_jwk=json.dumps(public), private_key_sealed=sealer.seal(pem, kid.encode()),
                      created_at=now, activates_at=activates_at, retires_at=None)


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    private: ec.EllipticCurvePrivateKey


class KeyRing:
    """Reads keys from the database (short cache), opens private keys once per process."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], kek: str, *, token_ttl: int,
                 activation_delay: int) -> None:
        self._sessions = sessions
        self._sealer = Sealer(kek, _PURPOSE)
        self._ttl = token_ttl
        self._delay = activation_delay
        self._rows: list[SigningKey] = []
        self._loaded_at = float("-inf")
        self._private: dict[str, ec.EllipticCurvePrivateKey] = {}

    def open(self, row: SigningKey) -> ec.EllipticCurvePrivateKey:
        key = self._private.get(row.kid)
        if key is None:
            try:
                der = self._sealer.open(row.private_key_sealed, row.kid.encode())
            except SealError:
                raise ConfigError("TILL_KEY_ENCRYPTION_KEY cannot decrypt the signing keys in "
                                  "TILL_AUTH_DATABASE_URL (wrong key?)") from None
            loaded = serialization.load_der_private_key(der, password=None)
            assert isinstance(loaded, ec.EllipticCurvePrivateKey)
            key = self._private[row.kid] = loaded
        return key

    async def _load(self, *, force: bool = False) -> list[SigningKey]:
        if force or time.monotonic() - self._loaded_at > _CACHE_SECONDS:
            async with self._sessions() as db:
                self._rows = list((await db.scalars(select(SigningKey).order_by(SigningKey.activates_at))).all())
            self._loaded_at = time.monotonic()
        return self._rows

    async def check(self) -> None:
        """Pre-flight: every stored key opens with this KEK (else one clear line)."""
        for row in await self._load(force=True):
            self.open(row)

    async def jwks(self) -> dict[str, Any]:
        now = int(time.time())
        rows = await self._load()
        return {"keys": [json.loads(r.public_jwk) for r in rows if r.retires_at is None or r.retires_at > now]}

    async def signing_key(self) -> ActiveKey:
        now = int(time.time())
        rows = await self._load()
        usable = [r for r in rows if r.activates_at <= now and (r.retires_at is None or r.retires_at > now)]
        if not usable:
            await self._ensure_first_key()
            rows = await self._load(force=True)
            usable = [r for r in rows if r.activates_at <= now and (r.retires_at is None or r.retires_at > now)]
        usable = usable or rows            # never fail to sign while any key exists
        row = max(usable, key=lambda r: (r.activates_at, r.created_at))
        return ActiveKey(row.kid, self.open(row))

    async def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        for row in await self._load():
            if row.kid == kid:
                return self.open(row).public_key()
        return None

    async def _ensure_first_key(self) -> None:
        # First start: a key that signs at once (nobody can hold an older JWKS yet).
        async with self._sessions.begin() as db:
            if (await db.scalar(select(SigningKey.kid).limit(1))) is None:
                now = int(time.time())
                db.add(new_key(self._sealer, now=now, activates_at=now))

    async def rotate(self, db: AsyncSession, *, now: int | None = None) -> SigningKey:
        """Publish a new key now; it signs after the activation delay; older keys retire later."""
        now = int(time.time()) if now is None else now
        live = (await db.scalars(select(SigningKey).where(SigningKey.retires_at.is_(None)))).all()
        # with no key signing yet there are no cached JWKS to wait for
        activates = now + self._delay if any(r.activates_at <= now for r in live) else now
        fresh = new_key(self._sealer, now=now, activates_at=activates)
        for row in live:
            # the old key signs until `activates`; its last token expires TTL (+leeway) later
            row.retires_at = activates + self._ttl + _LEEWAY
        db.add(fresh)
        await db.flush()
        self._loaded_at = float("-inf")
        return fresh
