import pytest

from till_common.permissions import (
    ALL_SCOPES,
    ROLE_PERMISSIONS,
    SCOPE_DESCRIPTIONS,
    UnknownScope,
    grant_scopes,
    parse_scope,
)


def test_twenty_scopes_each_described() -> None:
    assert len(ALL_SCOPES) == 20
    assert set(SCOPE_DESCRIPTIONS) == set(ALL_SCOPES)


def test_roles_match_spec_section_5() -> None:
    assert ROLE_PERMISSIONS["owner"] == set(ALL_SCOPES)
    assert ROLE_PERMISSIONS["manager"] == set(ALL_SCOPES) - {"settings:write"}
    assert ROLE_PERMISSIONS["support"] == {"orders:read", "orders:write", "customers:read",
                                           "customers:write", "products:read"}
    assert all(s.endswith(":read") for s in ROLE_PERMISSIONS["analyst"])
    assert len(ROLE_PERMISSIONS["analyst"]) == 10


def test_no_scope_requested_grants_the_roles_full_set() -> None:
    assert set(grant_scopes("support", None)) == ROLE_PERMISSIONS["support"]


def test_scopes_beyond_the_role_are_narrowed_not_refused() -> None:
    assert grant_scopes("analyst", ("products:read", "products:write")) == ("products:read",)


def test_unknown_scope_is_an_error() -> None:
    with pytest.raises(UnknownScope):
        parse_scope("products:read admin")


def test_empty_scope_means_not_requested() -> None:
    assert parse_scope("  ") is None
