"""A store's payment API key at rest (D863): sealed with AES-256-GCM under a key derived from
TILL_KEY_ENCRYPTION_KEY for this purpose only (HKDF, ``till_common.sealing``, as auth's D113).

The stored form is ``enc:v1:`` + base64url(nonce || ciphertext+tag) with the store id as associated
data, so a ciphertext copied to another store's row does not open.  A value without the prefix is
a key stored in plain text before D863: it is read as it is and sealed on the store's next checkout
settings update.  Without TILL_KEY_ENCRYPTION_KEY the service refuses to store a key rather than
keep it in plain text.
"""

from __future__ import annotations

import base64
from typing import Final

from till_common.logging import get_logger
from till_common.sealing import Sealer, SealError
from till_tools.spec import ToolFailure

PREFIX: Final = "enc:v1:"
PURPOSE: Final = "tools-payment-api-key"

log = get_logger("till.tools.payment_keys")


def _aad(store_id: int) -> bytes:
    return f"store:{store_id}:payment_provider_api_key".encode()


class PaymentKeys:
    def __init__(self, secret: str | None) -> None:
        self._sealer = Sealer(secret, PURPOSE) if secret else None

    def seal(self, store_id: int, plaintext: str) -> str:
        if self._sealer is None:
            raise ToolFailure("this Till cannot store a payment API key: the tools service has no "
                              "TILL_KEY_ENCRYPTION_KEY to encrypt it with; ask the operator to set it")
        sealed = self._sealer.seal(plaintext.encode(), _aad(store_id))
        return PREFIX + base64.urlsafe_b64encode(sealed).decode()

    def reveal(self, store_id: int, stored: str) -> str | None:
        """The key in clear; None if it is sealed and cannot be opened here (no or another secret)."""
        if not stored.startswith(PREFIX):
            return stored                                     # before D863: plain text
        if self._sealer is None:
            return None
        try:
            return self._sealer.open(base64.urlsafe_b64decode(stored[len(PREFIX):]), _aad(store_id)).decode()
        except (SealError, ValueError):
            log.warning("a stored payment API key does not open with TILL_KEY_ENCRYPTION_KEY", store_id=store_id)
            return None

    def at_rest(self, store_id: int, stored: str) -> str:
        """``stored`` as it should be kept: a plain-text key from before D863 is sealed when possible."""
        if not stored or stored.startswith(PREFIX) or self._sealer is None:
            return stored
        return self.seal(store_id, stored)


#: for contexts built without a registry's keys (nothing can be sealed or opened)
NO_KEYS: Final = PaymentKeys(None)
