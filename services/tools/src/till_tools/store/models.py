"""The store schema: catalogue, customers, orders.  Money is integer minor units plus an ISO 4217
currency (SPEC §6).  Every table carries ``store_id``; ids come from one sequence per table, so
they are unique across stores and never renumbered (SQLite: ``AUTOINCREMENT``, no reuse).

Timestamps are stored as naive UTC (``UTCDateTime``) so that day/week/month bucketing in SQL means
the same thing on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects import sqlite as sqlite_types
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

AUTOINC = {"sqlite_autoincrement": True}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in Python, naive UTC in the column (identical on SQLite and PostgreSQL)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):   # SQLite through raw SQL paths
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)

    # SQLite: one function per value instead of this decorator's wrapper around the dialect's
    # DATETIME processors (a %-format of a dict per bind; a second call per result); the very same
    # text and values, checked against the generic path in tests/unit/test_conversions.py (D892)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        generic = super().bind_processor(dialect)
        if not _default_sqlite_datetime(self, dialect) or generic is None:
            return generic
        fallback = generic

        def process(value: Any) -> Any:
            if type(value) is datetime:
                if value.tzinfo is not None:
                    value = value.astimezone(UTC).replace(tzinfo=None)
                if value.year >= 1000:       # the storage format pads years to 4 digits, as isoformat
                    return value.isoformat(" ", "microseconds")
            return fallback(value)

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        generic = super().result_processor(dialect, coltype)
        if not _default_sqlite_datetime(self, dialect) or generic is None:
            return generic
        fallback = generic
        parse = datetime.fromisoformat

        def process(value: Any) -> Any:
            if type(value) is str:
                return parse(value).replace(tzinfo=UTC)
            return fallback(value)

        return process


def _default_sqlite_datetime(t: TypeDecorator[Any], dialect: Dialect) -> bool:
    """SQLite's DATETIME with its default storage format and no custom regexp (what every column uses)."""
    if dialect.name != "sqlite":
        return False
    impl = t.load_dialect_impl(dialect)
    impl = dialect.type_descriptor(impl)
    return (isinstance(impl, SQLITE_DATETIME) and getattr(impl, "_reg", None) is None
            and getattr(impl, "_storage_format", None) == _SQLITE_DATETIME_FORMAT)


SQLITE_DATETIME = sqlite_types.DATETIME
_SQLITE_DATETIME_FORMAT: Final = ("%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d"
                                  ".%(microsecond)06d")      # sqlite.DATETIME's default


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


def store_fk() -> Mapped[int]:
    return mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)


class Store(Base):
    __tablename__ = "stores"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)    # the same id as in auth
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Category(Base):
    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("store_id", "slug"), AUTOINC)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("store_id", "slug"), Index("ix_products_store_title", "store_id", "title"),
                      AUTOINC)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    title: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="active")     # active | draft | archived
    vendor: Mapped[str] = mapped_column(String(200), default="")
    product_type: Mapped[str] = mapped_column(String(100), default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ProductCategory(Base):
    __tablename__ = "product_categories"
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True,
                                             index=True)
    store_id: Mapped[int] = store_fk()


class Variant(Base):
    __tablename__ = "variants"
    # SKU lookups are case-insensitive (``lower(sku) = :sku`` within a store): every get_variant,
    # update_inventory and get_product by SKU; without it a scan of the store's variants (D893)
    __table_args__ = (UniqueConstraint("store_id", "sku"), Index("ix_variants_store_lower_sku", "store_id",
                                                                 func.lower(text("sku"))), AUTOINC)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200), default="Default")
    price: Mapped[int] = mapped_column(BigInteger)                      # minor units
    compare_at_price: Mapped[int | None] = mapped_column(BigInteger)
    stock: Mapped[int] = mapped_column(Integer, default=0)
    position: Mapped[int] = mapped_column(Integer, default=1)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("store_id", "email"), AUTOINC)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    accepts_marketing: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


ORDER_STATUSES = ("pending", "paid", "partially_fulfilled", "fulfilled", "cancelled", "refunded")
#: statuses whose money counts as sales (refunds are subtracted separately)
SALES_STATUSES = ("paid", "partially_fulfilled", "fulfilled", "refunded")
#: statuses that still need shipping
AWAITING_FULFILMENT = ("paid", "partially_fulfilled")


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("store_id", "number"),
                      Index("ix_orders_store_created", "store_id", "created_at"),
                      Index("ix_orders_store_status", "store_id", "status"), AUTOINC)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    number: Mapped[int] = mapped_column(Integer)                        # shown to merchants: #1001
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    email: Mapped[str] = mapped_column(String(320), default="")
    status: Mapped[str] = mapped_column(String(24), default="pending")
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int] = mapped_column(BigInteger, default=0)
    discount_total: Mapped[int] = mapped_column(BigInteger, default=0)
    shipping_total: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_total: Mapped[int] = mapped_column(BigInteger, default=0)
    coupon_code: Mapped[str | None] = mapped_column(String(64))
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (AUTOINC,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"), index=True)
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id", ondelete="SET NULL"))
    sku: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(400))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)
    fulfilled_quantity: Mapped[int] = mapped_column(Integer, default=0)


class Fulfilment(Base):
    __tablename__ = "fulfilments"
    __table_args__ = (AUTOINC,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    carrier: Mapped[str] = mapped_column(String(100), default="")
    tracking_number: Mapped[str] = mapped_column(String(100), default="")
    items: Mapped[list[dict[str, int]]] = mapped_column(JSON, default=list)   # [{line_id, quantity}]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (AUTOINC,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(500), default="")
    restock: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OrderNote(Base):
    __tablename__ = "order_notes"
    __table_args__ = (AUTOINC,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text)
    author_user_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Coupon(Base):
    __tablename__ = "coupons"
    __table_args__ = (UniqueConstraint("store_id", "code"), AUTOINC)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    code: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))                 # percent | fixed
    percent_off: Mapped[int | None] = mapped_column(Integer)      # 1..100
    amount_off: Mapped[int | None] = mapped_column(BigInteger)    # minor units of the store currency
    eligibility: Mapped[str] = mapped_column(String(24), default="everyone")   # everyone | first_order
    min_subtotal: Mapped[int | None] = mapped_column(BigInteger)
    usage_limit: Mapped[int | None] = mapped_column(Integer)
    once_per_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    times_used: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
