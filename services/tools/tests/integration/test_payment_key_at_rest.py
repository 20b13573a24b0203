"""A store's payment API key is encrypted at rest (D863): the column never holds the key in clear."""

from __future__ import annotations

from sqlalchemy import String, cast, select, update

from till_tools.payment_keys import PREFIX, PaymentKeys
from till_tools.store.content import StoreSettings

KEY = "sk_live_abcdefgh12345678"


async def stored_checkout(h, store_id: int = 1) -> dict:
    return (await h.sql(select(StoreSettings.checkout).where(StoreSettings.store_id == store_id)))[0][0]


async def raw_text(h, store_id: int = 1) -> str:
    """The column as the database returns it (JSON text on both engines), not as the ORM decodes it."""
    return (await h.sql(select(cast(StoreSettings.checkout, String)).where(StoreSettings.store_id == store_id)))[0][0]


async def test_a_stored_payment_key_is_sealed_and_still_shown_masked(h) -> None:
    shown = h.ok(await h.call("update_checkout_settings", {"payment_provider": "stripe",
                                                           "payment_provider_api_key": KEY}))
    assert shown["payment_provider_api_key"] == "…5678"
    stored = (await stored_checkout(h))["payment_provider_api_key"]
    assert stored.startswith(PREFIX)
    assert KEY not in await raw_text(h)
    assert "12345678" not in await raw_text(h)
    assert h.reg.payment_keys.reveal(1, stored) == KEY
    assert h.reg.payment_keys.reveal(2, stored) is None          # bound to its store: a copied value does not open
    assert h.ok(await h.call("get_checkout_settings", {}))["payment_provider_api_key"] == "…5678"
    settings = (await h.rpc("resources/read", {"uri": "store://settings"}))["result"]["contents"][0]["text"]
    assert "…5678" in settings
    assert KEY not in settings


async def test_a_plain_key_from_before_is_read_and_sealed_by_the_next_update(h) -> None:
    h.ok(await h.call("get_checkout_settings", {}))                     # the row exists
    async with h.reg.sessions() as db, db.begin():
        await db.execute(update(StoreSettings).where(StoreSettings.store_id == 1)
                         .values(checkout={"payment_provider": "stripe", "payment_provider_api_key": KEY}))
    assert h.ok(await h.call("get_checkout_settings", {}))["payment_provider_api_key"] == "…5678"
    h.ok(await h.call("update_checkout_settings", {"tipping": True}))
    assert (await stored_checkout(h))["payment_provider_api_key"].startswith(PREFIX)
    assert KEY not in await raw_text(h)
    assert h.ok(await h.call("get_checkout_settings", {}))["payment_provider_api_key"] == "…5678"


async def test_without_a_key_encryption_key_a_payment_key_is_refused_not_stored_in_clear(h) -> None:
    h.reg.payment_keys = PaymentKeys(None)                             # TILL_KEY_ENCRYPTION_KEY unset
    text = h.failed(await h.call("update_checkout_settings", {"payment_provider_api_key": KEY}))
    assert "TILL_KEY_ENCRYPTION_KEY" in text
    assert KEY not in await raw_text(h)
    assert h.ok(await h.call("update_checkout_settings", {"tipping": True}))["tipping"] is True
