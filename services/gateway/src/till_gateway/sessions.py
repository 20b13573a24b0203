"""Legacy-SSE (MCP 2024-11-05) session routing across gateway replicas.

Redis layout (``<ns>`` = TILL_REDIS_NAMESPACE):

- key ``<ns>:sse:<session id>`` → ``{"replica": <owner replica id>, "fp": <sha256(user:store)>}``,
  expiring after TILL_SESSION_TTL, refreshed by the owner at every heartbeat; deleted when the
  stream ends or the replica drains.  A replica killed with -9 leaves it to expire (≤ TTL).
- channel ``<ns>:replica:<replica id>``: a POST handled by another replica publishes the response
  (:class:`Deliver`) to the owner, which writes it to the stream.  Zero receivers means the owner
  is gone: the key is deleted and the POST answers 404 rather than 202 into nothing.

Without Redis the hub is in-process (one replica).  Session ids are ``secrets.token_urlsafe(32)``
(256 bits from the CSPRNG, SS-01); the fingerprint binds a session to its principal (SS-02),
never to a token, so a refreshed token of the same user and store keeps working (SS-04).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Final

import msgspec
from msgspec import Raw
from redis.asyncio import Redis
from redis.exceptions import RedisError

from till_common.errors import Unavailable
from till_common.logging import get_logger
from till_gateway.auth import fingerprint
from till_gateway.exchange import ServerRequests
from till_gateway.revocations import Credential, RevocationState

log = get_logger("till.gateway.sessions")
QUEUE_LIMIT: Final = 1000


class Deliver(msgspec.Struct, tag="deliver"):
    """Replica → owner: write this JSON-RPC message to the session's stream."""

    sid: str
    data: Raw


class Close(msgspec.Struct, tag="close"):
    """Replica → owner: end this session's stream."""

    sid: str


class Answer(msgspec.Struct, tag="answer", omit_defaults=True):
    """Replica → the replica waiting for it: a client's answer to a server request (exchange.py)."""

    id: str
    owner: str                     # fingerprint of the principal that POSTed the answer
    result: Raw = Raw()            # empty: absent (msgspec has no ``Raw | None``)
    error: Raw = Raw()


ReplicaMessage = Deliver | Close | Answer


class SessionRecord(msgspec.Struct, frozen=True):
    replica: str
    fp: str


_encoder: Final = msgspec.json.Encoder()


def _answer_bytes(rid: str, owner: str, result: Raw | None, error: Raw | None) -> bytes:
    # only the default Raw() instance is omitted: pass the fields that are present, and no others
    fields: dict[str, Raw] = {k: v for k, v in (("result", result), ("error", error)) if v is not None}
    return _encoder.encode(Answer(rid, owner, **fields))
_replica_decoder: Final = msgspec.json.Decoder(ReplicaMessage)
_record_decoder: Final = msgspec.json.Decoder(SessionRecord)


@dataclass(eq=False)
class LocalSession:
    id: str
    cred: Credential
    fp: str
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    closed: bool = False

    def push(self, data: bytes | None) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            log.warning("sse client too slow, closing its stream")
            self.closed = True
            self.queue = asyncio.Queue()
            self.queue.put_nowait(None)
        if data is None:
            self.closed = True


class SessionHub:
    def __init__(self, redis: Redis | None, namespace: str, ttl: int, replica_id: str | None = None) -> None:
        self.redis = redis
        self.namespace = namespace
        self.ttl = ttl
        self.replica_id = replica_id or secrets.token_hex(8)
        self.local: dict[str, LocalSession] = {}
        self.draining = False
        # With Redis, a session may only be opened while this replica listens on its channel:
        # otherwise a POST via another replica would see no receiver and kill the session.
        self.routable = redis is None
        self.server_requests = ServerRequests(self.replica_id)

    @property
    def channel(self) -> str:
        return self.replica_channel(self.replica_id)

    def replica_channel(self, replica: str) -> str:
        return f"{self.namespace}:replica:{replica}"

    def key(self, sid: str) -> str:
        return f"{self.namespace}:sse:{sid}"

    async def open(self, cred: Credential) -> LocalSession:
        if self.draining:
            raise Unavailable("shutting down")
        if not self.routable:
            raise Unavailable("session routing unavailable (Redis)")
        session = LocalSession(secrets.token_urlsafe(32), cred, fingerprint(cred.user_id, cred.store_id))
        if self.redis is not None:
            record = _encoder.encode(SessionRecord(self.replica_id, session.fp))
            try:
                await self.redis.set(self.key(session.id), record, ex=self.ttl, nx=True)
            except (RedisError, OSError) as exc:
                raise Unavailable("session store unavailable", debug=type(exc).__name__) from None
        self.local[session.id] = session
        return session

    async def refresh(self, session: LocalSession) -> None:
        if self.redis is None:
            return
        try:
            await self.redis.expire(self.key(session.id), self.ttl)
        except (RedisError, OSError) as exc:
            log.warning("session refresh failed", error=type(exc).__name__)

    async def close(self, session: LocalSession) -> None:
        session.push(None)
        if self.local.pop(session.id, None) is not None and self.redis is not None:
            try:
                await self.redis.delete(self.key(session.id))
            except (RedisError, OSError) as exc:
                log.warning("session delete failed", error=type(exc).__name__)

    async def find(self, sid: str, cred: Credential) -> SessionRecord | None:
        """The session if it exists and belongs to ``cred``'s principal; else None (one 404 for both)."""
        fp = fingerprint(cred.user_id, cred.store_id)
        if self.redis is None:
            local = self.local.get(sid)
            if local is None or not hmac.compare_digest(local.fp, fp):
                return None
            return SessionRecord(self.replica_id, local.fp)
        try:
            raw = await self.redis.get(self.key(sid))
        except (RedisError, OSError) as exc:
            raise Unavailable("session store unavailable", debug=type(exc).__name__) from None
        if raw is None:
            return None
        try:
            record = _record_decoder.decode(raw)
        except msgspec.DecodeError:
            return None
        return record if hmac.compare_digest(record.fp, fp) else None

    async def deliver(self, sid: str, record: SessionRecord, data: bytes) -> bool:
        """Put a JSON-RPC message on the session's stream wherever it is held; False if it is gone."""
        if record.replica == self.replica_id:
            local = self.local.get(sid)
            if local is None or local.closed:
                return False
            local.push(data)
            return True
        assert self.redis is not None        # another replica only exists with Redis
        try:
            receivers = await self.redis.publish(self.replica_channel(record.replica),
                                                 _encoder.encode(Deliver(sid, Raw(data))))
        except (RedisError, OSError) as exc:
            raise Unavailable("session store unavailable", debug=type(exc).__name__) from None
        if receivers == 0:           # the owner died (kill -9): the session can never be served
            await self.redis.delete(self.key(sid))
            return False
        return True

    async def answer(self, rid: str, owner: str, result: Raw | None, error: Raw | None) -> bool:
        """Route a client's answer to the replica whose server request it answers (by the id)."""
        replica = ServerRequests.replica_of(rid)
        if replica is None:
            return False
        if replica == self.replica_id:
            return self.server_requests.resolve(rid, owner, result, error)
        if self.redis is None:
            return False
        try:
            receivers = await self.redis.publish(self.replica_channel(replica),
                                                 _answer_bytes(rid, owner, result, error))
        except (RedisError, OSError) as exc:
            raise Unavailable("session store unavailable", debug=type(exc).__name__) from None
        return receivers > 0

    def receive(self, payload: bytes) -> None:
        """A message published to this replica's channel."""
        try:
            msg = _replica_decoder.decode(payload)
        except msgspec.DecodeError:
            log.warning("unreadable replica message")
            return
        if isinstance(msg, Answer):
            self.server_requests.resolve(msg.id, msg.owner, msg.result if len(msg.result) else None,
                                         msg.error if len(msg.error) else None)
            return
        session = self.local.get(msg.sid)
        if session is None:
            return
        if isinstance(msg, Deliver):
            session.push(bytes(msg.data))
        else:
            session.push(None)

    def close_revoked(self, state: RevocationState) -> None:
        for session in list(self.local.values()):
            if state.is_revoked(session.cred):
                session.push(None)

    async def drain(self) -> None:
        """SIGTERM: end every stream and delete its key at once, so POSTs get 404 and clients reopen."""
        self.draining = True
        sessions = list(self.local.values())
        self.local.clear()
        for session in sessions:
            session.push(None)
        if sessions and self.redis is not None:
            try:
                await self.redis.delete(*(self.key(s.id) for s in sessions))
            except (RedisError, OSError) as exc:
                log.warning("session cleanup failed", error=type(exc).__name__)
