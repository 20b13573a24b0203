"""Client ID Metadata Documents (MCP 2025-11-25 authorization; draft-ietf-oauth-client-id-metadata-document).

An ``https`` ``client_id`` names a JSON document the client hosts.  It is fetched with a size
and time limit, never from private or loopback addresses (SSRF) unless
TILL_CIMD_ALLOW_PRIVATE is set, never following redirects, and cached in the clients table
for :data:`CACHE_SECONDS`.  DNS is resolved once: every answer is checked, and the connection
goes only to those checked addresses (:class:`PinnedResolver`), so a name that answers a public
address to the check and 127.0.0.1 to the connection (DNS rebinding) cannot reach inside.
The document must name itself as ``client_id``, may not carry a secret or ask for a
secret-based auth method, and its redirect URIs obey the same rules as registered ones.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec
from aiohttp.abc import AbstractResolver, ResolveResult
from sqlalchemy.ext.asyncio import AsyncSession

from till_auth.oauth import registration
from till_auth.oauth.errors import OAuthError
from till_auth.store import clients
from till_auth.store.models import Client
from till_common.logging import get_logger

log = get_logger("till.auth.cimd")

MAX_BYTES = 5 * 1024
TIMEOUT = 5.0
CACHE_SECONDS = 300


class CimdError(Exception):
    """The document cannot be used; the authorization request shows an error page."""


def check_url(url: str, *, allow_private: bool) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise CimdError("client_id URL must use https")
    if parts.fragment or "@" in parts.netloc or not parts.hostname or not parts.path.strip("/"):
        raise CimdError("client_id URL must have a host and a path, and no fragment or user information")
    if any(seg in (".", "..") for seg in parts.path.split("/")):
        raise CimdError("client_id URL must not contain dot segments")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def public_address(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    return addr.is_global and not addr.is_multicast


Lookup = Callable[[str, int], Awaitable[list[tuple[int, str]]]]


async def system_lookup(host: str, port: int) -> list[tuple[int, str]]:
    """``(family, address)`` pairs from the system resolver."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [(int(info[0]), str(info[4][0])) for info in infos]


async def vetted_addresses(host: str, port: int, *, allow_private: bool,
                           lookup: Lookup = system_lookup) -> list[tuple[int, str]]:
    """Resolve once; every address must be public (unless allowed), else nothing is used."""
    try:
        addresses = list(dict.fromkeys(await lookup(host, port)))
    except (OSError, UnicodeError):
        raise CimdError("client_id host does not resolve") from None
    if not addresses:
        raise CimdError("client_id host does not resolve")
    if not allow_private:
        for _, ip in addresses:
            if not public_address(ip):
                raise CimdError("client_id host resolves to a private address")
    return addresses


class PinnedResolver(AbstractResolver):
    """aiohttp's resolver for one fetch: the vetted addresses of the one host, nothing else.

    The URL keeps its host name, so the Host header and TLS SNI/certificate checks use the name;
    only the socket goes to an address that was checked.
    """

    def __init__(self, host: str, addresses: list[tuple[int, str]]) -> None:
        self._host = host
        self._addresses = addresses

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        if host != self._host:
            raise OSError(f"no pinned address for {host!r}")
        return [ResolveResult(hostname=host, host=ip, port=port, family=fam, proto=0,
                              flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
                for fam, ip in self._addresses if family in (socket.AF_UNSPEC, fam)]

    async def close(self) -> None:
        return None


async def fetch(url: str, *, allow_private: bool, lookup: Lookup = system_lookup) -> dict[str, Any]:
    host, port = check_url(url, allow_private=allow_private)
    addresses = await vetted_addresses(host, port, allow_private=allow_private, lookup=lookup)
    try:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT, connect=TIMEOUT)
        connector = aiohttp.TCPConnector(resolver=PinnedResolver(host, addresses), use_dns_cache=False,
                                         family=socket.AF_UNSPEC)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector, trust_env=False) as http, \
                http.get(url, allow_redirects=False, headers={"Accept": "application/json"}) as resp:
            if resp.status != 200:
                raise CimdError(f"client metadata document answered {resp.status}")
            body = await resp.content.read(MAX_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise CimdError(f"cannot fetch client metadata document: {type(exc).__name__}") from None
    if len(body) > MAX_BYTES:
        raise CimdError("client metadata document is too large")
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise CimdError("client metadata document is not JSON") from None
    if not isinstance(doc, dict):
        raise CimdError("client metadata document is not a JSON object")
    return doc


def validate(url: str, doc: dict[str, Any]) -> registration.ClientMetadata:
    if doc.get("client_id") != url:
        raise CimdError("client metadata document's client_id differs from its URL")
    if "client_secret" in doc or "client_secret_expires_at" in doc:
        raise CimdError("client metadata document must not contain a secret")
    doc = {**doc, "token_endpoint_auth_method": doc.get("token_endpoint_auth_method", "none")}
    try:
        return registration.validate(doc, allow_secret_methods=False)
    except OAuthError as exc:
        raise CimdError(exc.description) from None


async def refresh(reg: Any, url: str) -> None:
    """Fetch the document unless a fresh copy is cached, outside any transaction: on SQLite a
    transaction holds the write lock, which must never wait on the network."""
    allow_private = bool(reg.settings.cimd_allow_private)
    if url.startswith("http://") and not allow_private:
        return
    now = int(time.time())
    async with reg.sessions() as db:
        cached = await clients.get(db, url)
    if cached is not None and cached.kind == "cimd" and now - cached.updated_at < CACHE_SECONDS:
        return
    try:
        meta = validate(url, await fetch(url, allow_private=allow_private))
    except CimdError as exc:
        log.info("client metadata document refused", reason=str(exc))
        if cached is not None and cached.kind == "cimd":
            async with reg.sessions.begin() as db:       # a document that went bad stops working
                await clients.remove(db, url)
        return
    async with reg.sessions.begin() as db:
        await clients.upsert_cimd(db, url, meta, now)


async def resolve(db: AsyncSession, url: str) -> Client | None:
    """The cached client for a metadata-document ``client_id`` (see :func:`refresh`)."""
    client = await clients.get(db, url)
    return client if client is not None and client.kind == "cimd" else None
