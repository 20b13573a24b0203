"""The Dockerfile and .dockerignore, checked without a container engine, and the build's uv steps
replayed on a copy of the build context to prove each image's virtualenv runs without sources."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from deploy.checks import compose
from deploy.checks import dockerfile as df

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"auth": ("till-auth", "8001"), "tools": ("till-tools", "8002"), "gateway": ("till-gateway", "8000"),
           "migrate": ("till-cli", None)}
ARGS, STAGES = df.stages()


def scripts_of(package: str) -> set[str]:
    for pyproject in ROOT.glob("*/*/pyproject.toml"):
        data = tomllib.loads(pyproject.read_text())
        if data["project"]["name"] == package:
            return set(data["project"].get("scripts", {}))
    raise LookupError(package)


def git_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def sync_commands(stage: df.Stage) -> list[list[str]]:
    return [shlex.split(run.split("uv sync", 1)[1]) for run in stage.all("RUN") if "uv sync" in run]


def test_every_compose_build_target_exists() -> None:
    built = {s["build"]["target"] for s in compose.load()["services"].values() if "build" in s}
    assert built == set(TARGETS)
    assert set(TARGETS) <= STAGES.keys()
    assert list(STAGES)[-1] == "gateway", "a plain `docker build .` gives the public face"


def test_base_images_are_pinned_slim_python_311() -> None:
    image = ARGS["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", image), image
    for stage in STAGES.values():
        base = df.resolve_base(stage, ARGS)
        assert base in STAGES or base == image, f"{stage.name} starts from {base}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", STAGES["builder"].one("ARG").split("=", 1)[1])


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_build_stage_installs_its_package_from_the_lock(target: str) -> None:
    package = TARGETS[target][0]
    first, second = sync_commands(STAGES[f"build-{target}"])
    assert {"--frozen", "--no-dev", "--no-install-workspace"} <= set(first)
    assert {"--frozen", "--no-dev", "--no-editable"} <= set(second)
    for cmd in (first, second):
        assert cmd[cmd.index("--package") + 1] == package


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_runtime_image_is_non_root_venv_only_with_python_healthcheck(target: str) -> None:
    stage = STAGES[target]
    assert stage.base == "runtime"
    runtime = STAGES["runtime"]
    user = runtime.one("USER").split(":")[0]
    assert user.isdigit()
    assert int(user) >= 1000
    assert not stage.all("USER"), "the runtime's non-root user is not overridden"
    assert stage.all("COPY") == [f"--from=build-{target} /app/.venv /app/.venv"]
    for s in (stage, runtime):
        assert not [r for r in s.all("RUN") if re.search(r"apt-get|pip install|uv |gcc|curl|wget", r)], s.name
    entry = stage.exec_form("ENTRYPOINT")
    assert entry[0] in scripts_of(TARGETS[target][0])
    port = TARGETS[target][1]
    health = stage.one("HEALTHCHECK")
    if port is None:
        assert health == "NONE"
        return
    cmd = stage.exec_form("CMD")
    assert cmd == ["--host", "0.0.0.0", "--port", port]
    assert stage.one("EXPOSE") == port
    assert "CMD [\"python\"" in health
    assert f"127.0.0.1:{port}/healthz" in health
    assert "curl" not in health
    assert "wget" not in health


def test_dockerignore_sends_sources_and_lock_but_not_tests_or_local_state() -> None:
    rules = df.ignore_rules()
    files = git_files()
    member = re.compile(r"(libs|services)/[^/]+/(pyproject\.toml|src/)")
    copied = ["pyproject.toml", "uv.lock", *[f for f in files if member.match(f)]]
    assert len(copied) > 20
    assert [f for f in copied if not df.in_context(f, rules)] == []
    for f in [*[f for f in files if "/tests/" in f or f.startswith(("tests/", "bench/", "deploy/", "docs/"))],
              ".env", ".venv/bin/python", "var/auth.db", "services/auth/src/till_auth/__pycache__/app.cpython-311.pyc"]:
        assert not df.in_context(f, rules), f


def test_every_copy_source_is_in_the_build_context() -> None:
    rules = df.ignore_rules()
    for stage in STAGES.values():
        for copy in stage.all("COPY"):
            if copy.startswith("--from="):
                continue
            *sources, _dest = copy.split()
            for src in sources:
                assert (ROOT / src).exists(), src
                if (ROOT / src).is_file():
                    assert df.in_context(src, rules), src


@pytest.mark.parametrize("target", ["gateway", "migrate"])
def test_build_steps_produce_a_venv_that_runs_without_the_sources(target: str, tmp_path: Path) -> None:
    """Replays the stage's two `uv sync` commands on a copy of the build context (offline, from
    uv's cache), deletes the sources, and runs the image's entry point from the venv."""
    uv = shutil.which("uv") or os.path.expanduser("~/.local/bin/uv")
    if not os.access(uv, os.X_OK):
        pytest.skip("uv is not on PATH")
    context = tmp_path / "src"
    rules = df.ignore_rules()
    for f in git_files():
        if df.in_context(f, rules) and (ROOT / f).is_file():
            (context / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, context / f)
    venv = tmp_path / "venv"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))},
           "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON": sys.executable, "UV_OFFLINE": "1",
           "UV_PYTHON_DOWNLOADS": "never"}
    for cmd in sync_commands(STAGES[f"build-{target}"]):
        done = subprocess.run([uv, "sync", "--quiet", *cmd], cwd=context, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    shutil.rmtree(context)
    entry = STAGES[target].exec_form("ENTRYPOINT")[0]
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("TILL_")}
    done = subprocess.run([str(venv / "bin" / entry), "--help"], cwd=tmp_path, env=run_env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert entry in done.stdout or "usage" in done.stdout.lower()
    installed = {p.name for p in (venv / "lib").glob("python3*/site-packages/*")}
    assert "pytest" not in installed, "dev dependencies stay out of images"
