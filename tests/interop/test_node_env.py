"""The Node installer: one npm ci per lockfile, a clear reason when npm is missing, Node 22 found."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.interop import node_env
from tests.interop.node_env import NodeEnv, NodeUnavailable
from tests.interop.node_env import installed as node_env_module_installed


def test_missing_npm_is_a_reason_not_a_crash(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(node_env, "STAMP", tmp_path / "no-stamp")     # as if node_modules were missing
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(NodeUnavailable, match="npm is not installed"):
        node_env.install()


def test_a_stamp_of_another_lockfile_means_not_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stamp = tmp_path / "stamp"
    monkeypatch.setattr(node_env, "STAMP", stamp)
    assert not node_env.installed()
    stamp.write_text("0" * 64)
    assert not node_env.installed()
    stamp.write_text(node_env._lock_hash())
    assert node_env.installed()


def test_installed_tree_brings_node_22_and_every_pinned_client(node_env: NodeEnv) -> None:
    assert node_env_module_installed()
    assert node_env.at_least(22), node_env.version           # node-linux-* from the lockfile
    for package in ("@modelcontextprotocol/sdk", "mcp-remote", "@modelcontextprotocol/inspector-cli",
                    "@modelcontextprotocol/conformance"):
        assert (node_env.modules / package / "package.json").exists(), package
    env = node_env.environ()
    assert env["PATH"].split(":")[0] == str(node_env.bin_dir)   # child `node` (inspector launcher) is ours too
