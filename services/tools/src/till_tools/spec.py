"""Tools are data: a :class:`ToolSpec` names the tool, its argument and result Structs, the
permission it needs and the handler; :class:`Catalogue` indexes them and derives the MCP tool
definitions once (MCP 2025-06-18 server/tools: inputSchema, outputSchema, annotations).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, Final, Generic, Literal, TypeVar

import msgspec
from msgspec import Meta
from sqlalchemy.ext.asyncio import AsyncSession

from till_common.permissions import ROLE_PERMISSIONS, Role
from till_common.principal import Principal

if TYPE_CHECKING:
    from till_tools.payment_keys import PaymentKeys

# --- argument building blocks ------------------------------------------------------------------

_NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"   # NUL and friends break PostgreSQL text and logs
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=_NO_CONTROL)]
ShortText = Annotated[str, Meta(max_length=500, pattern=_NO_CONTROL)]
LongText = Annotated[str, Meta(max_length=60_000, pattern=_NO_CONTROL)]
_SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_SKU = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"
_IDEMPOTENCY_KEY = r"^[\x21-\x7e]+$"
#: What a model should send instead, by pattern: msgspec's "Expected `str` matching regex '…'" means
#: nothing to most readers (call.validation_fault swaps it for these).
FORMAT_HINTS: Final[dict[str, str]] = {
    _NO_CONTROL: "text without control characters",
    _SLUG: "lowercase letters and digits joined by single hyphens, like summer-sale",
    _SKU: "letters, digits and . _ / - starting with a letter or digit, like TEE-CLASSIC-M",
    _IDEMPOTENCY_KEY: "printable ASCII without spaces",
}
Slug = Annotated[str, Meta(min_length=1, max_length=200, pattern=_SLUG)]
Sku = Annotated[str, Meta(min_length=1, max_length=64, pattern=_SKU)]
Id = Annotated[int, Meta(ge=1, le=2**53)]
Query = Annotated[str, Meta(min_length=1, max_length=200, pattern=_NO_CONTROL)]
Cursor = Annotated[str, Meta(max_length=200, description="Opaque cursor from a previous page's next_cursor.")]
Limit = Annotated[int, Meta(ge=1, le=100, description="Page size (default 20, at most 100).")]
IdempotencyKey = Annotated[str, Meta(min_length=1, max_length=255, pattern=_IDEMPOTENCY_KEY,
                                     description="Retry-safe key: the same key with the same arguments "
                                                 "returns the first result instead of acting twice.")]


class Args(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every tool's arguments: unknown fields (store_id, role, __proto__ …) are refused (TL-02)."""


class WriteArgs(Args, kw_only=True):
    idempotency_key: IdempotencyKey | None = None
    dry_run: Annotated[bool, Meta(description="Preview: return the changes without making them.")] = False


class Result(msgspec.Struct, kw_only=True, omit_defaults=False):
    """Base of every tool result (the structuredContent)."""


class Change(msgspec.Struct, kw_only=True, omit_defaults=True):
    action: Literal["create", "update", "delete"]
    entity: str
    id: int | None = None
    field: str | None = None
    before: Any = None
    after: Any = None


class Page(Result, kw_only=True):
    next_cursor: str | None = None
    truncated: bool = False
    note: str | None = None


# --- failures a handler raises -----------------------------------------------------------------

class ToolFailure(Exception):
    """The tool ran and could not do it (not found, business rule): ``isError: true``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(Exception):
    """An argument passed the schema but not the rules (e.g. "29.999" USD): JSON-RPC -32602.

    Its error data carries ``input: true``; the gateway turns it into an ``isError`` result for
    clients on MCP 2025-11-25 or later (SEP-1303, docs/decisions.md D310).
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


# --- the call context --------------------------------------------------------------------------

@dataclass
class Ctx:
    db: AsyncSession
    store_id: int
    currency: str
    who: Principal
    now: datetime
    dialect: str
    dry_run: bool = False
    changes: list[Change] = field(default_factory=list)
    payment_keys: PaymentKeys | None = None     # seals a store's payment API key (D863)

    def created(self, entity: str, id: int | None) -> None:
        self.changes.append(Change(action="create", entity=entity, id=id))

    def deleted(self, entity: str, id: int) -> None:
        self.changes.append(Change(action="delete", entity=entity, id=id))

    def updated(self, entity: str, id: int | None, name: str, before: Any, after: Any) -> None:
        if before != after:
            self.changes.append(Change(action="update", entity=entity, id=id, field=name, before=before,
                                       after=after))


A = TypeVar("A", bound=Args)
R = TypeVar("R", bound=Result)
Handler = Callable[[Ctx, Any], Awaitable[Any]]


@dataclass(frozen=True)
class ToolSpec(Generic[A, R]):
    name: str
    title: str
    description: str
    params: type[A]
    result: type[R]
    handler: Callable[[Ctx, A], Awaitable[R]]
    permission: str
    destructive: bool = False
    idempotent: bool = False

    @property
    def read_only(self) -> bool:
        return self.permission.endswith(":read")


def tool(name: str, title: str, description: str, params: type[A], result: type[R], permission: str, *,
         destructive: bool = False, idempotent: bool = False
         ) -> Callable[[Callable[[Ctx, A], Awaitable[R]]], ToolSpec[A, R]]:
    """Decorator: turn a handler into its ToolSpec (the module lists them in ``TOOLS``)."""

    def wrap(fn: Callable[[Ctx, A], Awaitable[R]]) -> ToolSpec[A, R]:
        return ToolSpec(name, title, description, params, result, fn, permission, destructive, idempotent)

    return wrap


# --- JSON Schema -------------------------------------------------------------------------------

_CHANGE_SCHEMA: Final = msgspec.json.schema(list[Change])


def self_contained(schema: dict[str, Any]) -> dict[str, Any]:
    """msgspec answers ``{"$ref": "#/$defs/X", "$defs": {...}}``; MCP wants an object schema at the
    top, so X becomes the root and the other definitions stay beside it under ``$defs``."""
    defs = dict(schema.get("$defs", {}))
    ref = schema.get("$ref")
    if ref is None:
        return schema
    root = dict(defs.pop(ref.rsplit("/", 1)[1]))
    text = msgspec.json.encode(root).decode()
    used = {d for d in defs if f'"#/$defs/{d}"' in text}
    # definitions reached only through other definitions
    while True:
        more = {d for d in defs if d not in used and any(f'"#/$defs/{d}"' in msgspec.json.encode(defs[u]).decode()
                                                          for u in used)}
        if not more:
            break
        used |= more
    if used:
        root["$defs"] = {d: defs[d] for d in sorted(used)}
    root.pop("title", None)
    return root


def output_schema(spec: ToolSpec[Any, Any]) -> dict[str, Any]:
    schema = self_contained(msgspec.json.schema(spec.result))
    if not spec.read_only:
        props = dict(schema.get("properties", {}))
        change_defs = _CHANGE_SCHEMA["$defs"]
        props["changes"] = {"type": "array", "items": {"$ref": "#/$defs/Change"},
                            "description": "What changed (or would change, with dry_run)."}
        props["dry_run"] = {"type": "boolean", "description": "True when nothing was changed."}
        props["replayed"] = {"type": "boolean",
                             "description": "True when this is the stored result of an earlier call "
                                            "with the same idempotency_key."}
        schema["properties"] = props
        schema["$defs"] = {**schema.get("$defs", {}), **change_defs}
    return schema


def definition(spec: ToolSpec[Any, Any]) -> dict[str, Any]:
    return {
        "name": spec.name,
        "title": spec.title,
        "description": spec.description,
        "inputSchema": self_contained(msgspec.json.schema(spec.params)),
        "outputSchema": output_schema(spec),
        "annotations": {
            "title": spec.title,
            "readOnlyHint": spec.read_only,
            "destructiveHint": spec.destructive,
            "idempotentHint": spec.read_only or spec.idempotent,
            "openWorldHint": False,
        },
        "_meta": {"till/permission": spec.permission},
    }


_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


class Catalogue:
    """All tools by name, their definitions built once, and the per-role listings."""

    def __init__(self, specs: Iterable[ToolSpec[Any, Any]]) -> None:
        self.specs: dict[str, ToolSpec[Any, Any]] = {}
        for spec in specs:
            if spec.name in self.specs:
                raise ValueError(f"duplicate tool {spec.name}")
            if not _NAME.match(spec.name):
                raise ValueError(f"bad tool name {spec.name}")
            self.specs[spec.name] = spec
        self.definitions: dict[str, dict[str, Any]] = {n: definition(s) for n, s in self.specs.items()}
        self.by_role: dict[Role, list[dict[str, Any]]] = {
            role: [d for n, d in self.definitions.items() if self.specs[n].permission in perms]
            for role, perms in ROLE_PERMISSIONS.items()
        }

    @classmethod
    def from_modules(cls, *modules: ModuleType) -> Catalogue:
        return cls(spec for m in modules for spec in m.TOOLS)

    def get(self, name: str) -> ToolSpec[Any, Any] | None:
        return self.specs.get(name)
