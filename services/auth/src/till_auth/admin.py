"""Admin API on the auth port only (SPEC §2), bearer TILL_ADMIN_TOKEN; documented at /admin/v1/schema.

The schema is checked against the running API by schemathesis (tests/integration/test_admin_schema.py):
every error is an RFC 9457 problem document, ids are bounded to what the databases store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import FromPath, JSONBody, Parameter
from msgspec import UNSET, UnsetType
from sqlalchemy import select

from till_auth.registry import Registry
from till_auth.store import clients, revocations
from till_auth.store.models import Grant, Membership
from till_auth.web.common import now, registry
from till_auth.web.internal import require_bearer
from till_common.errors import BadRequest, NotFound
from till_common.permissions import Role

#: ids are positive and JSON-safe (< 2**53, exact as a float in the schema): a larger one is a 400,
#: never a database driver overflow (a 500 before schemathesis found it)
MAX_ID = 2**53 - 1
Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
PathId = Annotated[int, Parameter(ge=1, le=MAX_ID)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")]


class Problem(msgspec.Struct, kw_only=True):
    """RFC 9457 problem details: the body of every admin API error."""

    type: str
    title: str
    status: int
    detail: str | None = None
    request_id: str | None = None


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=Problem, media_type="application/problem+json", description=description,
                        generate_examples=False)


BAD_REQUEST = _problem("The request is malformed (body, parameter or value)")
UNAUTHORIZED = _problem("Missing or wrong admin bearer token")
NOT_FOUND = _problem("No such resource")
ERRORS: dict[int, ResponseSpec] = {400: BAD_REQUEST, 401: UNAUTHORIZED}
ERRORS_404: dict[int, ResponseSpec] = {**ERRORS, 404: NOT_FOUND}

#: merged into the app's OpenAPIConfig (app.py)
SECURITY_COMPONENTS = Components(security_schemes={
    "AdminToken": SecurityScheme(type="http", scheme="bearer", description="TILL_ADMIN_TOKEN")})


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """A struct with ``forbid_unknown_fields`` says ``additionalProperties: false`` in the schema
    (litestar leaves it out, so the schema promised to accept fields the API refuses)."""

    def to_openapi_schema(self, field_definition: Any, schema_creator: Any) -> Any:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if isinstance(info, msgspec.inspect.StructType) and info.forbid_unknown_fields:
            schema.additional_properties = False
        for name, value in getattr(field_definition.type_, "__openapi_extra__", {}).items():
            setattr(schema, name, value)
        return schema


class RevocationRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Exactly one of the four (no nulls: a member is either given or absent)."""

    __openapi_extra__: ClassVar[dict[str, int]] = {"min_properties": 1, "max_properties": 1}

    token_id: Text | UnsetType = UNSET
    client_id: Text | UnsetType = UNSET
    user_id: Id | UnsetType = UNSET
    store_id: Id | UnsetType = UNSET


class RevocationResult(msgspec.Struct, kw_only=True):
    revoked: int
    at: str


class ClientView(msgspec.Struct, kw_only=True):
    client_id: str
    kind: str
    client_name: str | None
    redirect_uris: list[str]
    token_endpoint_auth_method: str
    grant_types: list[str]
    scope: str | None
    created_at: int
    last_used_at: int | None


class GrantView(msgspec.Struct, kw_only=True):
    gid: str
    client_id: str
    store_id: int
    scope: str
    resource: str
    created_at: int
    last_used_at: int
    revoked_at: int | None


class KeyRotation(msgspec.Struct, kw_only=True):
    kid: str
    activates_at: int


class RoleChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    store_id: Id
    role: Role


async def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    # async: litestar runs a sync guard in a worker thread (D606)
    reg: Registry = connection.app.state["registry"]
    require_bearer(connection, reg.settings.admin_token)  # type: ignore[arg-type]


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def _view(c: Any) -> ClientView:
    meta = clients.metadata(c)
    return ClientView(client_id=c.client_id, kind=c.kind, client_name=meta.client_name,
                      redirect_uris=meta.redirect_uris,
                      token_endpoint_auth_method=c.token_endpoint_auth_method, grant_types=meta.grant_types,
                      scope=meta.scope, created_at=c.created_at, last_used_at=c.last_used_at)


class AdminController(Controller):
    path = "/admin/v1"
    guards = [admin_guard]  # noqa: RUF012 - litestar reads the class attribute
    tags = ["admin"]  # noqa: RUF012
    security = [{"AdminToken": []}]  # noqa: RUF012

    @post("/revocations", status_code=200, summary="Revoke a token, client, user or store", responses=ERRORS)
    async def revoke(self, request: Request[Any, Any, Any], data: JSONBody[RevocationRequest]) -> RevocationResult:
        given = [k for k in ("token_id", "client_id", "user_id", "store_id") if getattr(data, k) is not UNSET]
        if len(given) != 1:
            raise BadRequest("give exactly one of token_id, client_id, user_id, store_id")
        reg = registry(request)
        at = now()
        async with reg.transaction() as tx:
            if not isinstance(data.token_id, UnsetType):
                n, events = await revocations.revoke_token(tx.db, data.token_id, at)
            elif not isinstance(data.client_id, UnsetType):
                n, events = await revocations.revoke_client(tx.db, data.client_id, at)
            elif not isinstance(data.user_id, UnsetType):
                n, events = await revocations.revoke_user(tx.db, data.user_id, at, end_sessions=True)
            else:
                assert not isinstance(data.store_id, UnsetType)
                n, events = await revocations.revoke_store(tx.db, data.store_id, at)
            tx.events += events
        return RevocationResult(revoked=n, at=_iso(at))

    @get("/clients", summary="List registered clients", responses={401: UNAUTHORIZED})
    async def list_clients(self, request: Request[Any, Any, Any]) -> list[ClientView]:
        async with registry(request).sessions() as db:
            return [_view(c) for c in await clients.listing(db)]

    @get("/clients/{client_id:str}", summary="One client", responses=ERRORS_404)
    async def get_client(self, request: Request[Any, Any, Any], client_id: FromPath[str]) -> ClientView:
        async with registry(request).sessions() as db:
            c = await clients.get(db, client_id)
            if c is None:
                raise NotFound("no such client")
            return _view(c)

    @delete("/clients/{client_id:str}", status_code=204, summary="Delete a client; its tokens die",
            responses=ERRORS_404)
    async def delete_client(self, request: Request[Any, Any, Any], client_id: FromPath[str]) -> None:
        reg = registry(request)
        async with reg.transaction() as tx:
            if await clients.get(tx.db, client_id) is None:
                raise NotFound("no such client")
            tx.events += (await revocations.revoke_client(tx.db, client_id, now()))[1]
            await clients.remove(tx.db, client_id)

    @get("/users/{user_id:int}/grants", summary="A user's authorizations (refresh families)", responses=ERRORS)
    async def user_grants(self, request: Request[Any, Any, Any], user_id: PathId) -> list[GrantView]:
        async with registry(request).sessions() as db:
            rows = (await db.scalars(select(Grant).where(Grant.user_id == user_id).order_by(Grant.created_at))).all()
        return [GrantView(gid=g.gid, client_id=g.client_id, store_id=g.store_id, scope=g.scope, resource=g.resource,
                          created_at=g.created_at, last_used_at=g.last_used_at, revoked_at=g.revoked_at) for g in rows]

    @put("/users/{user_id:int}/role", summary="Change a user's role in a store (revokes their tokens)",
         responses=ERRORS_404)
    async def change_role(self, request: Request[Any, Any, Any], user_id: PathId,
                          data: JSONBody[RoleChange]) -> RevocationResult:
        reg = registry(request)
        at = now()
        async with reg.transaction() as tx:
            if await tx.db.get(Membership, (user_id, data.store_id)) is None:
                raise NotFound("no such membership")
            tx.events += await revocations.role_change(tx.db, user_id, data.store_id, data.role, at)
        return RevocationResult(revoked=1, at=_iso(at))

    @post("/keys/rotate", status_code=200, summary="Publish a new signing key (signs after the activation delay)",
          responses={401: UNAUTHORIZED})
    async def rotate_keys(self, request: Request[Any, Any, Any]) -> KeyRotation:
        reg = registry(request)
        async with reg.sessions.begin() as db:
            key = await reg.keys.rotate(db)
        return KeyRotation(kid=key.kid, activates_at=key.activates_at)



