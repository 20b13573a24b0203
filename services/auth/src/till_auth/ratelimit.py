"""Fixed-window counters: Redis when configured (shared by replicas), else in-process."""

from __future__ import annotations

import time
from collections.abc import Callable

from redis.asyncio import Redis


class Limiter:
    def __init__(self, redis: Redis | None, namespace: str, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._ns = namespace
        self._clock = clock
        self._local: dict[str, tuple[int, int]] = {}

    def _window(self, window: int) -> tuple[int, int]:
        now = int(self._clock())
        start = now - now % window
        return start, start + window - now

    async def hit(self, bucket: str, key: str, *, limit: int, window: int) -> int | None:
        """Count one event; returns seconds to wait when over ``limit``, else None."""
        count = await self._incr(bucket, key, window)
        return self._window(window)[1] or 1 if count > limit else None

    async def peek(self, bucket: str, key: str, *, limit: int, window: int) -> int | None:
        count = await self._get(bucket, key, window)
        return self._window(window)[1] or 1 if count >= limit else None

    async def _incr(self, bucket: str, key: str, window: int) -> int:
        start, _ = self._window(window)
        name = f"{self._ns}:auth:rl:{bucket}:{start}:{key}"
        if self._redis is not None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, window + 5)
                count, _ = await pipe.execute()
            return int(count)
        if len(self._local) > 100_000:
            self._local = {k: v for k, v in self._local.items() if v[0] >= start}
        _, count = self._local.get(name, (start, 0))
        self._local[name] = (start, count + 1)
        return count + 1

    async def _get(self, bucket: str, key: str, window: int) -> int:
        start, _ = self._window(window)
        name = f"{self._ns}:auth:rl:{bucket}:{start}:{key}"
        if self._redis is not None:
            value = await self._redis.get(name)
            return int(value or 0)
        return self._local.get(name, (start, 0))[1]
