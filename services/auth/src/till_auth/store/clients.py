"""Registered clients (RFC 7591/7592) and cached client metadata documents."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from till_auth.oauth.registration import ClientMetadata
from till_auth.store.models import Client

_decode = msgspec.json.Decoder(ClientMetadata)


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def metadata(client: Client) -> ClientMetadata:
    return _decode.decode(client.metadata_json)


@dataclass(frozen=True)
class Registered:
    client: Client
    secret: str | None
    registration_token: str


async def register(db: AsyncSession, meta: ClientMetadata, now: int) -> Registered:
    client_id = "till_c_" + secrets.token_urlsafe(18)
    secret = secrets.token_urlsafe(32) if meta.confidential else None
    reg_token = secrets.token_urlsafe(32)
    client = Client(client_id=client_id, kind="dcr", metadata_json=msgspec.json.encode(meta).decode(),
                    token_endpoint_auth_method=meta.token_endpoint_auth_method,
                    secret_hash=sha256(secret) if secret else None, registration_token_hash=sha256(reg_token),
                    created_at=now, updated_at=now, last_used_at=None)
    db.add(client)
    await db.flush()
    return Registered(client, secret, reg_token)


async def get(db: AsyncSession, client_id: str) -> Client | None:
    if not client_id or len(client_id) > 512:
        return None
    return await db.get(Client, client_id)


async def update(db: AsyncSession, client: Client, meta: ClientMetadata, now: int) -> None:
    """RFC 7592 §2.2: the new metadata replaces the old; a method change to/from ``none`` is refused."""
    client.metadata_json = msgspec.json.encode(meta).decode()
    client.updated_at = now
    await db.flush()


async def remove(db: AsyncSession, client_id: str) -> bool:
    res = await db.execute(delete(Client).where(Client.client_id == client_id))
    return bool(getattr(res, "rowcount", 0))


async def listing(db: AsyncSession, limit: int = 1000) -> list[Client]:
    return list((await db.scalars(select(Client).order_by(Client.created_at.desc()).limit(limit))).all())


async def upsert_cimd(db: AsyncSession, client_id: str, meta: ClientMetadata, now: int) -> Client:
    client = await db.get(Client, client_id)
    body = msgspec.json.encode(meta).decode()
    if client is None:
        client = Client(client_id=client_id, kind="cimd", metadata_json=body, token_endpoint_auth_method="none",  # noqa: S106 - a method name
                       
                        secret_hash=None, registration_token_hash=None, created_at=now, updated_at=now,
                        last_used_at=None)
        db.add(client)
    else:
        client.metadata_json = body
        client.updated_at = now
    await db.flush()
    return client


async def reap(db: AsyncSession, *, unused_since: int) -> list[str]:
    """Clients registered before ``unused_since`` and never used since (RG-06)."""
    ids = list((await db.scalars(select(Client.client_id).where(
        Client.created_at < unused_since,
        (Client.last_used_at.is_(None)) | (Client.last_used_at < unused_since)))).all())
    if ids:
        await db.execute(delete(Client).where(Client.client_id.in_(ids)))
    return ids
