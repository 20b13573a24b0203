"""The demo tenants and users of SPEC §1, shared so auth and tools seed the same ids."""

from __future__ import annotations

from typing import Final

from till_common.permissions import Role

DEMO_STORE_ID: Final = 1
OTHER_STORE_ID: Final = 2

#: (store id, name, currency)
STORES: Final[tuple[tuple[int, str, str], ...]] = (
    (DEMO_STORE_ID, "Demo Store", "USD"),
    (OTHER_STORE_ID, "Other Store", "EUR"),
)

#: (user id, email, store id, role)
USERS: Final[tuple[tuple[int, str, int, Role], ...]] = (
    (1, "owner@demo.store", DEMO_STORE_ID, "owner"),
    (2, "support@demo.store", DEMO_STORE_ID, "support"),
    (3, "analyst@demo.store", DEMO_STORE_ID, "analyst"),
    (4, "manager@demo.store", DEMO_STORE_ID, "manager"),
    (5, "owner@other.store", OTHER_STORE_ID, "owner"),
)
