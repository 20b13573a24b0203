"""The bench's own parsing and bookkeeping, without servers (the bench itself is `make bench`)."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
from pathlib import Path

import pytest

from bench import e2e
from bench.loadgen import LoadGen, Sample, Target
from bench.profile import top_frames
from bench.report import Report, Row, median_ratio
from bench.sse import Poster, Stream, has_id, ping, post_request


def _sample(rps: float) -> Sample:
    return Sample(rps=rps, p50_ms=1.0, p99_ms=2.0, errors=0, requests=int(rps), loadgen_cpu=0.1)


def test_median_ratio_pairs_each_round_with_its_own_baseline() -> None:
    till = [_sample(100), _sample(300), _sample(50)]
    base = [_sample(1000), _sample(1000), _sample(100)]
    assert median_ratio(till, base) == 0.3          # rounds: 0.1, 0.3, 0.5


def test_report_writes_nan_as_null_and_keeps_rows(tmp_path: Path) -> None:
    report = Report()
    report.add(Row("1", "x", math.nan, "/s", ratio=math.inf, detail={"s": _sample(5.0)}))
    doc = json.loads(report.write(tmp_path / "r.json").read_text())
    assert doc["rows"][0]["value"] is None
    assert doc["rows"][0]["ratio"] is None
    assert doc["rows"][0]["detail"]["s"]["rps"] == 5.0
    assert "x" in report.table()


def test_top_frames_counts_self_and_inclusive_shares(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text("process 1;main (a.py:1);work (b.py:2) 3\nmain (a.py:1);idle (c.py:3) 1\n")
    total, own, incl = top_frames(raw)
    assert total == 4
    assert own[0] == ("work (b.py:2)", 75.0)
    assert dict(incl)["main (a.py:1)"] == 100.0


def test_wrk_script_carries_method_headers_and_body(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (the bench installs it with apt-get or falls back to Python)")
    gen = LoadGen(tmp_path, 4, kind="wrk")
    cmd = gen.command(Target("t", "http://127.0.0.1:1/mcp", b'{"a":"]]"}', {"Authorization": "Bearer x"}), 2.6)
    assert "-d3s" in cmd            # wrk takes whole seconds
    lua = Path(cmd[cmd.index("-s") + 1]).read_text()
    assert 'wrk.headers["Authorization"] = "Bearer x"' in lua
    assert '[==[{"a":"]]"}]==]' in lua


def test_ping_ids_keep_one_width_and_are_valid_json() -> None:
    assert len(ping(1)) == len(ping(999_999))
    assert json.loads(ping(7))["id"] == 1_000_000_007
    assert has_id(b'{"jsonrpc":"2.0","id":1000000007,"result":{}}', 7)


async def test_stream_reads_the_endpoint_then_hands_each_message_to_its_waiter() -> None:
    s = Stream(b"")
    s.data_received(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5a\r\nevent: endpoint\n"
                    b"data: /mcp/sse/message?sessionId=abc\n\n\r\n")
    assert await s.endpoint == "abc"
    s.waiter = asyncio.get_running_loop().create_future()
    s.data_received(b"14\r\n: heartbeat 1\n\n\r\n30\r\nevent: message\ndata: {\"id\":1}")
    assert not s.waiter.done()
    s.data_received(b"\n\n\r\n")
    assert await s.waiter == b'{"id":1}'


async def test_stream_fails_its_endpoint_on_a_non_200() -> None:
    s = Stream(b"")
    s.data_received(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
    assert s.endpoint.done()
    assert s.endpoint.exception() is not None


async def test_poster_parses_split_responses_by_content_length() -> None:
    p = Poster()
    p.waiter = asyncio.get_running_loop().create_future()
    p.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
    assert not p.waiter.done()
    p.data_received(b"cd")
    assert await p.waiter == (200, b"abcd")
    assert post_request("http://127.0.0.1:9", "/mcp", "t", b"{}").endswith(b"Content-Length: 2\r\n\r\n{}")


def _inputs(**kw: object) -> e2e.Section1Inputs:
    return e2e.Section1Inputs(gateway_url="http://g", tools_url="http://t", echo_url="http://e", sdk_url="http://s",
                              sdk_token="tok", jwt="j", pat="p", internal_token="i", principal={}, product_id=1,
                              sku="TS-001", **kw)  # type: ignore[arg-type]


def test_fastmcp_is_a_target_only_when_it_runs() -> None:
    assert "fastmcp" not in [t.name for t in e2e.targets(_inputs())]
    named = {t.name: t for t in e2e.targets(_inputs(fastmcp_url="http://f"))}
    assert named["fastmcp"].url == "http://f/mcp"
    assert named["fastmcp"].body == named["mcp sdk"].body          # same tool, same arguments as the SDK row


def test_fastmcp_row_is_the_jwt_ratio_or_says_why_it_is_missing() -> None:
    report = Report()
    e2e.fastmcp_rows({}, _inputs(fastmcp_missing="fastmcp is not installed"), report, lambda *a, **k: (0.0, 0.0))
    assert [(r.name, r.note) for r in report.rows] == [("e2e JWT vs fastmcp", "not measured: fastmcp is not installed")]
    report = Report()
    shown: list[str] = []
    samples = {"till jwt": [_sample(300), _sample(200)], "fastmcp": [_sample(100), _sample(100)]}
    e2e.fastmcp_rows(samples, _inputs(fastmcp_url="http://f"), report,
                     lambda name, *a, **k: (shown.append(name), (0.0, 0.0))[1])
    assert shown == ["fastmcp"]
    (ratio,) = report.rows
    assert (ratio.name, ratio.value, ratio.unit) == ("e2e JWT vs fastmcp", 2.5, "x")


async def test_fastmcp_baseline_builds_and_refuses_a_wrong_bearer(tmp_path: Path) -> None:
    from bench.fastmcp_server import build_fastmcp, unavailable
    from bench.servers import prepare_sdk_db

    assert unavailable() is None, unavailable()
    prepare_sdk_db(tmp_path / "f.db")
    app = build_fastmcp(str(tmp_path / "f.db"), "right")
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/mcp", "headers": [(b"authorization", b"Bearer wrong")]}
    await app(scope, receive, send)
    assert sent[0]["status"] == 401
