"""The store schema, part two: content, theme, menus, settings, traffic, audit, idempotency."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from till_tools.store.models import AUTOINC, Base, UTCDateTime, store_fk, utcnow


class BlogPost(Base):
    __tablename__ = "blog_posts"
    __table_args__ = (UniqueConstraint("store_id", "slug"), AUTOINC)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    title: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(200), default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Page(Base):
    __tablename__ = "pages"
    __table_args__ = (UniqueConstraint("store_id", "slug"), AUTOINC)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    title: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Theme(Base):
    __tablename__ = "themes"
    __table_args__ = (AUTOINC,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="main")        # main | unpublished
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ThemeSection(Base):
    __tablename__ = "theme_sections"
    __table_args__ = (UniqueConstraint("theme_id", "key"), AUTOINC)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    theme_id: Mapped[int] = mapped_column(ForeignKey("themes.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100))                       # "hero", "featured-products"
    type: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, default=1)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ThemeBlock(Base):
    __tablename__ = "theme_blocks"
    __table_args__ = (AUTOINC,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    section_id: Mapped[int] = mapped_column(ForeignKey("theme_sections.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, default=1)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Menu(Base):
    __tablename__ = "menus"
    __table_args__ = (UniqueConstraint("store_id", "handle"), AUTOINC)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    handle: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200))


class MenuItem(Base):
    __tablename__ = "menu_items"
    __table_args__ = (AUTOINC,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    menu_id: Mapped[int] = mapped_column(ForeignKey("menus.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("menu_items.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    position: Mapped[int] = mapped_column(Integer, default=1)


class StoreSettings(Base):
    """General and checkout settings as JSON documents validated by the tools' Structs."""

    __tablename__ = "store_settings"
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True)
    general: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    checkout: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    free_shipping_threshold: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ShippingZone(Base):
    __tablename__ = "shipping_zones"
    __table_args__ = (AUTOINC,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    name: Mapped[str] = mapped_column(String(200))
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)      # ISO 3166-1 alpha-2


class ShippingRate(Base):
    __tablename__ = "shipping_rates"
    __table_args__ = (AUTOINC,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    zone_id: Mapped[int] = mapped_column(ForeignKey("shipping_zones.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    price: Mapped[int] = mapped_column(BigInteger)
    min_subtotal: Mapped[int | None] = mapped_column(BigInteger)


class Visit(Base):
    """One storefront page view: the traffic events analytics read."""

    __tablename__ = "visits"
    __table_args__ = (Index("ix_visits_store_at", "store_id", "occurred_at"), AUTOINC)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = store_fk()
    session_id: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))        # direct | search | social | email | referral | ads
    path: Mapped[str] = mapped_column(String(500), default="/")
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """One row per tool call, chained per store: ``hash = sha256(canonical(row) incl. prev_hash)``."""

    __tablename__ = "audit_entries"
    __table_args__ = (UniqueConstraint("store_id", "seq"), AUTOINC)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # no FK: the trail outlives store data.  No index of its own either: UNIQUE(store_id, seq) serves
    # every lookup by store, and one index less is one page less written per call (D893)
    store_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[int] = mapped_column(Integer)
    client_id: Mapped[str | None] = mapped_column(String(255))
    token_id: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))
    tool: Mapped[str] = mapped_column(String(100))
    arguments: Mapped[str] = mapped_column(Text)                 # canonical JSON, secrets redacted
    outcome: Mapped[str] = mapped_column(String(16))             # success | failed | denied | refused
    detail: Mapped[str] = mapped_column(String(500), default="")
    duration_ms: Mapped[float] = mapped_column(Float)
    request_id: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain head per store: locked FOR UPDATE on PostgreSQL so appends never fork."""

    __tablename__ = "audit_heads"
    store_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("store_id", "key"), AUTOINC)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(255))
    tool: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(64))         # sha256 of tool + canonical arguments
    result: Mapped[str] = mapped_column(Text)                    # the stored result JSON
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
