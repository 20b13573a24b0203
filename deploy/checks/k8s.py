"""``make k8s-validate``: render the kustomize base and every overlay with ``kubectl kustomize``
(offline) and validate every object against the Kubernetes OpenAPI schemas bundled with
kubernetes-validate, strictly (unknown fields are errors), for the oldest and newest versions
we support.

Overlays generate their Secret from ``secrets.env``, which is never committed; rendering happens
on a temporary copy of deploy/k8s where each overlay's ``secrets.env`` is made from its
``secrets.env.example`` with generated values, so a real secrets file is never read.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
TARGETS = ("base", "overlays/dev", "overlays/prod")
#: Oldest supported (autoscaling/v2, policy/v1, PSA labels are all GA there) and newest bundled.
VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())


def kubectl() -> str:
    found = shutil.which("kubectl") or ("/usr/bin/kubectl" if os.access("/usr/bin/kubectl", os.X_OK) else None)
    if found is None:
        raise RuntimeError("kubectl is not installed (it renders the kustomizations offline)")
    return found


def synthetic_secrets(example: Path) -> str:
    lines = []
    for line in example.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.partition("=")
        token = secrets.token_urlsafe(32)
        value = re.sub(r"<[^>]*>", token, value) if value else token
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


@contextmanager
def staged() -> Iterator[Path]:
    """A copy of deploy/k8s without any real secrets.env, with synthetic ones in their place."""
    with tempfile.TemporaryDirectory(prefix="till-k8s-") as tmp:
        copy = Path(tmp) / "k8s"
        shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("secrets.env"))
        for example in copy.glob("overlays/*/secrets.env.example"):
            (example.parent / "secrets.env").write_text(synthetic_secrets(example))
        yield copy


def render(target: str, root: Path | None = None) -> list[dict[str, Any]]:
    """The objects of ``target`` ("base", "overlays/dev", …) as kubectl kustomize renders them."""
    if root is None:
        with staged() as copy:
            return render(target, copy)
    done = subprocess.run([kubectl(), "kustomize", str(root / target)],  # noqa: S603
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {target}: {done.stderr.strip()}")
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def schema_errors(obj: dict[str, Any], version: str) -> list[str]:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(str(p) for p in exc.path) or '<root>'}: {exc.message}"]
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as exc:
        return [str(exc)]
    return []


def check() -> list[str]:
    problems: list[str] = []
    with staged() as copy:
        for target in TARGETS:
            try:
                objects = render(target, copy)
            except RuntimeError as exc:
                problems.append(str(exc))
                continue
            if not objects:
                problems.append(f"{target}: renders no objects")
            for obj in objects:
                name = f"{target}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
                for version in VERSIONS:
                    problems += [f"{name} (Kubernetes {version}): {e}" for e in schema_errors(obj, version)]
    return problems


def main() -> int:
    problems = check()
    for p in problems:
        print(f"k8s-validate: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"k8s-validate: {', '.join(TARGETS)} render and every object is valid (strict) against "
          f"Kubernetes {' and '.join(VERSIONS)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
