"""``serve.settle_gc``: a started service freezes its startup objects and collects young ones less often (D864)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from till_common.serve import GC_GEN0_THRESHOLD, listen_socket, server_class, settle_gc


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_startup_objects_are_frozen_and_gen0_raised() -> None:
    class Startup:
        pass

    kept = [Startup() for _ in range(100)]
    _, gen1, gen2 = gc.get_threshold()
    settle_gc()
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold() == (GC_GEN0_THRESHOLD, gen1, gen2)
    # a full collection no longer walks them, and garbage made afterwards is still collected
    cycle: list[Any] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1


async def _serve(app: Any) -> bool:
    sock = listen_socket("127.0.0.1", 0)
    server = server_class()(uvicorn.Config(app, lifespan="on", log_config=None, access_log=False))

    async def serve() -> None:
        with contextlib.suppress(SystemExit):     # uvicorn exits 3 after a failed startup
            await server.serve(sockets=[sock])

    task = asyncio.create_task(serve())
    try:
        async with asyncio.timeout(10):
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
        return server.started
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


def _app(fail: bool) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.failed" if fail else "lifespan.startup.complete",
                                "message": "no"} if fail else {"type": "lifespan.startup.complete"})
                    if fail:
                        return
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    return app


def test_a_started_server_settles_the_collector() -> None:
    assert asyncio.run(_serve(_app(fail=False))) is True
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD


def test_a_failed_startup_leaves_the_collector_alone() -> None:
    threshold = gc.get_threshold()
    assert asyncio.run(_serve(_app(fail=True))) is False
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == threshold
