"""``make compose-config``: docker-compose.yml checked without a container engine.

1. YAML (anchors and merge keys resolved) validated against the Compose Specification's JSON
   schema, as shipped by check-jsonschema (``vendor/compose-spec.json``, Apache-2.0).
2. Interpolated the way ``docker compose`` does (``${VAR}``, ``${VAR:-default}``,
   ``${VAR:?message}``, ``$$``) with the values of .env.example: every variable the file uses must
   be declared there, and the required ones must be exactly the secrets .env.example leaves empty.
3. The interpolated document, with generated secrets, validated against the schema again.
4. Where a ``docker compose`` plugin exists, ``docker compose config --quiet`` as well.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

_VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


class InterpolationError(ValueError):
    pass


@cache
def compose_schema() -> dict[str, Any]:
    text = (importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def load(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{path.name}: not a mapping")
    return doc


def schema_errors(doc: Mapping[str, Any]) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{e.json_path}: {e.message}" for e in sorted(validator.iter_errors(doc), key=str)]


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path.name}: not KEY=VALUE: {line!r}")
        values[key.strip()] = value.strip()
    return values


def variables(doc: Any) -> dict[str, bool]:
    """Every variable the document interpolates -> whether it is required (``:?`` / ``?``)."""
    found: dict[str, bool] = {}

    def walk(node: Any) -> None:
        if isinstance(node, str):
            for m in _VAR.finditer(node):
                name = m.group(2) or m.group(5)
                if name:
                    found[name] = found.get(name, False) or (m.group(3) or "").endswith("?")
        elif isinstance(node, Mapping):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    return found


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    """Compose's interpolation: unset and empty differ for ``-``/``?`` and agree for ``:-``/``:?``."""
    if isinstance(node, str):
        def sub(m: re.Match[str]) -> str:
            if m.group(1):
                return "$"
            name = m.group(2) or m.group(5)
            op, arg = m.group(3), m.group(4) or ""
            value = env.get(name)
            missing = value is None or (op is not None and op.startswith(":") and value == "")
            if op and op.endswith("?") and missing:
                raise InterpolationError(f"{name}: {arg or 'required'}")
            if op and op.endswith("-") and missing:
                return arg
            return value or ""
        return _VAR.sub(sub, node)
    if isinstance(node, Mapping):
        return {k: interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env) for v in node]
    return node


def check(path: Path = COMPOSE_FILE, env_example: Path = ENV_EXAMPLE) -> list[str]:
    problems: list[str] = []
    doc = load(path)
    problems += [f"schema: {e}" for e in schema_errors(doc)]
    example = read_env_file(env_example)
    used = variables(doc)
    problems += [f"{name} is used by {path.name} but not declared in {env_example.name}"
                 for name in sorted(used.keys() - example.keys())]
    required = {n for n, req in used.items() if req}
    empty = {k for k, v in example.items() if v == ""}
    problems += [f"{n} is required but {env_example.name} gives it a value; leave secrets empty"
                 for n in sorted(required - empty)]
    filled = {**example, **{n: secrets.token_urlsafe(32) for n in empty}}
    try:
        resolved = interpolate(doc, filled)
    except InterpolationError as exc:
        problems.append(f"interpolation with every secret set: {exc}")
    else:
        problems += [f"schema after interpolation: {e}" for e in schema_errors(resolved)]
    problems += docker_compose_config(path, filled)
    return problems


def docker_compose_config(path: Path, env: Mapping[str, str]) -> list[str]:
    """``docker compose config --quiet`` where the compose plugin exists (not on CI's machine)."""
    docker = shutil.which("docker")
    if docker is None:
        return []
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30, check=False)  # noqa: S603
    if probe.returncode != 0:
        return []
    with tempfile.NamedTemporaryFile("w", suffix=".env") as f:
        f.write("".join(f"{k}={v}\n" for k, v in env.items()))
        f.flush()
        done = subprocess.run([docker, "compose", "--env-file", f.name, "-f", str(path), "config", "--quiet"],  # noqa: S603
                              capture_output=True, text=True, timeout=60, check=False)
    return [] if done.returncode == 0 else [f"docker compose config: {done.stderr.strip()}"]


def main() -> int:
    problems = check()
    for p in problems:
        print(f"compose-config: {p}", file=sys.stderr)
    if problems:
        return 1
    doc = load()
    print(f"compose-config: {COMPOSE_FILE.name} is valid (compose-spec schema, interpolation from "
          f"{ENV_EXAMPLE.name}); services: {', '.join(doc['services'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
