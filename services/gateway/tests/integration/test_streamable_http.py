"""Streamable HTTP at /mcp over real HTTP: seed 001's endpoint table and the GW/JW/DS security rows."""

from __future__ import annotations

import json
import socket
import time

import httpx
import redis
from gw_upstream import Gateways
from tests.support import Service

RPC = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


def post(url: str, token: str | None, body: object = RPC, **headers: str) -> httpx.Response:
    h = {"Content-Type": "application/json", **headers}
    if token:
        h["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url + "/mcp", content=data, headers=h, timeout=10)


def test_seed_endpoint_table_and_gw08(gateway: Service, gateways: Gateways) -> None:
    tok = gateways.token()
    ok = post(gateway.url, tok)
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
    assert ok.json()["result"]["tools"]
    # seed 001 troubleshooting: a notification gets 202 and an empty body (Codex "Transport channel closed")
    note = post(gateway.url, tok, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert (note.status_code, note.content) == (202, b"")
    assert post(gateway.url, tok, {"jsonrpc": "2.0", "id": 5, "result": {}}).status_code == 202
    get = httpx.get(gateway.url + "/mcp", headers={"Authorization": f"Bearer {tok}"})
    assert (get.status_code, get.headers["allow"]) == (405, "POST, DELETE")
    assert httpx.delete(gateway.url + "/mcp").status_code == 200
    assert httpx.put(gateway.url + "/mcp", content=b"{}").status_code == 405
    assert post(gateway.url, tok, Accept="text/html").status_code == 406
    assert post(gateway.url, tok, **{"Content-Type": "text/plain"}).status_code == 415
    sse = post(gateway.url, tok, Accept="text/event-stream")
    assert sse.headers["content-type"] == "text/event-stream"
    assert sse.text.startswith("event: message\ndata: {")


def test_gw05_unsupported_protocol_version_header_is_400(gateway: Service, gateways: Gateways) -> None:
    tok = gateways.token()
    for bad in ("1999-01-01", "garbage"):
        assert post(gateway.url, tok, **{"MCP-Protocol-Version": bad}).status_code == 400
    assert post(gateway.url, tok, **{"MCP-Protocol-Version": "2025-06-18"}).status_code == 200


def test_gw06_gw07_gw09_protocol_errors(gateway: Service, gateways: Gateways) -> None:
    tok = gateways.token()
    parse = post(gateway.url, tok, b'{"jsonrpc":"2.0",')
    assert parse.status_code == 400 and parse.json()["error"]["code"] == -32700 and parse.json()["id"] is None
    deep = post(gateway.url, tok, b"[" * 100_000 + b"]" * 100_000)
    assert deep.json()["error"]["code"] in (-32700, -32600)
    assert post(gateway.url, tok, {"jsonrpc": "1.0", "id": 3, "method": "ping"}).json()["error"]["code"] == -32600
    assert post(gateway.url, tok, {"jsonrpc": "2.0", "id": 3, "method": 123}).json()["id"] == 3
    big_id = "i" * 100_000
    assert post(gateway.url, tok, {"jsonrpc": "2.0", "id": big_id, "method": "ping"}).json()["id"] == big_id
    batch = [{"jsonrpc": "2.0", "id": i, "method": "ping"} for i in range(3)]
    for version in ("2025-06-18", "2025-11-25"):
        r = post(gateway.url, tok, batch, **{"MCP-Protocol-Version": version})
        assert r.json()["error"]["code"] == -32600
    ok = post(gateway.url, tok, [*batch, {"jsonrpc": "2.0", "method": "notifications/x"}])   # no header: 2025-03-26
    assert [m["id"] for m in ok.json()] == [0, 1, 2]
    too_many = [{"jsonrpc": "2.0", "id": i, "method": "ping"} for i in range(51)]
    assert post(gateway.url, tok, too_many).json()["error"]["code"] == -32600
    assert post(gateway.url, tok, []).json()["error"]["code"] == -32600
    assert post(gateway.url, tok, {"jsonrpc": "2.0", "id": 1, "method": "nope"}).json()["error"]["code"] == -32601
    unknown = post(gateway.url, tok, {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "zz"}})
    assert unknown.json()["error"]["code"] == -32602
    assert post(gateway.url, tok).status_code == 200          # and the server is still fine


def test_gw01_missing_malformed_or_expired_token_gets_the_challenge(gateway: Service, gateways: Gateways) -> None:
    prm = f'resource_metadata="{gateways.public_url}/.well-known/oauth-protected-resource/mcp"'
    none = post(gateway.url, None)
    assert none.status_code == 401 and prm in none.headers["www-authenticate"]
    assert 'scope="products:read ' in none.headers["www-authenticate"]
    assert "error=" not in none.headers["www-authenticate"]
    now = int(time.time())
    for bad in ("garbage", gateways.token(exp=now - 61, iat=now - 3700), gateways.token(aud="https://other.example/mcp"),
                gateways.token(iss=gateways.public_url + "/")):
        r = post(gateway.url, bad)
        assert r.status_code == 401, bad
        assert 'error="invalid_token"' in r.headers["www-authenticate"] and prm in r.headers["www-authenticate"]
    assert post(gateway.url, gateways.token(exp=now - 30)).status_code == 200      # 60 s leeway
    for aud in (gateways.public_url, gateways.public_url + "/mcp/sse"):             # one server, three names
        assert post(gateway.url, gateways.token(aud=aud)).status_code == 200


def test_gw02_insufficient_scope_is_403_with_the_needed_scope(gateway: Service, gateways: Gateways) -> None:
    tok = gateways.token(scope="products:read")
    r = post(gateway.url, tok, {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                "params": {"name": "create_product", "arguments": {"name": "x"}}})
    assert r.status_code == 403
    challenge = r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="products:write"' in challenge
    assert "resource_metadata=" in challenge


def test_gw03_foreign_origins_are_refused(gateway: Service, gateways: Gateways) -> None:
    tok = gateways.token()
    for origin in ("https://evil.example", "null", "https://claude.ai.evil.example",
                   "http://127.0.0.1:8000.evil.example"):
        assert post(gateway.url, tok, Origin=origin).status_code == 403
        assert httpx.get(gateway.url + "/mcp/sse", headers={"Origin": origin}).status_code == 403
        assert httpx.post(gateway.url + "/mcp/sse/message?sessionId=x", headers={"Origin": origin}).status_code == 403
    assert post(gateway.url, tok, Origin="https://claude.ai").status_code == 200
    assert post(gateway.url, tok, Origin=gateways.public_url).status_code == 200


def test_gw10_tools_sees_only_the_internal_token(gateway: Service, gateways: Gateways) -> None:
    up = gateways.upstream
    for tok in (gateways.token(), up.pat()[0]):
        up.seen.clear()
        r = post(gateway.url, tok, **{"X-Till-Principal": "admin", "X-Forwarded-User": "root", "Cookie": "s=1"})
        assert r.status_code == 200
        rpc = [s for s in up.seen if s["path"] == "/internal/v1/rpc"]
        assert len(rpc) == 1
        headers = {k.lower(): v for k, v in rpc[0]["headers"].items()}
        assert headers["authorization"] == "Bearer " + "internal-" + "i" * 40
        assert tok not in json.dumps(rpc[0])
        assert not {"x-till-principal", "x-forwarded-user", "cookie"} & headers.keys()
        assert rpc[0]["body"]["principal"]["user_id"] == 1 and rpc[0]["body"]["principal"]["store_id"] == 1


def test_gw11_admin_and_internal_paths_are_not_served(gateway: Service) -> None:
    for path in ("/admin/v1/clients", "/internal/v1/revocations", "/internal/v1/call"):
        assert httpx.get(gateway.url + path).status_code == 404
        assert httpx.post(gateway.url + path).status_code == 404


def test_jw11_token_in_query_or_form_is_not_accepted(gateway: Service, gateways: Gateways) -> None:
    tok = gateways.token()
    q = httpx.post(gateway.url + f"/mcp?access_token={tok}", json=RPC)
    assert q.status_code == 401
    form = httpx.post(gateway.url + "/mcp", data={"access_token": tok})
    assert form.status_code == 401
    both = httpx.post(gateway.url + f"/mcp?access_token={tok}", json=RPC, headers={"Authorization": f"Bearer {tok}"})
    assert both.status_code == 400 and 'error="invalid_request"' in both.headers["www-authenticate"]


def test_ds01_oversized_bodies_are_refused_before_being_read(gateway: Service, gateways: Gateways) -> None:
    tok = gateways.token()
    big = b" " * (1024 * 1024 + 1)
    assert post(gateway.url, tok, big).status_code == 413

    def chunks() -> object:
        for _ in range(1100):
            yield b" " * 1024

    r = httpx.post(gateway.url + "/mcp", content=chunks(), headers={"Authorization": f"Bearer {tok}",
                                                                    "Content-Type": "application/json"})
    assert r.status_code == 413
    # Content-Length over the limit: the answer comes without sending the body at all.
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(f"POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n".encode())
        assert s.recv(100).startswith(b"HTTP/1.1 413")


def test_ds02_rate_limit_is_per_token_and_global(gateways: Gateways, redis_url: str, redis_namespace: str) -> None:
    a = gateways.start(port=gateways.first_port, TILL_RATE_LIMIT_PER_MINUTE="5")  # type: ignore[attr-defined]
    b = gateways.start(TILL_RATE_LIMIT_PER_MINUTE="5")
    tok, other = gateways.token(), gateways.token()
    codes = [post(gw.url, tok, {"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code for gw in (a, b) * 3]
    assert codes.count(200) == 5 and codes[-1] == 429
    limited = post(b.url, tok)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert post(a.url, other).status_code == 200
    keys = [k.decode() for k in redis.Redis.from_url(redis_url).scan_iter(match=f"{redis_namespace}:rl:*")]
    assert keys and all(tok not in k for k in keys)


def test_ft09_tools_down_or_stalled_gives_32603_with_a_correlation_id(gateway: Service, gateways: Gateways) -> None:
    gateways.upstream.tools_down = True                  # stalls 60 s; the gateway's timeout is 3 s
    started = time.monotonic()
    r = post(gateway.url, gateways.token(), **{"X-Request-Id": "corr-123"})
    assert time.monotonic() - started < 10
    err = r.json()["error"]
    assert err["code"] == -32603 and err["data"] == {"correlation_id": "corr-123"}
    assert "Traceback" not in r.text
