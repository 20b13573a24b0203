"""The demo stores of SPEC §1: deterministic (fixed random seed) and relative to "now", so that
"orders awaiting fulfilment today" exist whenever the demo is loaded.  Idempotent: a store that
already has products is left alone.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from till_common import demo
from till_tools.audit import GENESIS
from till_tools.store.content import (
    AuditHead,
    BlogPost,
    Menu,
    MenuItem,
    Page,
    ShippingRate,
    ShippingZone,
    StoreSettings,
    Theme,
    ThemeBlock,
    ThemeSection,
    Visit,
)
from till_tools.store.models import (
    Category,
    Coupon,
    Customer,
    Fulfilment,
    Order,
    OrderLine,
    Product,
    ProductCategory,
    Refund,
    Store,
    Variant,
)

SIZES: Final = ("S", "M", "L", "XL")
SHOE_SIZES: Final = ("8", "9", "10", "11")
# (title, sku base, price in minor units, category, sizes)
CATALOGUE: Final[list[tuple[str, str, int, str, tuple[str, ...]]]] = [
    ("Classic T-Shirt", "TS-001", 2499, "T-Shirts", SIZES),
    ("V-Neck T-Shirt", "TS-002", 2699, "T-Shirts", SIZES),
    ("Pocket T-Shirt", "TS-003", 2799, "T-Shirts", SIZES),
    ("Long Sleeve Tee", "TS-004", 3299, "T-Shirts", SIZES),
    ("Graphic Tee", "TS-005", 2999, "T-Shirts", SIZES),
    ("Organic Cotton Tee", "TS-006", 3499, "T-Shirts", SIZES),
    ("Zip Hoodie", "HD-001", 5900, "Hoodies", SIZES),
    ("Pullover Hoodie", "HD-002", 5500, "Hoodies", SIZES),
    ("Fleece Crewneck", "HD-003", 4900, "Hoodies", SIZES),
    ("Denim Jacket", "JK-001", 8900, "Outerwear", SIZES),
    ("Rain Jacket", "JK-002", 9900, "Outerwear", SIZES),
    ("Chino Shorts", "SH-001", 3900, "Bottoms", SIZES),
    ("Jogger Pants", "PN-001", 4500, "Bottoms", SIZES),
    ("Slim Jeans", "PN-002", 6900, "Bottoms", SIZES),
    ("Running Shoes", "SHO-001", 11900, "Shoes", SHOE_SIZES),
    ("Canvas Sneakers", "SHO-002", 6500, "Shoes", SHOE_SIZES),
    ("Slides", "SHO-003", 2900, "Shoes", SHOE_SIZES),
    ("Canvas Tote Bag", "AC-001", 1800, "Accessories", ()),
    ("Baseball Cap", "AC-002", 2200, "Accessories", ()),
    ("Beanie", "AC-003", 1900, "Accessories", ()),
    ("Leather Belt", "AC-004", 3500, "Accessories", ()),
    ("Wool Socks 3-Pack", "AC-005", 1600, "Accessories", ()),
    ("Sunglasses", "AC-006", 4500, "Accessories", ()),
    ("Water Bottle", "AC-007", 2400, "Accessories", ()),
    ("Phone Case", "AC-008", 2000, "Accessories", ()),
    ("Keychain", "AC-009", 800, "Accessories", ()),
    ("Backpack", "AC-010", 7900, "Accessories", ()),
    ("Umbrella", "AC-011", 2600, "Accessories", ()),
    ("Knit Scarf", "AC-012", 2900, "Accessories", ()),
    ("Leather Gloves", "AC-013", 3900, "Accessories", ()),
    ("Bifold Wallet", "AC-014", 4200, "Accessories", ()),
    ("Enamel Mug", "HM-001", 1500, "Home", ()),
    ("Scented Candle", "HM-002", 2200, "Home", ()),
    ("Throw Blanket", "HM-003", 6400, "Home", ()),
    ("Linen Pillow Cover", "HM-004", 2800, "Home", ()),
    ("Yoga Mat", "HM-005", 3800, "Home", ()),
    ("Desk Plant", "HM-006", 2100, "Home", ()),
    ("Poster Print", "HM-007", 1800, "Home", ()),
    ("Dot Grid Notebook", "ST-001", 1200, "Stationery", ()),
    ("Sticker Pack", "ST-002", 600, "Stationery", ()),
    ("Kids T-Shirt", "KD-001", 1800, "Kids", ("4", "6", "8")),
    ("Kids Hoodie", "KD-002", 3400, "Kids", ("4", "6", "8")),
    ("Baby Onesie", "KD-003", 1600, "Kids", ()),
    ("Gift Card", "GC-001", 5000, "Gift Cards", ()),
    ("Limited Edition Tee", "TS-099", 3999, "T-Shirts", SIZES),
]
#: Other Store sells a few of the same things under the same names and SKUs (tenant-isolation tests).
OTHER_CATALOGUE: Final = [c for c in CATALOGUE if c[1] in {"TS-001", "HD-001", "AC-001", "AC-002", "HM-001",
                                                            "ST-001", "SHO-002", "GC-001"}]
FIRST: Final = ("Ava", "Ben", "Chloe", "Dan", "Ella", "Finn", "Grace", "Hugo", "Isla", "Jack", "Kara", "Liam",
                "Maya", "Noah", "Olive", "Paul", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Vik", "Wren", "Zoe")
LAST: Final = ("Adams", "Brown", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jones", "Khan",
               "Lopez", "Miller", "Novak", "Olsen", "Patel", "Rossi", "Smith", "Tanaka", "Weber")
SOURCES: Final = (("direct", 30), ("search", 28), ("social", 18), ("email", 10), ("referral", 8), ("ads", 6))


def _status(rng: random.Random, age_days: int) -> str:
    table: tuple[tuple[str, int], ...]
    if age_days <= 2:
        table = (("pending", 15), ("paid", 55), ("partially_fulfilled", 10), ("fulfilled", 15), ("cancelled", 5))
    elif age_days <= 7:
        table = (("pending", 5), ("paid", 20), ("partially_fulfilled", 10), ("fulfilled", 55), ("cancelled", 5),
                 ("refunded", 5))
    else:
        # old orders have shipped (or were cancelled/refunded): the fulfilment queue is recent work
        table = (("fulfilled", 80), ("cancelled", 10), ("refunded", 10))
    return rng.choices([s for s, _ in table], [w for _, w in table])[0]


async def seed_store(db: AsyncSession, store_id: int, name: str, currency: str, now: datetime) -> bool:
    """Load one demo store; False when it already has data (nothing is changed then)."""
    store = await db.get(Store, store_id)
    if store is None:
        db.add(Store(id=store_id, name=name, currency=currency))
        await db.flush()
    elif await db.scalar(select(func.count()).select_from(Product).where(Product.store_id == store_id)):
        return False
    demo_store = store_id == demo.DEMO_STORE_ID
    rng = random.Random(f"till-demo-{store_id}")   # noqa: S311 - demo data, not secrets
    products, customers, sellable = await _catalogue(db, rng, store_id, name, now, demo_store)
    await _orders(db, rng, store_id, currency, now, demo_store, products, customers, sellable)
    await _storefront(db, store_id, name, now, demo_store)
    await _traffic(db, rng, store_id, now, demo_store, products)
    if await db.get(AuditHead, store_id) is None:
        db.add(AuditHead(store_id=store_id, seq=0, hash=GENESIS))
    await db.flush()
    return True


async def _catalogue(db: AsyncSession, rng: random.Random, store_id: int, name: str, now: datetime,
                     demo_store: bool) -> tuple[list[Product], list[Customer], list[Variant]]:
    scale = 1.0 if demo_store else 0.25
    catalogue = CATALOGUE if demo_store else OTHER_CATALOGUE
    price_factor = 1.0 if demo_store else 0.9

    # categories
    categories: dict[str, Category] = {}
    for cname in dict.fromkeys([c[3] for c in catalogue] + ["Sale", "New Arrivals"]):
        slug = cname.lower().replace(" ", "-")
        categories[cname] = Category(store_id=store_id, name=cname, slug=slug, description=f"All {cname.lower()}.",
                                     created_at=now - timedelta(days=120))
    db.add_all(categories.values())
    await db.flush()

    # products and variants
    variants: list[Variant] = []
    products: list[Product] = []
    for i, (title, sku, _, cat, _) in enumerate(catalogue):
        status = "draft" if title == "Limited Edition Tee" else "archived" if sku == "AC-014" else "active"
        p = Product(store_id=store_id, title=title, slug=title.lower().replace(" ", "-"), status=status,
                    description=f"{title} from the {name} collection. Made to last.", vendor=name,
                    product_type=cat, tags=[cat.lower()], created_at=now - timedelta(days=100 - i),
                    updated_at=now - timedelta(days=100 - i))
        products.append(p)
    db.add_all(products)
    await db.flush()
    links: list[dict[str, Any]] = []
    for p, (_, sku, price, cat, sizes) in zip(products, catalogue, strict=True):
        links.append({"product_id": p.id, "category_id": categories[cat].id, "store_id": store_id})
        if rng.random() < 0.15:
            links.append({"product_id": p.id, "category_id": categories["Sale"].id, "store_id": store_id})
        unit = int(price * price_factor)
        for pos, size in enumerate(sizes or ("",), 1):
            stock = rng.choice([0, 2, 4]) if rng.random() < 0.12 else rng.randint(8, 140)
            variants.append(Variant(store_id=store_id, product_id=p.id, sku=f"{sku}-{size}" if size else sku,
                                    title=size or "Default", price=unit,
                                    compare_at_price=unit + 1000 if rng.random() < 0.2 else None, stock=stock,
                                    position=pos))
    db.add_all(variants)
    await db.execute(insert(ProductCategory), links)
    await db.flush()
    sellable = [v for v, p in ((v, next(p for p in products if p.id == v.product_id)) for v in variants)
                if p.status == "active"]

    # customers
    customers: list[Customer] = []
    for i in range(int(64 * scale) + (2 if not demo_store else 0)):
        first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
        customers.append(Customer(store_id=store_id, email=f"{first.lower()}.{last.lower()}{i}@example.com",
                                  first_name=first, last_name=last, phone=f"+1 555 01{i:02d}",
                                  accepts_marketing=rng.random() < 0.5,
                                  created_at=now - timedelta(days=rng.randint(91, 400))))
    db.add_all(customers)

    # coupons
    db.add_all([
        Coupon(store_id=store_id, code="WELCOME10", kind="percent", percent_off=10, eligibility="first_order",
               created_at=now - timedelta(days=200)),
        Coupon(store_id=store_id, code="SUMMER20", kind="percent", percent_off=20, active=False,
               starts_at=now - timedelta(days=160), ends_at=now - timedelta(days=100),
               created_at=now - timedelta(days=170)),
        Coupon(store_id=store_id, code="SAVE5", kind="fixed", amount_off=500, min_subtotal=5000,
               created_at=now - timedelta(days=90)),
        Coupon(store_id=store_id, code="VIP15", kind="percent", percent_off=15, usage_limit=100,
               once_per_customer=True, created_at=now - timedelta(days=60)),
        Coupon(store_id=store_id, code="BLACKFRIDAY30", kind="percent", percent_off=30,
               starts_at=now + timedelta(days=3), ends_at=now + timedelta(days=7), created_at=now - timedelta(days=5)),
    ])
    await db.flush()
    return products, customers, sellable


async def _orders(db: AsyncSession, rng: random.Random, store_id: int, currency: str, now: datetime,
                  demo_store: bool, products: list[Product], customers: list[Customer],
                  sellable: list[Variant]) -> None:
    """Orders over the last 90 days; the first few are today's paid orders awaiting fulfilment."""
    scale = 1.0 if demo_store else 0.25
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    drafts: list[tuple[datetime, str, Customer, list[tuple[Variant, int]]]] = []
    for i in range(int(230 * scale) + 4):
        if i < (8 if demo_store else 3):
            created = midnight + (now - midnight) * rng.random()
            status = "paid"
        else:
            created = now - timedelta(days=rng.randint(0, 89), seconds=rng.randint(0, 86_399))
            status = _status(rng, (now - created).days)
        picks = rng.sample(sellable, k=rng.randint(1, min(4, len(sellable))))
        lines = [(v, rng.choices((1, 2, 3), (70, 22, 8))[0]) for v in picks]
        if status == "partially_fulfilled" and len(lines) == 1 and lines[0][1] == 1:
            lines = [(lines[0][0], 2)]
        drafts.append((created, status, rng.choice(customers), lines))
    drafts.sort(key=lambda d: d[0])      # numbers follow time, like a real store
    orders: list[tuple[Order, list[tuple[Variant, int]]]] = []
    for n, (created, status, cust, lines) in enumerate(drafts):
        subtotal = sum(v.price * q for v, q in lines)
        coupon = "WELCOME10" if rng.random() < 0.12 else None
        discount = subtotal * 10 // 100 if coupon else 0
        shipping = 0 if subtotal >= 7500 else 500
        total = subtotal - discount + shipping
        refunded = total if status == "refunded" else total // 4 if status == "fulfilled" and rng.random() < 0.06 else 0
        o = Order(store_id=store_id, number=1001 + n, customer_id=cust.id, email=cust.email, status=status,
                  currency=currency, subtotal=subtotal, discount_total=discount, shipping_total=shipping, total=total,
                  refunded_total=refunded, coupon_code=coupon,
                  shipping_address={"name": f"{cust.first_name} {cust.last_name}", "city": "Springfield",
                                    "country": "US"},
                  created_at=created, updated_at=created,
                  paid_at=None if status in ("pending", "cancelled") else created + timedelta(minutes=2),
                  fulfilled_at=created + timedelta(days=1) if status in ("fulfilled", "refunded") else None,
                  cancelled_at=created + timedelta(hours=5) if status == "cancelled" else None)
        orders.append((o, lines))
    db.add_all([o for o, _ in orders])
    await db.flush()

    titles = {p.id: p.title for p in products}
    after: list[tuple[Order, list[OrderLine]]] = []
    for o, lines in orders:
        row_lines = [OrderLine(store_id=store_id, order_id=o.id, product_id=v.product_id, variant_id=v.id, sku=v.sku,
                               title=f"{titles[v.product_id]} - {v.title}", quantity=q, unit_price=v.price,
                               fulfilled_quantity=q if o.status in ("fulfilled", "refunded") else 0)
                     for v, q in lines]
        if o.status == "partially_fulfilled":
            first = row_lines[0]
            first.fulfilled_quantity = first.quantity if len(row_lines) > 1 else first.quantity - 1
        after.append((o, row_lines))
    db.add_all([ln for _, row_lines in after for ln in row_lines])
    await db.flush()
    extras: list[Any] = []
    for o, row_lines in after:
        shipped = [{"line_id": ln.id, "quantity": ln.fulfilled_quantity} for ln in row_lines if ln.fulfilled_quantity]
        if shipped:
            extras.append(Fulfilment(store_id=store_id, order_id=o.id, carrier=rng.choice(["UPS", "USPS", "DHL"]),
                                     tracking_number=f"1Z{rng.randint(10**9, 10**10 - 1)}", items=shipped,
                                     created_at=o.created_at + timedelta(days=1)))
        if o.refunded_total:
            extras.append(Refund(store_id=store_id, order_id=o.id, amount=o.refunded_total, currency=currency,
                                 reason="customer return" if o.status == "refunded" else "damaged item",
                                 created_at=o.created_at + timedelta(days=5)))
    db.add_all(extras)


async def _storefront(db: AsyncSession, store_id: int, name: str, now: datetime, demo_store: bool) -> None:
    """Blog posts, pages, the theme with sections and blocks, two menus, settings and shipping."""
    posts = [("Spring Lookbook", "Our favourite outfits for the season."),
             ("How We Source Organic Cotton", "A visit to the farms behind our tees."),
             ("Caring for Your Denim", "Wash less, wear more."),
             ("Behind the Scenes", "Meet the team packing your orders."),
             ("Gift Guide", "Ideas for everyone on your list."),
             ("Sustainability Report", "What we changed this year.")][: 6 if demo_store else 2]
    for k, (title, body) in enumerate(posts):
        published = k < len(posts) - 1
        at = now - timedelta(days=80 - 12 * k)
        db.add(BlogPost(store_id=store_id, title=title, slug=title.lower().replace(" ", "-"), body=body * 3,
                        author="Till Team", tags=["news"], published=published,
                        published_at=at if published else None, created_at=at, updated_at=at))
    for title, body in [("About Us", f"{name} makes everyday clothing."), ("FAQ", "Answers to common questions."),
                        ("Shipping Policy", "Orders ship within 2 business days."),
                        ("Returns Policy", "Returns within 30 days."), ("Contact", "Write to us any time."),
                        ("Privacy Policy", "We keep your data safe.")][: 6 if demo_store else 2]:
        db.add(Page(store_id=store_id, title=title, slug=title.lower().replace(" ", "-"), body=body,
                    created_at=now - timedelta(days=150), updated_at=now - timedelta(days=150)))

    # theme with sections and blocks
    theme = Theme(store_id=store_id, name="Dawn", role="main",
                  settings={"color_primary": "#1a1a1a", "color_accent": "#e85d04", "font_heading": "Inter",
                            "font_body": "Inter", "logo_url": "/assets/logo.svg", "show_cart_count": True},
                  updated_at=now - timedelta(days=30))
    db.add_all([theme, Theme(store_id=store_id, name="Debut", role="unpublished", settings={},
                             updated_at=now - timedelta(days=300))])
    await db.flush()
    sections: list[tuple[str, str, list[tuple[str, dict[str, Any]]]]] = [
                ("header", "header", [("logo", {}), ("menu", {"menu": "main-menu"})]),
                ("hero", "image-banner", [("heading", {"text": "New season, new basics"}),
                                          ("text", {"text": "Soft tees from organic cotton."}),
                                          ("button", {"label": "Shop now", "url": "/collections/t-shirts"})]),
                ("featured-products", "featured-collection", [("collection", {"collection": "new-arrivals",
                                                                              "count": 8})]),
                ("testimonials", "testimonials", [("quote", {"text": "Best tee I own.", "author": "Ava"}),
                                                  ("quote", {"text": "Fast shipping!", "author": "Ben"})]),
                ("newsletter", "newsletter", [("heading", {"text": "Join the list"})]),
                ("footer", "footer", [("menu", {"menu": "footer"}), ("text", {"text": f"© {name}"})])]
    for pos, (key, stype, blocks) in enumerate(sections, 1):
        sec = ThemeSection(store_id=store_id, theme_id=theme.id, key=key, type=stype, position=pos, enabled=True,
                           settings={"padding": "medium"})
        db.add(sec)
        await db.flush()
        db.add_all([ThemeBlock(store_id=store_id, section_id=sec.id, type=t, position=j, settings=s)
                    for j, (t, s) in enumerate(blocks, 1)])

    # two menus, the main one nested
    main = Menu(store_id=store_id, handle="main-menu", title="Main menu")
    footer = Menu(store_id=store_id, handle="footer", title="Footer menu")
    db.add_all([main, footer])
    await db.flush()
    shop = MenuItem(store_id=store_id, menu_id=main.id, title="Shop", url="/collections/all", position=2)
    db.add_all([MenuItem(store_id=store_id, menu_id=main.id, title="Home", url="/", position=1), shop,
                MenuItem(store_id=store_id, menu_id=main.id, title="Blog", url="/blogs/news", position=3),
                MenuItem(store_id=store_id, menu_id=main.id, title="About", url="/pages/about-us", position=4)])
    await db.flush()
    db.add_all([MenuItem(store_id=store_id, menu_id=main.id, parent_id=shop.id, title=t, url=f"/collections/{s}",
                         position=j) for j, (t, s) in enumerate([("T-Shirts", "t-shirts"), ("Hoodies", "hoodies"),
                                                                 ("Accessories", "accessories")], 1)])
    db.add_all([MenuItem(store_id=store_id, menu_id=footer.id, title=t, url=f"/pages/{s}", position=j)
                for j, (t, s) in enumerate([("FAQ", "faq"), ("Shipping", "shipping-policy"),
                                            ("Returns", "returns-policy"), ("Contact", "contact")], 1)])

    # settings
    db.add(StoreSettings(store_id=store_id, updated_at=now - timedelta(days=10), free_shipping_threshold=7500,
                         general={"contact_email": f"hello@{name.split()[0].lower()}.store", "phone": "+1 555 0100",
                                  "timezone": "America/New_York" if demo_store else "Europe/Berlin",
                                  "weight_unit": "lb" if demo_store else "kg",
                                  "address": {"line1": "1 Market St", "city": "Springfield",
                                              "country": "US" if demo_store else "DE"},
                                  "order_number_prefix": "#"},
                         checkout={"guest_checkout": True, "require_phone": False, "tipping": False,
                                   "order_notes": True, "terms_page_slug": "returns-policy",
                                   "payment_provider": "stripe", "payment_provider_api_key": ""}))
    zone_home = ShippingZone(store_id=store_id, name="Domestic", countries=["US"] if demo_store else ["DE"])
    zone_world = ShippingZone(store_id=store_id, name="International", countries=["CA", "GB", "FR", "AU"])
    db.add_all([zone_home, zone_world])
    await db.flush()
    db.add_all([ShippingRate(store_id=store_id, zone_id=zone_home.id, name="Standard", price=500),
                ShippingRate(store_id=store_id, zone_id=zone_home.id, name="Express", price=1500),
                ShippingRate(store_id=store_id, zone_id=zone_world.id, name="International", price=2000)])
    await db.flush()


async def _traffic(db: AsyncSession, rng: random.Random, store_id: int, now: datetime, demo_store: bool,
                   products: list[Product]) -> None:
    """Sessions of 1 to 4 page views over the last 90 days."""
    scale = 1.0 if demo_store else 0.25
    visits: list[dict[str, Any]] = []
    active = [p for p in products if p.status == "active"]
    for day in range(90):
        for s in range(int(rng.randint(20, 40) * scale) + 1):
            source = rng.choices([x for x, _ in SOURCES], [w for _, w in SOURCES])[0]
            start = now - timedelta(days=day, seconds=rng.randint(0, 86_000))
            sid = f"s{store_id}-{day}-{s}"
            for k in range(rng.randint(1, 4)):
                p = rng.choice(active) if rng.random() < 0.7 else None
                visits.append({"store_id": store_id, "session_id": sid, "source": source,
                               "path": f"/products/{p.slug}" if p else rng.choice(["/", "/collections/all",
                                                                                   "/blogs/news"]),
                               "product_id": p.id if p else None,
                               "occurred_at": min(start + timedelta(seconds=40 * k), now)})
    await db.execute(insert(Visit), visits)


async def seed_all(db: AsyncSession, now: datetime | None = None) -> list[int]:
    now = now or datetime.now(UTC)
    seeded = []
    for store_id, name, currency in demo.STORES:
        if await seed_store(db, store_id, name, currency, now):
            seeded.append(store_id)
    return seeded
