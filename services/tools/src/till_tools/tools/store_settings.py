"""Store settings: general, shipping (zones and rates), checkout."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from sqlalchemy import delete, select

from till_tools.money import Money, MoneyStr, money
from till_tools.payment_keys import NO_KEYS, PaymentKeys
from till_tools.spec import Args, Ctx, Name, Result, ShortText, WriteArgs, tool
from till_tools.store.content import ShippingRate, ShippingZone, StoreSettings
from till_tools.store.models import Store
from till_tools.tools.products import parse_money

Country = Annotated[str, Meta(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, e.g. US")]
Email = Annotated[str, Meta(min_length=3, max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")]
TimeZone = Annotated[str, Meta(pattern=r"^[A-Za-z]+(?:/[A-Za-z0-9_+-]+){0,2}$", max_length=64)]


class General(msgspec.Struct, kw_only=True):
    store_name: str
    currency: str
    contact_email: str
    phone: str
    timezone: str
    weight_unit: str
    address: dict[str, Any]
    order_number_prefix: str


class RateOut(Result, kw_only=True):
    id: int
    name: str
    price: Money
    min_subtotal: Money | None


class ZoneOut(Result, kw_only=True):
    id: int
    name: str
    countries: list[str]
    rates: list[RateOut]


class ShippingOut(Result, kw_only=True):
    zones: list[ZoneOut]
    free_shipping_threshold: Money | None


class CheckoutOut(Result, kw_only=True):
    guest_checkout: bool
    require_phone: bool
    tipping: bool
    order_notes: bool
    terms_page_slug: str
    payment_provider: str
    payment_provider_api_key: Annotated[str, Meta(description="Masked; only the last 4 characters.")]


class GeneralOut(Result, kw_only=True):
    general: General
    updated_at: datetime | None


class AllSettings(Result, kw_only=True):
    general: General
    shipping: ShippingOut
    checkout: CheckoutOut


_GENERAL_DEFAULTS: dict[str, Any] = {"contact_email": "", "phone": "", "timezone": "UTC", "weight_unit": "kg",
                                     "address": {}, "order_number_prefix": "#"}
_CHECKOUT_DEFAULTS: dict[str, Any] = {"guest_checkout": True, "require_phone": False, "tipping": False,
                                      "order_notes": True, "terms_page_slug": "", "payment_provider": "manual",
                                      "payment_provider_api_key": ""}


async def _row(ctx: Ctx) -> StoreSettings:
    row = await ctx.db.get(StoreSettings, ctx.store_id)
    if row is None:
        row = StoreSettings(store_id=ctx.store_id, general={}, checkout={}, updated_at=ctx.now)
        ctx.db.add(row)
        await ctx.db.flush()
    return row


async def _general(ctx: Ctx, row: StoreSettings) -> General:
    store = await ctx.db.get(Store, ctx.store_id)
    assert store is not None
    merged = {**_GENERAL_DEFAULTS, **row.general}
    return General(store_name=store.name, currency=store.currency, **merged)


def _mask(secret: str) -> str:
    return "" if not secret else "…" + secret[-4:] if len(secret) > 8 else "…"


def _keys(ctx: Ctx) -> PaymentKeys:
    return ctx.payment_keys or NO_KEYS


def _checkout(ctx: Ctx, row: StoreSettings) -> CheckoutOut:
    merged = {**_CHECKOUT_DEFAULTS, **row.checkout}
    stored = merged["payment_provider_api_key"]
    key = _keys(ctx).reveal(ctx.store_id, stored) if stored else ""
    merged["payment_provider_api_key"] = "…" if key is None else _mask(key)   # sealed, cannot open: no hint
    return CheckoutOut(**merged)


async def _shipping(ctx: Ctx, row: StoreSettings) -> ShippingOut:
    zones = (await ctx.db.scalars(select(ShippingZone).where(ShippingZone.store_id == ctx.store_id)
                                  .order_by(ShippingZone.id))).all()
    rates = (await ctx.db.scalars(select(ShippingRate).where(ShippingRate.store_id == ctx.store_id)
                                  .order_by(ShippingRate.id))).all()
    c = ctx.currency
    return ShippingOut(
        zones=[ZoneOut(id=z.id, name=z.name, countries=list(z.countries),
                       rates=[RateOut(id=r.id, name=r.name, price=money(r.price, c),
                                      min_subtotal=None if r.min_subtotal is None else money(r.min_subtotal, c))
                              for r in rates if r.zone_id == z.id]) for z in zones],
        free_shipping_threshold=None if row.free_shipping_threshold is None else money(row.free_shipping_threshold, c))


async def all_settings(ctx: Ctx) -> AllSettings:
    row = await _row(ctx)
    return AllSettings(general=await _general(ctx, row), shipping=await _shipping(ctx, row),
                       checkout=_checkout(ctx, row))


class NoArgs(Args, kw_only=True):
    pass


@tool("get_store_settings", "Get store settings", "General store settings: name, currency, contact, time zone, "
      "address, units.", NoArgs, GeneralOut, "settings:read")
async def get_store_settings(ctx: Ctx, a: NoArgs) -> GeneralOut:
    row = await _row(ctx)
    return GeneralOut(general=await _general(ctx, row), updated_at=row.updated_at)


class AddressIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    line1: ShortText = ""
    line2: ShortText = ""
    city: ShortText = ""
    postcode: ShortText = ""
    country: Country = "US"


class UpdateStoreSettings(WriteArgs, kw_only=True):
    store_name: Name | None = None
    contact_email: Email | None = None
    phone: Annotated[str, Meta(max_length=40, pattern=r"^[0-9+() .-]*$")] | None = None
    timezone: TimeZone | None = None
    weight_unit: Literal["kg", "lb"] | None = None
    address: AddressIn | None = None
    order_number_prefix: Annotated[str, Meta(max_length=8, pattern=r"^[A-Za-z0-9#-]*$")] | None = None


@tool("update_store_settings", "Update store settings", "Change general settings (name, contact email, phone, "
      "time zone, weight unit, address, order number prefix). The currency cannot be changed here.",
      UpdateStoreSettings, GeneralOut, "settings:write", idempotent=True)
async def update_store_settings(ctx: Ctx, a: UpdateStoreSettings) -> GeneralOut:
    row = await _row(ctx)
    general = dict(row.general)
    if a.store_name is not None:
        store = await ctx.db.get(Store, ctx.store_id)
        assert store is not None
        ctx.updated("store", ctx.store_id, "store_name", store.name, a.store_name)
        store.name = a.store_name
    for name in ("contact_email", "phone", "timezone", "weight_unit", "order_number_prefix"):
        value = getattr(a, name)
        if value is not None:
            ctx.updated("settings", ctx.store_id, name, general.get(name, _GENERAL_DEFAULTS[name]), value)
            general[name] = value
    if a.address is not None:
        general["address"] = msgspec.to_builtins(a.address)
        ctx.updated("settings", ctx.store_id, "address", None, general["address"])
    row.general = general
    row.updated_at = ctx.now
    await ctx.db.flush()
    return GeneralOut(general=await _general(ctx, row), updated_at=row.updated_at)


@tool("get_shipping_settings", "Get shipping settings", "Shipping zones (countries) with their rates, and the "
      "free-shipping threshold.", NoArgs, ShippingOut, "settings:read")
async def get_shipping_settings(ctx: Ctx, a: NoArgs) -> ShippingOut:
    return await _shipping(ctx, await _row(ctx))


class RateIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    price: MoneyStr
    min_subtotal: MoneyStr | None = None


class ZoneIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    countries: Annotated[list[Country], Meta(min_length=1, max_length=250)]
    rates: Annotated[list[RateIn], Meta(min_length=1, max_length=20)]


class UpdateShipping(WriteArgs, kw_only=True):
    zones: Annotated[list[ZoneIn], Meta(max_length=50, description="Replaces all zones and rates.")] | None = None
    free_shipping_threshold: Annotated[MoneyStr | None, Meta(description='e.g. "75.00"; "0" turns it off.')] = None


@tool("update_shipping_settings", "Update shipping settings", "Replace the shipping zones and their rates "
      "and/or set the free-shipping threshold. Read get_shipping_settings first: zones given replace all zones.",
      UpdateShipping, ShippingOut, "settings:write", idempotent=True)
async def update_shipping_settings(ctx: Ctx, a: UpdateShipping) -> ShippingOut:
    row = await _row(ctx)
    if a.free_shipping_threshold is not None:
        value = parse_money(ctx, a.free_shipping_threshold, "$.free_shipping_threshold") or None
        ctx.updated("settings", ctx.store_id, "free_shipping_threshold",
                    None if row.free_shipping_threshold is None else money(row.free_shipping_threshold,
                                                                           ctx.currency).amount,
                    None if value is None else money(value, ctx.currency).amount)
        row.free_shipping_threshold = value
    if a.zones is not None:
        parsed = [[(r.name, parse_money(ctx, r.price, f"$.zones[{i}].rates[{j}].price"),
                    None if r.min_subtotal is None else parse_money(ctx, r.min_subtotal,
                                                                    f"$.zones[{i}].rates[{j}].min_subtotal"))
                   for j, r in enumerate(z.rates)] for i, z in enumerate(a.zones)]
        await ctx.db.execute(delete(ShippingRate).where(ShippingRate.store_id == ctx.store_id))
        await ctx.db.execute(delete(ShippingZone).where(ShippingZone.store_id == ctx.store_id))
        for z, rates in zip(a.zones, parsed, strict=True):
            zone = ShippingZone(store_id=ctx.store_id, name=z.name, countries=list(z.countries))
            ctx.db.add(zone)
            await ctx.db.flush()
            for name, price, minimum in rates:
                ctx.db.add(ShippingRate(store_id=ctx.store_id, zone_id=zone.id, name=name, price=price,
                                        min_subtotal=minimum))
        ctx.updated("settings", ctx.store_id, "zones", None, [z.name for z in a.zones])
    row.updated_at = ctx.now
    await ctx.db.flush()
    return await _shipping(ctx, row)


@tool("get_checkout_settings", "Get checkout settings", "Checkout options: guest checkout, phone, tipping, "
      "order notes, terms page, payment provider (its key masked).", NoArgs, CheckoutOut, "settings:read")
async def get_checkout_settings(ctx: Ctx, a: NoArgs) -> CheckoutOut:
    return _checkout(ctx, await _row(ctx))


class UpdateCheckout(WriteArgs, kw_only=True):
    guest_checkout: bool | None = None
    require_phone: bool | None = None
    tipping: bool | None = None
    order_notes: bool | None = None
    terms_page_slug: Annotated[str, Meta(max_length=200, pattern=r"^[a-z0-9-]*$")] | None = None
    payment_provider: Literal["manual", "stripe", "paypal"] | None = None
    payment_provider_api_key: Annotated[str, Meta(min_length=8, max_length=255, pattern=r"^[\x21-\x7e]+$",
                                                  description="Stored; never shown again (audit log redacts it).")] \
        | None = None


@tool("update_checkout_settings", "Update checkout settings", "Change checkout options and the payment "
      "provider (and its API key).", UpdateCheckout, CheckoutOut, "settings:write", idempotent=True)
async def update_checkout_settings(ctx: Ctx, a: UpdateCheckout) -> CheckoutOut:
    row = await _row(ctx)
    checkout = dict(row.checkout)
    for name in ("guest_checkout", "require_phone", "tipping", "order_notes", "terms_page_slug", "payment_provider"):
        value = getattr(a, name)
        if value is not None:
            ctx.updated("settings", ctx.store_id, name, checkout.get(name, _CHECKOUT_DEFAULTS[name]), value)
            checkout[name] = value
    keys = _keys(ctx)
    if a.payment_provider_api_key is not None:
        ctx.updated("settings", ctx.store_id, "payment_provider_api_key", "[REDACTED]", "[REDACTED] (replaced)")
        checkout["payment_provider_api_key"] = keys.seal(ctx.store_id, a.payment_provider_api_key)
    elif checkout.get("payment_provider_api_key"):
        # a key stored in plain text before D863 is sealed by the store's next update
        checkout["payment_provider_api_key"] = keys.at_rest(ctx.store_id, checkout["payment_provider_api_key"])
    row.checkout = checkout
    row.updated_at = ctx.now
    await ctx.db.flush()
    return _checkout(ctx, row)


TOOLS = (get_store_settings, update_store_settings, get_shipping_settings, update_shipping_settings,
         get_checkout_settings, update_checkout_settings)
