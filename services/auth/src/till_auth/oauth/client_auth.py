"""RFC 6749 §2.3 client authentication at the token and revocation endpoints; no I/O.

``none`` (public clients: client_id in the body), ``client_secret_post`` and
``client_secret_basic``.  More than one method in a request is ``invalid_request`` (§2.3);
any failure to authenticate is ``invalid_client`` 401, with ``WWW-Authenticate: Basic`` when
the client tried Basic (§5.2).  Secrets are stored as SHA-256 (they carry 256 random bits)
and compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import unquote_plus

from till_auth.oauth.errors import InvalidClient, InvalidRequest


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    secret: str | None
    method: str          # none | client_secret_post | client_secret_basic

    @property
    def basic(self) -> bool:
        return self.method == "client_secret_basic"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(authorization: str | None, form_client_id: str | None, form_secret: str | None) -> ClientCredentials:
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() == "basic":          # "Basic" alone is a (malformed) Basic attempt too (§5.2)
        if form_secret is not None:
            raise InvalidRequest("use one client authentication method, not several")
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except ValueError:   # binascii.Error, UnicodeDecodeError, and non-ASCII header text (fuzzing)
            raise InvalidClient("malformed Basic credentials", basic=True) from None
        user, sep, password = decoded.partition(":")
        client_id, secret = unquote_plus(user), unquote_plus(password)
        if not sep or not client_id or "\x00" in decoded + client_id + secret:     # D861
            raise InvalidClient("malformed Basic credentials", basic=True)
        if form_client_id is not None and form_client_id != client_id:
            raise InvalidRequest("client_id in the body differs from the Basic credentials")
        return ClientCredentials(client_id, secret, "client_secret_basic")
    if not form_client_id:
        raise InvalidClient("client authentication is required (client_id)")
    if form_secret is not None:
        return ClientCredentials(form_client_id, form_secret, "client_secret_post")
    return ClientCredentials(form_client_id, None, "none")


def authenticate(creds: ClientCredentials, *, registered_method: str | None, secret_hash: str | None) -> None:
    """Raise unless ``creds`` prove the client; ``registered_method`` None means unknown client."""
    if registered_method is None:
        # still spend the compare so an unknown id costs what a wrong secret costs
        hmac.compare_digest(hash_secret(creds.secret or ""), "0" * 64)
        raise InvalidClient("unknown client", basic=creds.basic)
    if registered_method == "none":
        if creds.secret:
            raise InvalidClient("this client is public and has no secret", basic=creds.basic)
        return
    if creds.secret is None or secret_hash is None:
        raise InvalidClient("this client must authenticate with its secret", basic=creds.basic)
    if not hmac.compare_digest(hash_secret(creds.secret), secret_hash):
        raise InvalidClient("client authentication failed", basic=creds.basic)
