"""Auth's tables.  Secrets are stored only as hashes; keys only encrypted (SPEC §4)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Store(Base):
    __tablename__ = "stores"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)        # stored lowercased
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Membership(Base):
    __tablename__ = "memberships"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))


# --- keys, clients, grants, tokens, revocations, sessions (issue 4) -----------------------------
# Times are unix seconds (BigInteger): one representation on SQLite and PostgreSQL, and the
# same unit as JWT iat/exp and RevocationEvent.before.


class SigningKey(Base):
    """An ES256 key pair; the private key only AES-GCM-sealed with the KEK (sealing.py)."""

    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_jwk: Mapped[str] = mapped_column(Text)
    private_key_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[int] = mapped_column(BigInteger)
    activates_at: Mapped[int] = mapped_column(BigInteger)          # signs from then on
    retires_at: Mapped[int | None] = mapped_column(BigInteger)     # leaves JWKS then


class Client(Base):
    """A registered OAuth client (RFC 7591) or a fetched client metadata document (kind cimd)."""

    __tablename__ = "oauth_clients"
    client_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))                   # dcr | cimd
    metadata_json: Mapped[str] = mapped_column(Text)               # ClientMetadata as registered
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    registration_token_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger, index=True)


class Grant(Base):
    """A refresh family (``gid``): one user's authorization of one client (RFC 9700 §4.14)."""

    __tablename__ = "oauth_grants"
    gid: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id", ondelete="CASCADE"),
                                           index=True)
    scope: Mapped[str] = mapped_column(Text)
    resource: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class AuthorizationCode(Base):
    """RFC 6749 §4.1.2: single use, 60 s; stored as a hash, ``gid`` allocated up front for replay."""

    __tablename__ = "oauth_codes"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    gid: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    store_id: Mapped[int] = mapped_column(Integer)
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    redirect_uri_sent: Mapped[bool] = mapped_column(Boolean)
    code_challenge: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text)
    resource: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


class RefreshToken(Base):
    """Opaque, hashed, rotated; the successor is kept sealed for the 30 s grace window only."""

    __tablename__ = "oauth_refresh_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    gid: Mapped[str] = mapped_column(ForeignKey("oauth_grants.gid", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    rotated_at: Mapped[int | None] = mapped_column(BigInteger)
    successor_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)


class PersonalToken(Base):
    """``till_pat_…``: the id is public (revocation ``value``), the token only hashed."""

    __tablename__ = "personal_tokens"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)     # the token's iat
    expires_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)


class Revocation(Base):
    """The ordered revocation feed (till_common.protocol.internal.RevocationEvent)."""

    __tablename__ = "revocations"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[str] = mapped_column(String(512))
    before: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_revocations_kind_value", "kind", "value"),)


class WebSession(Base):
    """A merchant's browser session; the cookie carries the id, the table its SHA-256."""

    __tablename__ = "web_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    # the store the merchant works in on these pages (several memberships); None = the first one
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="SET NULL"))


class Consent(Base):
    """"Remember this decision": only for this client id and exactly this scope set (AZ-10)."""

    __tablename__ = "oauth_consents"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id", ondelete="CASCADE"),
                                           primary_key=True)
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
