"""docker-compose.yml, .env.example and the nginx template, checked statically (no container engine)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from deploy.checks import compose
from deploy.cluster import nginx
from deploy.cluster.runner import reads

ROOT = Path(__file__).resolve().parents[2]
#: compose service -> the catalogue's name of the process it runs
TILL_SERVICES = {"auth": "auth", "tools": "tools", "gateway-1": "gateway", "gateway-2": "gateway",
                 "migrate": "migrate"}
SECRETS = {"TILL_INTERNAL_TOKEN", "TILL_ADMIN_TOKEN", "TILL_KEY_ENCRYPTION_KEY"}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return compose.load()


@pytest.fixture(scope="module")
def services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = doc["services"]
    return result


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping, so names can be checked"
    return env


def test_compose_file_is_valid_against_the_compose_spec_and_env_example() -> None:
    assert compose.check() == []


def test_admin_override_publishes_auth_on_loopback_only() -> None:
    override = compose.load(ROOT / "deploy/compose/admin.yml")
    assert compose.schema_errors(override) == []
    assert set(override["services"]) == {"auth"}
    (port,) = override["services"]["auth"]["ports"]
    assert port.startswith("127.0.0.1:")
    assert port.endswith(":8001")


def test_schema_validation_rejects_a_broken_file(doc: dict[str, Any]) -> None:
    broken = copy.deepcopy(doc)
    broken["services"]["lb"]["depends_on"]["gateway-1"]["condition"] = "service_started_eventually"
    broken["services"]["auth"]["healthcheck"]["retries"] = "many"
    broken["servicez"] = {}
    errors = compose.schema_errors(broken)
    assert len(errors) >= 3, errors


def test_only_the_load_balancer_publishes_a_port(services: dict[str, dict[str, Any]]) -> None:
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"lb"}
    assert services["lb"]["ports"] == ["${HTTP_PORT:-8080}:8080"]
    for name in ("auth", "tools", "gateway-1", "gateway-2", "redis", "postgres"):
        assert "network_mode" not in services[name], name


def test_internal_networks_keep_tools_and_auth_off_the_front(doc: dict[str, Any],
                                                             services: dict[str, dict[str, Any]]) -> None:
    nets = {name: set(s.get("networks", [])) for name, s in services.items()}
    assert nets["lb"] == {"front"}
    assert "front" not in nets["auth"] | nets["tools"] | nets["redis"] | nets["postgres"]
    # only the gateways share a network with tools; auth and tools share only the database network
    assert {n for n, v in nets.items() if v & nets["tools"] - {"db"}} == {"tools", "gateway-1", "gateway-2"}
    for name in ("gateway-auth", "gateway-tools", "redis", "db"):
        assert doc["networks"][name] == {"internal": True}


def test_every_long_running_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, s in services.items():
        if name == "migrate":
            assert s["restart"] == "no"
            continue
        test = s["healthcheck"]["test"]
        assert test[0] == "CMD", name
        assert len(test) > 1, name
    for name in ("auth", "tools", "gateway-1", "gateway-2"):
        assert any("/readyz" in part for part in services[name]["healthcheck"]["test"]), name


def test_dependencies_wait_for_health_or_completion(services: dict[str, dict[str, Any]]) -> None:
    def conditions(name: str) -> dict[str, str]:
        deps = services[name]["depends_on"]
        assert isinstance(deps, dict), f"{name}: long-form depends_on with conditions"
        return {d: v["condition"] for d, v in deps.items()}

    assert conditions("migrate") == {"postgres": "service_healthy"}
    for name in ("auth", "tools"):
        assert conditions(name)["migrate"] == "service_completed_successfully"
        assert conditions(name)["postgres"] == "service_healthy"
    assert conditions("auth")["redis"] == "service_healthy"
    for gw in ("gateway-1", "gateway-2"):
        assert conditions(gw) == {"auth": "service_healthy", "tools": "service_healthy", "redis": "service_healthy"}
    assert conditions("lb") == {"gateway-1": "service_healthy", "gateway-2": "service_healthy"}


def test_two_gateway_replicas_share_one_image_and_redis(services: dict[str, dict[str, Any]]) -> None:
    one, two = services["gateway-1"], services["gateway-2"]
    assert one == two
    assert one["build"]["target"] == "gateway"
    assert env_of(one)["TILL_REDIS_URL"].startswith("redis://redis:")
    assert env_of(services["auth"])["TILL_REDIS_URL"] == env_of(one)["TILL_REDIS_URL"]
    assert env_of(services["auth"])["TILL_REDIS_NAMESPACE"] == env_of(one)["TILL_REDIS_NAMESPACE"]


@pytest.mark.parametrize("name", sorted(TILL_SERVICES))
def test_each_container_gets_only_the_settings_its_service_reads(services: dict[str, dict[str, Any]],
                                                                 name: str) -> None:
    env = set(env_of(services[name]))
    process = TILL_SERVICES[name]
    extra = env - reads(process)
    assert not extra, f"{name} is given {sorted(extra)}, which {process} does not read"
    wanted = {"TILL_INTERNAL_TOKEN"} | ({"TILL_ADMIN_TOKEN", "TILL_KEY_ENCRYPTION_KEY"}
                                       if process in ("auth", "migrate") else set())
    assert wanted <= env


def test_no_till_settings_in_third_party_containers(services: dict[str, dict[str, Any]]) -> None:
    for name, s in services.items():
        if name not in TILL_SERVICES:
            assert not [k for k in s.get("environment", {}) if k.startswith("TILL_")], name
        assert "env_file" not in s, f"{name}: env_file would hand every secret of .env to the container"


def test_admin_token_reaches_auth_and_migrate_and_the_key_encryption_key_also_tools_only(
        services: dict[str, dict[str, Any]]) -> None:
    def holders(name: str) -> set[str]:
        return {service for service, s in services.items() if name in s.get("environment", {})}

    assert holders("TILL_ADMIN_TOKEN") == {"auth", "migrate"}
    assert holders("TILL_KEY_ENCRYPTION_KEY") == {"auth", "migrate", "tools"}   # tools: payment API keys (D863)


def test_secrets_are_required_and_left_empty_in_env_example(doc: dict[str, Any]) -> None:
    used = compose.variables(doc)
    assert {n for n, required in used.items() if required} == SECRETS | {"POSTGRES_PASSWORD"}
    example = compose.read_env_file()
    assert all(example[name] == "" for name in SECRETS | {"POSTGRES_PASSWORD"})
    with pytest.raises(compose.InterpolationError, match="TILL_ADMIN_TOKEN"):
        compose.interpolate(doc["services"]["auth"], {**example, "TILL_INTERNAL_TOKEN": "x" * 40})
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines(), "the filled-in .env is never committed"


def test_images_are_pinned_never_latest(services: dict[str, dict[str, Any]]) -> None:
    for name, s in services.items():
        image = s["image"]
        repo, _, tag = image.rpartition(":")
        assert repo, image
        assert tag, f"{name}: {image} has no tag"
        assert "/" not in tag, f"{name}: {image} has no tag"
        assert "latest" not in image, name
        if "build" not in s:   # third-party: a full version, not a moving major
            assert re.fullmatch(r"\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?", tag), f"{name}: {image}"


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "v", "EMPTY": ""}
    assert compose.interpolate("${SET}|${UNSET:-d}|${EMPTY:-d}|${EMPTY-d}|$$SET|$SET", env) == "v|d|d||$SET|v"
    with pytest.raises(compose.InterpolationError, match="EMPTY: say so"):
        compose.interpolate("${EMPTY:?say so}", env)
    assert compose.interpolate("${EMPTY?fine}", env) == ""
    assert compose.variables({"a": ["${A:?x}", "$B", "$${C}"]}) == {"A": True, "B": False}


# --- the load balancer -----------------------------------------------------------------------------

def lb_template() -> str:
    return nginx.SITE_TEMPLATE.read_text()


def directives(text: str) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def test_lb_template_is_what_compose_mounts_and_its_placeholders_are_set(services: dict[str, dict[str, Any]]) -> None:
    lb = services["lb"]
    assert "./deploy/nginx/till.conf.template:/etc/nginx/templates/default.conf.template:ro" in lb["volumes"]
    env = lb["environment"]
    assert env["NGINX_ENVSUBST_FILTER"] == "^LB_"
    assert nginx.placeholders(lb_template()) == {k for k in env if k.startswith("LB_")}
    rendered = nginx.render(lb_template(), env)
    assert "server gateway-1:8000 resolve" in rendered
    assert "server gateway-2:8000 resolve" in rendered
    assert "listen 8080;" in rendered
    # `resolve` on an upstream server needs nginx >= 1.27.3 (open source)
    version = tuple(int(x) for x in lb["image"].split(":")[1].split("-")[0].split("."))
    assert version >= (1, 27, 3), lb["image"]


def test_lb_round_robin_without_stickiness_or_buffering() -> None:
    lines = directives(lb_template())
    for forbidden in ("ip_hash", "hash ", "sticky", "least_conn", "random"):
        assert not [d for d in lines if d.startswith(forbidden)], forbidden
    assert "proxy_buffering off;" in lines
    assert "proxy_request_buffering off;" in lines
    timeouts = {d.split()[0]: int(d.split()[1].rstrip("s;")) for d in lines
                if d.startswith(("proxy_read_timeout", "proxy_send_timeout"))}
    assert timeouts["proxy_read_timeout"] >= 3600
    assert timeouts["proxy_send_timeout"] >= 3600


def test_lb_proxies_only_the_public_paths() -> None:
    proxied = set()
    for d in directives(lb_template()):
        m = re.match(r"location\s+(=\s+)?(\S+)\s*\{\s*(.*)\}", d)
        if m and "proxy_pass" in m.group(3):
            assert m.group(3).strip() == "proxy_pass http://till_gateway;"
            proxied.add((m.group(1) or "").strip() + m.group(2))
        elif m:
            assert m.group(3).strip() == "return 404;"
    assert proxied == {"=/mcp", "/mcp/", "/.well-known/", "=/login", "=/logout", "/settings/", "=/healthz",
                       "=/readyz"}
    assert not [p for p in proxied if p.lstrip("=").startswith(("/admin", "/internal", "/metrics"))]


def test_render_refuses_a_missing_placeholder() -> None:
    with pytest.raises(KeyError, match="LB_UPSTREAM_SERVERS"):
        nginx.render(lb_template(), {"LB_LISTEN": "8080"})
