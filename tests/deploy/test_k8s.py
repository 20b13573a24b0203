"""deploy/k8s rendered with kubectl kustomize (offline) and checked for the properties SPEC §7 and
the architecture ask for: probes, hardening, the network flows, the public surface, the settings."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from deploy.checks import k8s
from deploy.cluster.runner import reads
from tests.support import unavailable

ROOT = Path(__file__).resolve().parents[2]
TILL = {"auth", "tools", "gateway", "migrate"}
WORKLOADS = ("Deployment", "StatefulSet", "Job")
PUBLIC_PATHS = {("/mcp", "Prefix"), ("/.well-known", "Prefix"), ("/login", "Exact"), ("/logout", "Exact"),
                ("/settings", "Prefix"), ("/healthz", "Exact")}
Obj = dict[str, Any]


@pytest.fixture(scope="module", params=k8s.TARGETS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Obj]]:
    try:
        k8s.kubectl()
    except RuntimeError as exc:
        unavailable(str(exc))
    target: str = request.param
    return target, k8s.render(target)


def of_kind(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def named(objs: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in of_kind(objs, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def pods(objs: list[Obj]) -> dict[str, Obj]:
    """Workload name -> its pod template."""
    return {o["metadata"]["name"]: o["spec"]["template"] for o in objs if o["kind"] in WORKLOADS}


def containers(objs: list[Obj]) -> list[tuple[str, Obj, Obj]]:
    return [(name, tpl["spec"], c) for name, tpl in pods(objs).items() for c in tpl["spec"]["containers"]]


def matches(selector: Obj, labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels", "matchExpressions"}
    assert "matchExpressions" not in selector, "keep selectors to matchLabels"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def pods_selected(objs: list[Obj], selector: Obj) -> set[str]:
    return {name for name, tpl in pods(objs).items() if matches(selector, tpl["metadata"]["labels"])}


def test_every_long_running_container_has_liveness_and_readiness_probes(rendered: tuple[str, list[Obj]]) -> None:
    _, objs = rendered
    checked = 0
    for workload, _, c in containers(objs):
        if named_kind(objs, workload) == "Job":
            continue
        assert c.get("livenessProbe"), workload
        assert c.get("readinessProbe"), workload
        checked += 1
        if c["name"] in TILL:
            port = c["ports"][0]["name"]
            assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
            assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
    assert checked >= 3


def named_kind(objs: list[Obj], name: str) -> str:
    return str(next(o["kind"] for o in objs if o["kind"] in WORKLOADS and o["metadata"]["name"] == name))


def test_every_container_is_hardened_and_bounded(rendered: tuple[str, list[Obj]]) -> None:
    _, objs = rendered
    for workload, pod, c in containers(objs):
        assert pod["securityContext"]["runAsNonRoot"] is True, workload
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, workload
        assert pod.get("automountServiceAccountToken") is False, workload
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, workload
        assert sc["readOnlyRootFilesystem"] is True, workload
        assert sc["runAsNonRoot"] is True, workload
        assert sc["capabilities"] == {"drop": ["ALL"]}, workload
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, workload
        assert set(c["resources"]["requests"]) == {"cpu", "memory"}, workload
        assert set(c["resources"]["limits"]) == {"cpu", "memory"}, workload
        tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]  # noqa: S108 - the mount path
        assert len(tmp) == 1, f"{workload}: a writable /tmp on a read-only root"
        volume = next(v for v in pod["volumes"] if v["name"] == tmp[0]["name"])
        assert "emptyDir" in volume, workload


def test_images_are_pinned_never_latest(rendered: tuple[str, list[Obj]]) -> None:
    target, objs = rendered
    for workload, _, c in containers(objs):
        name, _, tag = c["image"].rpartition(":")
        assert name, f"{workload}: {c['image']} has no tag"
        assert tag, f"{workload}: {c['image']} has no tag"
        assert "/" not in tag, f"{workload}: {c['image']} has no tag"
        assert tag != "latest", workload
        if target == "overlays/prod" and c["name"] in TILL:
            assert name.startswith("registry.example.com/till/"), c["image"]


def test_each_container_gets_only_the_settings_its_service_reads(rendered: tuple[str, list[Obj]]) -> None:
    _, objs = rendered
    cm = of_kind(objs, "ConfigMap")
    config = next(o for o in cm if o["metadata"]["name"].startswith("till-config"))
    secret = next(o for o in of_kind(objs, "Secret") if o["metadata"]["name"].startswith("till-secrets"))
    seen = set()
    for workload, _, c in containers(objs):
        if c["name"] not in TILL:
            assert not [e for e in c.get("env", []) if e["name"].startswith("TILL_")], workload
            continue
        seen.add(c["name"])
        assert "envFrom" not in c, f"{workload}: envFrom would pass every key of the ConfigMap/Secret"
        names = [e["name"] for e in c["env"]]
        assert len(names) == len(set(names)), workload
        extra = set(names) - reads(c["name"])
        assert not extra, f"{workload} is given {sorted(extra)}, which {c['name']} does not read"
        assert "TILL_INTERNAL_TOKEN" in names
        if c["name"] in ("auth", "migrate"):
            assert {"TILL_ADMIN_TOKEN", "TILL_KEY_ENCRYPTION_KEY"} <= set(names)
        else:
            assert "TILL_ADMIN_TOKEN" not in names, workload
            # tools seals stores' payment API keys with it (D863); the gateway never holds it
            assert ("TILL_KEY_ENCRYPTION_KEY" in names) == (c["name"] == "tools"), workload
        for e in c["env"]:
            ref = e["valueFrom"].get("configMapKeyRef") or e["valueFrom"]["secretKeyRef"]
            assert ref["key"] == e["name"]
            source = config if "configMapKeyRef" in e["valueFrom"] else secret
            assert ref["name"] == source["metadata"]["name"], f"{workload}: {e['name']} refers to {ref['name']}"
            assert e["name"] in source.get("data", {}), f"{workload}: {e['name']} missing in {ref['name']}"
    assert seen == TILL
    gateway = next(c for _, _, c in containers(objs) if c["name"] == "gateway")
    assert "TILL_REDIS_URL" in [e["name"] for e in gateway["env"]], "replicas share sessions through Redis"


def test_base_secret_holds_placeholders_only() -> None:
    objs = k8s.render("base")
    import base64

    secret = next(o for o in of_kind(objs, "Secret") if o["metadata"]["name"].startswith("till-secrets"))
    for key, value in secret["data"].items():
        text = base64.b64decode(value).decode()
        assert "replace-me" in text or text.startswith("redis://redis:"), key
        if key in ("TILL_INTERNAL_TOKEN", "TILL_ADMIN_TOKEN", "TILL_KEY_ENCRYPTION_KEY"):
            assert len(text) < 32, "a placeholder no service accepts"


def test_ingress_routes_only_public_paths_only_to_the_gateway(rendered: tuple[str, list[Obj]]) -> None:
    _, objs = rendered
    ingresses = of_kind(objs, "Ingress")
    assert len(ingresses) == 1
    ing = ingresses[0]
    assert "defaultBackend" not in ing["spec"]
    paths = set()
    for rule in ing["spec"]["rules"]:
        for p in rule["http"]["paths"]:
            assert p["backend"]["service"] == {"name": "till-gateway", "port": {"name": "http"}}
            paths.add((p["path"], p["pathType"]))
            assert not p["path"].startswith(("/admin", "/internal", "/metrics")), p
            assert p["path"] != "/", "a catch-all would expose every gateway route"
    assert paths == PUBLIC_PATHS
    ann = ing["metadata"]["annotations"]
    assert ann["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert ann["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
    assert int(ann["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(ann["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    assert not [k for k in ann if k.split("/")[-1].startswith(("affinity", "session-cookie", "upstream-hash-by"))]
    assert ann["nginx.ingress.kubernetes.io/load-balance"] == "round_robin"


def test_only_the_ingress_is_public(rendered: tuple[str, list[Obj]]) -> None:
    _, objs = rendered
    for svc in of_kind(objs, "Service"):
        assert svc["spec"].get("type", "ClusterIP") == "ClusterIP", svc["metadata"]["name"]
        assert svc["spec"].get("sessionAffinity", "None") == "None"
        selected = pods_selected(objs, {"matchLabels": svc["spec"]["selector"]})
        assert len(selected) == 1, svc["metadata"]["name"]
        tpl = pods(objs)[selected.pop()]
        port_names = {p["name"] for c in tpl["spec"]["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= port_names


def test_hpa_targets_the_gateway_deployment(rendered: tuple[str, list[Obj]]) -> None:
    _, objs = rendered
    (hpa,) = of_kind(objs, "HorizontalPodAutoscaler")
    ref = hpa["spec"]["scaleTargetRef"]
    assert ref == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "till-gateway"}
    named(objs, "Deployment", "till-gateway")
    assert hpa["spec"]["minReplicas"] >= 2, "two replicas at least: SSE sessions must survive one pod"
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]


def test_pdb_selectors_match_exactly_their_deployment(rendered: tuple[str, list[Obj]]) -> None:
    _, objs = rendered
    pdbs = of_kind(objs, "PodDisruptionBudget")
    assert {p["metadata"]["name"] for p in pdbs} == {"till-auth", "till-tools", "till-gateway"}
    for pdb in pdbs:
        assert pods_selected(objs, pdb["spec"]["selector"]) == {pdb["metadata"]["name"]}
        assert pdb["spec"]["maxUnavailable"] == 1


def test_migration_job_runs_till_migrate(rendered: tuple[str, list[Obj]]) -> None:
    _, objs = rendered
    job = named(objs, "Job", "till-migrate")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["migrate"]
    assert c["image"].rsplit(":", 1)[0].endswith("migrate")
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")


# --- network policies -------------------------------------------------------------------------------

def policies_for(objs: list[Obj], workload: str, direction: str) -> list[Obj]:
    labels = pods(objs)[workload]["metadata"]["labels"]
    kind = direction.capitalize()
    return [p for p in of_kind(objs, "NetworkPolicy")
            if kind in p["spec"]["policyTypes"] and matches(p["spec"]["podSelector"], labels)]


def ingress_sources(objs: list[Obj], workload: str) -> set[str]:
    """Who may open connections to ``workload``: workload names, or ns:<name> for namespaces."""
    sources: set[str] = set()
    for policy in policies_for(objs, workload, "ingress"):
        for rule in policy["spec"].get("ingress", []):
            assert rule.get("from"), f"{policy['metadata']['name']}: a rule without `from` admits everyone"
            for peer in rule["from"]:
                if "namespaceSelector" in peer:
                    assert "podSelector" not in peer
                    sources.add("ns:" + peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
                else:
                    sources |= pods_selected(objs, peer["podSelector"])
    return sources


def test_network_policies_select_existing_pods(rendered: tuple[str, list[Obj]]) -> None:
    _, objs = rendered
    for policy in of_kind(objs, "NetworkPolicy"):
        selector = policy["spec"]["podSelector"]
        if selector:
            assert pods_selected(objs, selector), f"{policy['metadata']['name']} selects no pod"
        for rule in policy["spec"].get("ingress", []) + policy["spec"].get("egress", []):
            for peer in rule.get("from", []) + rule.get("to", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    assert pods_selected(objs, peer["podSelector"]), f"{policy['metadata']['name']}: {peer}"


def test_default_deny_then_only_the_architectures_flows(rendered: tuple[str, list[Obj]]) -> None:
    target, objs = rendered
    deny = named(objs, "NetworkPolicy", "till-default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert ingress_sources(objs, "till-gateway") == {"ns:ingress-nginx"}
    assert ingress_sources(objs, "till-auth") == {"till-gateway"}
    assert ingress_sources(objs, "till-tools") == {"till-gateway"}
    assert ingress_sources(objs, "till-migrate") == set()
    if target == "overlays/dev":
        assert ingress_sources(objs, "redis") == {"till-gateway", "till-auth"}
        assert ingress_sources(objs, "postgres") == {"till-auth", "till-tools", "till-migrate"}


def egress_ports(objs: list[Obj], workload: str) -> set[tuple[str, int]]:
    """(peer, port): peer is a workload name, "dns", "internet" (public ipBlock) or "any"."""
    result: set[tuple[str, int]] = set()
    for policy in policies_for(objs, workload, "egress"):
        for rule in policy["spec"].get("egress", []):
            peers: list[str] = []
            for peer in rule.get("to", []) or [{}]:
                if "ipBlock" in peer:
                    assert "10.0.0.0/8" in peer["ipBlock"].get("except", []), "no private ranges"
                    peers.append("internet")
                elif peer.get("podSelector", {}).get("matchLabels", {}).get("k8s-app") == "kube-dns":
                    peers.append("dns")
                elif "podSelector" in peer:
                    peers += sorted(pods_selected(objs, peer["podSelector"]))
                else:
                    peers.append("any")
            for port in rule["ports"]:
                result |= {(p, port["port"]) for p in peers}
    return result


def test_egress_is_dns_plus_each_services_own_backends(rendered: tuple[str, list[Obj]]) -> None:
    _, objs = rendered
    dns = {("dns", 53)}
    assert egress_ports(objs, "till-gateway") == dns | {("till-auth", 8001), ("till-tools", 8002), ("any", 6379)}
    assert egress_ports(objs, "till-auth") == dns | {("any", 6379), ("any", 5432), ("internet", 443)}
    assert egress_ports(objs, "till-tools") == dns | {("any", 5432)}
    assert egress_ports(objs, "till-migrate") == dns | {("any", 5432)}


# --- files around the manifests ------------------------------------------------------------------------

def test_dev_postgres_init_is_the_compose_one() -> None:
    compose_sql = (ROOT / "deploy/compose/postgres-init.sql").read_text()
    assert (ROOT / "deploy/k8s/overlays/dev/postgres-init.sql").read_text() == compose_sql
    assert "CREATE DATABASE till_auth" in compose_sql
    assert "CREATE DATABASE till_tools" in compose_sql


def test_overlay_secret_files_are_never_committed() -> None:
    tracked = subprocess.run(["git", "ls-files", "deploy/k8s"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert not [f for f in tracked if f.endswith("/secrets.env")]
    assert "deploy/k8s/overlays/*/secrets.env" in (ROOT / ".gitignore").read_text().splitlines()
    for overlay in ("dev", "prod"):
        keys = {line.split("=", 1)[0] for line in (ROOT / f"deploy/k8s/overlays/{overlay}/secrets.env.example")
                .read_text().splitlines() if line and not line.startswith("#")}
        assert {"TILL_INTERNAL_TOKEN", "TILL_ADMIN_TOKEN", "TILL_KEY_ENCRYPTION_KEY", "TILL_AUTH_DATABASE_URL",
                "TILL_TOOLS_DATABASE_URL", "TILL_REDIS_URL"} <= keys


def test_schema_validation_catches_a_misspelt_field() -> None:
    deployment = named(k8s.render("base"), "Deployment", "till-gateway")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    errors = k8s.schema_errors(deployment, k8s.VERSIONS[0])
    assert errors
    assert "readinesProbe" in errors[0]
