"""Fixtures of the fault tests: one seeded database pair per run, one stack per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from tests.faults.harness import FaultStack, Templates, fault_stack
from tests.support import PostgresServer


@pytest.fixture(scope="session")
def fault_templates(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    templates = Templates.create(tmp_path_factory.mktemp("fault-templates"))
    yield templates
    templates.drop()


@pytest.fixture
def make_stack(fault_templates: Templates, tmp_path: Path, redis_url: str,
               redis_namespace: str) -> Callable[..., AbstractContextManager[FaultStack]]:
    """``with make_stack(TILL_X="…") as stack:`` — this test's databases and settings."""

    def make(**settings: Any) -> AbstractContextManager[FaultStack]:
        return fault_stack(fault_templates, tmp_path, redis_url, redis_namespace, **settings)

    return make
