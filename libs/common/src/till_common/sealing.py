"""Encryption at rest with keys derived from TILL_KEY_ENCRYPTION_KEY (HKDF-SHA256 → AES-256-GCM).

Shared by auth (signing keys, refresh-token successors, the new-token cookie) and tools (a store's
payment API key, D863).  One derived key per purpose (``info``), so the signing-key key never
encrypts anything else.
The stored form is ``nonce(12) || ciphertext+tag``; the associated data binds a ciphertext to
its row (a key's ``kid``, a refresh token's hash), so swapping ciphertexts between rows fails.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SealError(Exception):
    """The ciphertext does not open with this key (wrong TILL_KEY_ENCRYPTION_KEY or tampering)."""


def derive(secret: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"till-kek-v1",
                info=purpose.encode()).derive(secret.encode())


class Sealer:
    def __init__(self, secret: str, purpose: str) -> None:
        self._aead = AESGCM(derive(secret, purpose))

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], aad)
        except (InvalidTag, ValueError):
            raise SealError("cannot decrypt") from None


class Signer:
    """HMAC-SHA256 with a derived key: CSRF tokens bound to a session (no state stored)."""

    def __init__(self, secret: str, purpose: str) -> None:
        self._key = derive(secret, purpose)

    def sign(self, message: str) -> str:
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def verify(self, message: str, signature: str | None) -> bool:
        return signature is not None and hmac.compare_digest(self.sign(message), signature)
