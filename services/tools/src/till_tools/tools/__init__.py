"""The ten tool categories of SPEC §6, one module each; every module exports ``TOOLS``."""

from __future__ import annotations

from types import ModuleType

from till_tools.tools import (
    analytics,
    categories,
    content,
    coupons,
    customers,
    fulfilment,
    menus,
    orders,
    products,
    store_settings,
    themes,
    variants,
)

ALL_MODULES: tuple[ModuleType, ...] = (
    products, variants, orders, fulfilment, categories, customers, analytics, coupons, content, themes, menus,
    store_settings,
)
