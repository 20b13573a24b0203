"""RFC 7591 registration and RFC 7592 management at ``registration_client_uri``."""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.params import FromPath

from till_auth.oauth import registration
from till_auth.oauth.errors import InvalidBearer, InvalidClientMetadata, TooManyRequests
from till_auth.oauth.metadata import REGISTER_PATH
from till_auth.registry import Registry
from till_auth.store import clients, revocations
from till_auth.store.models import Client
from till_auth.web import common
from till_auth.web.errors import oauth_json

MAX_BODY = 64 * 1024


def _body(reg: Registry, client: Client, *, secret: str | None = None, reg_token: str | None = None) -> dict[str, Any]:
    meta = msgspec.to_builtins(clients.metadata(client))
    body: dict[str, Any] = {"client_id": client.client_id, "client_id_issued_at": client.created_at, **meta,
                            "registration_client_uri": f"{reg.settings.public_url}{REGISTER_PATH}/{client.client_id}"}
    if secret is not None:
        body["client_secret"] = secret
        body["client_secret_expires_at"] = 0
    if reg_token is not None:
        body["registration_access_token"] = reg_token
    return body


async def _json_body(request: Request[Any, Any, Any]) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise InvalidClientMetadata("registration request too large")
    return registration.parse_json(raw)


@post(REGISTER_PATH, include_in_schema=False)
async def register(request: Request[Any, Any, Any]) -> Response[bytes]:
    reg = common.registry(request)
    wait = await reg.limiter.hit("register", common.client_ip(request, reg),
                                 limit=reg.settings.registrations_per_minute, window=60)
    if wait:
        raise TooManyRequests("too many registrations from this address", retry_after=wait)
    meta = registration.validate(await _json_body(request))
    async with reg.transaction() as tx:
        done = await clients.register(tx.db, meta, common.now())
    return oauth_json(_body(reg, done.client, secret=done.secret, reg_token=done.registration_token), 201)


async def _managed(reg: Registry, db: Any, request: Request[Any, Any, Any], client_id: str) -> Client:
    """RFC 7592 §2: the registration access token of *this* client, else 401 invalid_token."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    client = await clients.get(db, client_id)
    expected = client.registration_token_hash if client is not None else None
    presented = clients.sha256(value.strip()) if scheme.lower() == "bearer" and value.strip() else ""
    if not hmac.compare_digest(presented, expected or "x" * 64) or client is None or expected is None:
        raise InvalidBearer("registration access token missing or wrong")
    return client


@get(REGISTER_PATH + "/{client_id:str}", include_in_schema=False)
async def read_client(request: Request[Any, Any, Any], client_id: FromPath[str]) -> Response[bytes]:
    reg = common.registry(request)
    async with reg.sessions() as db:
        client = await _managed(reg, db, request, client_id)
    return oauth_json(_body(reg, client))


@put(REGISTER_PATH + "/{client_id:str}", include_in_schema=False)
async def update_client(request: Request[Any, Any, Any], client_id: FromPath[str]) -> Response[bytes]:
    reg = common.registry(request)
    body = await _json_body(request)
    async with reg.transaction() as tx:
        client = await _managed(reg, tx.db, request, client_id)
        if body.get("client_id", client_id) != client_id:
            raise InvalidClientMetadata("client_id cannot be changed")
        if "client_secret" in body and not hmac.compare_digest(
                clients.sha256(str(body["client_secret"])), client.secret_hash or "x" * 64):
            raise InvalidClientMetadata("client_secret does not match")
        body.setdefault("token_endpoint_auth_method", client.token_endpoint_auth_method)
        meta = registration.validate(body)
        if meta.token_endpoint_auth_method != client.token_endpoint_auth_method and \
                "none" in (meta.token_endpoint_auth_method, client.token_endpoint_auth_method):
            raise InvalidClientMetadata("a client cannot switch between public and confidential")
        await clients.update(tx.db, client, meta, common.now())
    return oauth_json(_body(reg, client))


@delete(REGISTER_PATH + "/{client_id:str}", include_in_schema=False, status_code=204)
async def delete_client(request: Request[Any, Any, Any], client_id: FromPath[str]) -> None:
    reg = common.registry(request)
    async with reg.transaction() as tx:
        await _managed(reg, tx.db, request, client_id)
        tx.events += (await revocations.revoke_client(tx.db, client_id, common.now()))[1]
        await clients.remove(tx.db, client_id)


HANDLERS = [register, read_client, update_client, delete_client]
