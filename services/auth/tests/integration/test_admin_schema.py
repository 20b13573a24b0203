"""schemathesis against the admin API's own OpenAPI schema (/admin/v1/schema), over real HTTP with
the admin token: every response conforms to the schema (status, content type, body) and none is a
5xx — valid and invalid inputs alike (SPEC §2, SC-05, SC-06)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from tests.support import fuzz_examples

pytestmark = pytest.mark.fuzz


def test_admin_api_conforms_to_its_schema(auth: Any) -> None:
    """Each operation of the published schema, driven by schemathesis' hypothesis strategies.

    (schemathesis' own pytest plugin does not run on pytest 9 — it reads ``Function._nodeid`` —
    so the operations are iterated here, each as one hypothesis run.)"""
    schema = schemathesis.openapi.from_url(f"{auth.url}/admin/v1/schema/openapi.json")
    schema.config.update(base_url=auth.url)
    headers = {"Authorization": f"Bearer {auth.settings.admin_token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=fuzz_examples(15), deadline=None, derandomize=False,
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers)

        run()
    assert auth.http().get("/healthz").status_code == 200       # the service outlived every call


def test_admin_schema_documents_errors_and_the_bearer_scheme(auth: Any) -> None:
    doc = auth.http().get("/admin/v1/schema/openapi.json").json()
    assert doc["components"]["securitySchemes"]["AdminToken"] == {
        "type": "http", "scheme": "bearer", "description": "TILL_ADMIN_TOKEN"}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["security"] == [{"AdminToken": []}], (method, path)
            assert "application/problem+json" in op["responses"]["401"]["content"], (method, path)
