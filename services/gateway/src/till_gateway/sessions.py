"""Legacy-SSE (MCP 2024-11-05) session routing across gateway replicas.

Redis layout (``<ns>`` = TILL_REDIS_NAMESPACE):

- key ``<ns>:sse:<session id>`` → ``{"replica": <owner replica id>, "fp": <sha256(user:store)>}``,
  expiring after TILL_SESSION_TTL.  The owner refreshes every session it holds on a timer of its
  own (:meth:`SessionHub.maintain`, every TTL/3) whatever traffic the stream carries; it is deleted
  when the stream ends or the replica drains.  A replica killed with -9 leaves it to expire (≤ TTL).
- sorted set ``<ns>:sse-principal:<fp>``: the principal's live session ids scored by expiry, for the
  cap TILL_SSE_SESSIONS_PER_PRINCIPAL (members of a killed replica age out by score).
- key ``<ns>:alive:<replica id>``: the owner's liveness, set every second while its subscription
  is up, expiring after :data:`ALIVE_TTL`.
- channel ``<ns>:replica:<replica id>``: a POST handled by another replica publishes the response
  to the owner, which writes it to the stream.  Zero receivers with the owner's liveness key gone
  means the owner died: the session key is deleted and the POST answers 404 rather than 202 into
  nothing.  Zero receivers while the owner is alive (its subscription is reconnecting) is retried
  for a moment, then answered 503: the session is not dropped for a blip.

Every Redis step of a POST is one round trip: the existence/ownership check, the PUBLISH and the
dead-owner clean-up run as one script (:data:`_DELIVER`), and a replica remembers the sessions it
has looked up for :data:`LOOKUP_CACHE_SECONDS` (the script re-checks them at delivery).

Without Redis the hub is in-process (one replica).  Session ids are ``secrets.token_urlsafe(32)``
(256 bits from the CSPRNG, SS-01); the fingerprint binds a session to its principal (SS-02),
never to a token, so a refreshed token of the same user and store keeps working (SS-04).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import msgspec
from msgspec import Raw
from redis.asyncio import Redis
from redis.exceptions import RedisError

from till_common.errors import TillError, Unavailable
from till_common.logging import get_logger
from till_gateway.auth import fingerprint
from till_gateway.exchange import ServerRequests
from till_gateway.fastredis import PipelinedRedis, Script
from till_gateway.heartbeats import HeartbeatWheel
from till_gateway.revocations import Credential, RevocationState

log = get_logger("till.gateway.sessions")
QUEUE_LIMIT: Final = 1000
ALIVE_INTERVAL: Final = 1.0            # seconds between a replica's liveness beats
ALIVE_TTL: Final = 5.0                 # a replica unheard of for this long is dead
LOOKUP_CACHE_SECONDS: Final = 2.0
LOOKUP_CACHE_SIZE: Final = 10_000
REFRESH_CHUNK: Final = 500
#: Sleeps between PUBLISH attempts while the owner is alive but not subscribed (≈ 1.6 s in all).
OWNER_RETRY: Final = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8)

# Replica → owner message: b"D<sid>\n<JSON-RPC message>" (write it to the stream), no re-encoding.
_DELIVER_TAG: Final = b"D"
# Replica → the replica waiting for it: b"A" + an :class:`Answer` (a client's answer to a server request).
_ANSWER_TAG: Final = b"A"


class Answer(msgspec.Struct, omit_defaults=True):
    """A client's answer to a server request (exchange.py), routed to the replica that made it."""

    id: str
    owner: str                     # fingerprint of the principal that POSTed the answer
    result: Raw = Raw()            # empty: absent (msgspec has no ``Raw | None``)
    error: Raw = Raw()


def _answer_bytes(rid: str, owner: str, result: Raw | None, error: Raw | None) -> bytes:
    # only the default Raw() instance is omitted: pass the fields that are present, and no others
    fields: dict[str, Raw] = {k: v for k, v in (("result", result), ("error", error)) if v is not None}
    return _ANSWER_TAG + msgspec.json.encode(Answer(rid, owner, **fields))


_answer_decoder: Final = msgspec.json.Decoder(Answer)


class TooManySessions(TillError):
    """The principal holds TILL_SSE_SESSIONS_PER_PRINCIPAL open streams already."""

    status = 429
    code = "too_many_sessions"


class SessionRecord(msgspec.Struct, frozen=True):
    replica: str
    fp: str


_encoder: Final = msgspec.json.Encoder()
_record_decoder: Final = msgspec.json.Decoder(SessionRecord)

#: KEYS: session key, principal set.  ARGV: record, ttl ms, cap, sid.  1 opened, 0 over the cap.
_OPEN: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 0 end
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl, 'NX') then return -1 end
redis.call('ZADD', KEYS[2], now + ttl, ARGV[4])
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
"""

#: KEYS: session key and principal set, pairwise.  ARGV: ttl ms, then the sids.  → the sids whose key
#: was gone (Redis lost it, or another replica found this one dead): their streams are ended.
_REFRESH: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local lost = {}
for i = 1, #KEYS, 2 do
  local sid = ARGV[(i + 1) / 2 + 1]
  if redis.call('PEXPIRE', KEYS[i], ttl) == 1 then
    redis.call('ZADD', KEYS[i + 1], now + ttl, sid)
    redis.call('PEXPIRE', KEYS[i + 1], ttl)
  else
    redis.call('ZREM', KEYS[i + 1], sid)
    lost[#lost + 1] = sid
  end
end
return lost
"""

#: KEYS: session key, owner's liveness key, principal set.  ARGV: expected record, channel, payload, sid.
#: → receivers (> 0); -1 no such session (or not this principal's); -2 owner alive but not
#: subscribed; 0 owner dead (session deleted).
_DELIVER: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local n = redis.call('PUBLISH', ARGV[2], ARGV[3])
if n > 0 then return n end
if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[4])
return 0
"""

#: :data:`_DELIVER` with the POST's rate-limit hit first (ratelimit.py's script), so that a legacy-SSE
#: POST relayed to another replica costs one round trip instead of two (D841).  KEYS: as _DELIVER,
#: then the rate-limit key.  ARGV: as _DELIVER, then the window (s) and the limit.  → {answer as
#: _DELIVER's} or, over the limit, {-3, seconds until the window resets} (nothing published).
_DELIVER_COUNTED: Final = """
local n = redis.call('INCR', KEYS[4])
redis.call('EXPIRE', KEYS[4], ARGV[5], 'NX')
if n > tonumber(ARGV[6]) then return {-3, redis.call('TTL', KEYS[4])} end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end
local r = redis.call('PUBLISH', ARGV[2], ARGV[3])
if r > 0 then return {r} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {-2} end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[4])
return {0}
"""


@dataclass(frozen=True, slots=True)
class Count:
    """A request still to be counted against its token's rate limit (ratelimit.py's Redis window)."""

    key: str          # the rate-limit key in Redis
    window: int       # seconds
    limit: int


class RateLimited(Exception):
    """The request counted by :meth:`SessionHub.deliver` was over its token's limit."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


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
    def __init__(self, redis: Redis | None, namespace: str, ttl: int, replica_id: str | None = None, *,
                 heartbeat: float = 15.0, per_principal: int = 100, fast: PipelinedRedis | None = None) -> None:
        self.redis = redis
        self.namespace = namespace
        self.ttl = ttl
        self.heartbeat = heartbeat
        self.per_principal = per_principal
        self.refresh_every = max(0.05, ttl / 3)
        self.alive_ttl = min(ALIVE_TTL, float(ttl))
        self.replica_id = replica_id or secrets.token_hex(8)
        self.local: dict[str, LocalSession] = {}
        self.wheel = HeartbeatWheel(heartbeat)
        self.draining = False
        # With Redis, a session may only be opened while this replica listens on its channel:
        # otherwise a POST via another replica would see no receiver and kill the session.
        self.routable = redis is None
        self._lookups: dict[str, tuple[float, SessionRecord]] = {}
        self.server_requests = ServerRequests(self.replica_id)
        if redis is not None:
            self._open = redis.register_script(_OPEN)
            self._refresh = redis.register_script(_REFRESH)
            self._deliver = redis.register_script(_DELIVER)
        self._fast = fast if redis is not None else None
        self._deliver_script = Script(_DELIVER)
        self._deliver_counted = Script(_DELIVER_COUNTED)

    @property
    def channel(self) -> str:
        return self.replica_channel(self.replica_id)

    def replica_channel(self, replica: str) -> str:
        return f"{self.namespace}:replica:{replica}"

    def alive_key(self, replica: str) -> str:
        return f"{self.namespace}:alive:{replica}"

    def key(self, sid: str) -> str:
        return f"{self.namespace}:sse:{sid}"

    def principal_key(self, fp: str) -> str:
        return f"{self.namespace}:sse-principal:{fp}"

    # --- the owner's side ---------------------------------------------------------------------

    async def open(self, cred: Credential) -> LocalSession:
        if self.draining:
            raise Unavailable("shutting down")
        if not self.routable:
            raise Unavailable("session routing unavailable (Redis)")
        session = LocalSession(secrets.token_urlsafe(32), cred, fingerprint(cred.user_id, cred.store_id))
        if self.redis is None:
            if sum(1 for s in self.local.values() if s.fp == session.fp) >= self.per_principal:
                raise self._too_many()
        else:
            record = _encoder.encode(SessionRecord(self.replica_id, session.fp))
            try:
                opened = await self._open(keys=[self.key(session.id), self.principal_key(session.fp)],
                                          args=[record, int(self.ttl * 1000), self.per_principal, session.id])
            except (RedisError, OSError) as exc:
                raise Unavailable("session store unavailable", debug=type(exc).__name__) from None
            if int(opened) == 0:
                raise self._too_many()
            if int(opened) != 1:
                raise Unavailable("session id collision; retry")
        self.local[session.id] = session
        self.wheel.add(session.id)
        return session

    def _too_many(self) -> TooManySessions:
        return TooManySessions(f"at most {self.per_principal} open /mcp/sse streams per user and store; "
                               "close one, or wait for abandoned ones to expire")

    async def close(self, session: LocalSession) -> None:
        session.push(None)
        if self.local.pop(session.id, None) is not None and self.redis is not None:
            await self._forget([session])

    async def _forget(self, sessions: Iterable[LocalSession], *, alive: bool = False) -> None:
        assert self.redis is not None
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                if alive:
                    pipe.delete(self.alive_key(self.replica_id))
                for s in sessions:
                    pipe.delete(self.key(s.id))
                    pipe.zrem(self.principal_key(s.fp), s.id)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("session delete failed", error=type(exc).__name__)

    async def beat(self) -> None:
        """Say this replica is alive (only while it is subscribed: it can receive what it is sent)."""
        if self.redis is not None and self.routable and not self.draining:
            if self._fast is not None:
                await self._fast.execute("SET", self.alive_key(self.replica_id), b"1", "PX",
                                         int(self.alive_ttl * 1000))
            else:
                await self.redis.set(self.alive_key(self.replica_id), b"1", px=int(self.alive_ttl * 1000))

    async def refresh(self) -> None:
        """Extend every local session's key; end the streams whose key is gone (Redis lost it, or a
        replica judged this one dead): their POSTs would 404, so the clients should reopen now."""
        if self.redis is None:
            return
        sessions = list(self.local.values())
        ttl_ms = int(self.ttl * 1000)
        for i in range(0, len(sessions), REFRESH_CHUNK):
            chunk = sessions[i:i + REFRESH_CHUNK]
            keys = [k for s in chunk for k in (self.key(s.id), self.principal_key(s.fp))]
            lost = await self._refresh(keys=keys, args=[ttl_ms, *(s.id for s in chunk)])
            for sid in lost:
                session = self.local.pop(sid.decode() if isinstance(sid, bytes) else sid, None)
                if session is not None:
                    log.info("session key gone, ending its stream")
                    session.push(None)

    async def maintain(self) -> None:
        """Heartbeats (the wheel, one slot a tick), session refreshes and the liveness beat, on
        timers independent of traffic."""
        loop = asyncio.get_running_loop()
        tick = self.wheel.tick
        beat_every = max(0.05, min(ALIVE_INTERVAL, self.heartbeat, self.refresh_every))
        start = loop.time()
        beaten = 0                      # wheel ticks done since start
        next_beat, next_refresh = start + beat_every, start + self.refresh_every
        while True:
            await asyncio.sleep(min(tick, beat_every))
            now = loop.time()
            due = int((now - start) / tick)
            self.wheel.advance(due - beaten, self.local)
            beaten = due
            if now < next_beat:
                continue
            next_beat = now + beat_every
            try:
                await self.beat()
                if now >= next_refresh:
                    next_refresh = now + self.refresh_every
                    await self.refresh()
            except (RedisError, OSError) as exc:
                log.warning("session refresh failed", error=type(exc).__name__)
            except Exception:
                log.exception("session maintenance failed")

    def receive(self, payload: bytes) -> None:
        """A message published to this replica's channel."""
        if payload[:1] == _ANSWER_TAG:
            try:
                msg = _answer_decoder.decode(payload[1:])
            except msgspec.DecodeError:
                log.warning("unreadable replica message")
                return
            self.server_requests.resolve(msg.id, msg.owner, msg.result if len(msg.result) else None,
                                         msg.error if len(msg.error) else None)
            return
        nl = payload.find(b"\n")
        if nl < 1 or payload[:1] != _DELIVER_TAG:
            log.warning("unreadable replica message")
            return
        session = self.local.get(payload[1:nl].decode("latin-1"))
        if session is not None:
            session.push(payload[nl + 1:])

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
        return int(receivers) > 0

    def close_revoked(self, state: RevocationState) -> None:
        for session in list(self.local.values()):
            if state.is_revoked(session.cred):
                session.push(None)

    async def drain(self) -> None:
        """SIGTERM: delete every session key (and this replica's liveness) in one round trip, then end
        the streams, so that a client seeing its stream end already gets 404 and reopens elsewhere."""
        self.draining = True
        sessions = list(self.local.values())
        self.local.clear()
        if self.redis is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._forget(sessions, alive=True), 3.0)
        for session in sessions:
            session.push(None)

    # --- any replica's side -------------------------------------------------------------------

    async def find(self, sid: str, cred: Credential) -> SessionRecord | None:
        """The session if it exists and belongs to ``cred``'s principal; else None (one 404 for both)."""
        fp = fingerprint(cred.user_id, cred.store_id)
        local = self.local.get(sid)
        if local is not None:
            return SessionRecord(self.replica_id, local.fp) if hmac.compare_digest(local.fp, fp) else None
        if self.redis is None:
            return None
        now = time.monotonic()
        cached = self._lookups.get(sid)
        if cached is not None and cached[0] > now:
            record = cached[1]
        else:
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
            if len(self._lookups) >= LOOKUP_CACHE_SIZE:
                self._lookups = {k: v for k, v in self._lookups.items() if v[0] > now}
                if len(self._lookups) >= LOOKUP_CACHE_SIZE:
                    self._lookups.clear()
            self._lookups[sid] = (now + LOOKUP_CACHE_SECONDS, record)
        return record if hmac.compare_digest(record.fp, fp) else None

    def relays(self, record: SessionRecord) -> bool:
        """Whether delivering to this session goes through Redis (:meth:`deliver` can count then)."""
        return record.replica != self.replica_id and self._fast is not None

    async def deliver(self, sid: str, record: SessionRecord, data: bytes, count: Count | None = None) -> bool:
        """Put a JSON-RPC message on the session's stream wherever it is held; False if it is gone.
        Raises :class:`Unavailable` when the owner is alive but cannot be reached for a while.
        ``count`` (only when :meth:`relays`): the POST's rate-limit hit, made in the same script
        before anything is published; :class:`RateLimited` when it is over the limit."""
        if count is not None:
            return await self._deliver_with_count(sid, record, data, count)
        if record.replica == self.replica_id:
            local = self.local.get(sid)
            if local is None or local.closed:
                return False
            local.push(data)
            return True
        assert self.redis is not None        # another replica only exists with Redis
        keys = [self.key(sid), self.alive_key(record.replica), self.principal_key(record.fp)]
        args: list[bytes | str] = [_encoder.encode(record), self.replica_channel(record.replica),
                                   b"%b%b\n%b" % (_DELIVER_TAG, sid.encode(), data), sid]
        for pause in (*OWNER_RETRY, None):
            try:
                if self._fast is not None:
                    answer = int(await self._fast.evalsha(self._deliver_script, keys, args))
                else:
                    answer = int(await self._deliver(keys=keys, args=args))
            except (RedisError, OSError) as exc:
                raise Unavailable("session store unavailable", debug=type(exc).__name__) from None
            if answer > 0:
                return True
            if answer != -2:         # -1 gone, 0 the owner died (kill -9) and the session with it
                self._lookups.pop(sid, None)
                if answer == 0:
                    log.info("sse owner replica is gone; session deleted")
                return False
            if pause is None:
                break
            await asyncio.sleep(pause)
        log.warning("sse owner replica alive but not subscribed; POST refused")
        raise Unavailable("the replica holding this stream is unreachable; retry")

    async def _deliver_with_count(self, sid: str, record: SessionRecord, data: bytes, count: Count) -> bool:
        assert self._fast is not None
        keys = [self.key(sid), self.alive_key(record.replica), self.principal_key(record.fp), count.key]
        args: list[bytes | str | int] = [_encoder.encode(record), self.replica_channel(record.replica),
                                         b"%b%b\n%b" % (_DELIVER_TAG, sid.encode(), data), sid, count.window,
                                         count.limit]
        try:
            reply = await self._fast.evalsha(self._deliver_counted, keys, args)
        except (RedisError, OSError) as exc:
            raise Unavailable("session store unavailable", debug=type(exc).__name__) from None
        answer = int(reply[0])
        if answer == -3:
            raise RateLimited(max(1, int(reply[1])))
        if answer > 0:
            return True
        if answer == -2:             # owner alive, not subscribed: retry as usual, the POST is counted
            await asyncio.sleep(OWNER_RETRY[0])
            return await self.deliver(sid, record, data)
        self._lookups.pop(sid, None)
        if answer == 0:
            log.info("sse owner replica is gone; session deleted")
        return False
