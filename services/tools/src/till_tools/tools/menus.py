"""Navigation menus with nested items (at most three levels)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta
from sqlalchemy import delete, select

from till_tools.lookup import by_id
from till_tools.spec import Args, Ctx, Id, InvalidArgument, Name, Result, ToolFailure, WriteArgs, tool
from till_tools.store.content import Menu, MenuItem

Handle = Annotated[str, Meta(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=100,
                             description='e.g. "main-menu", "footer".')]
Url = Annotated[str, Meta(max_length=2000, pattern=r"^(/[^\s\x00]*|https?://[^\s\x00]+|#[^\s\x00]*)$",
                          description="A path on the store (/collections/sale) or an http(s) URL.")]
MAX_DEPTH = 3


class MenuItemIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    title: Name
    url: Url
    children: Annotated[list[MenuItemIn], Meta(max_length=50)] = msgspec.field(default_factory=list)


class MenuItemOut(Result, kw_only=True):
    id: int
    title: str
    url: str
    children: list[MenuItemOut]


class MenuOut(Result, kw_only=True):
    id: int
    handle: str
    title: str
    items: list[MenuItemOut]


class MenuList(Result, kw_only=True):
    items: list[MenuOut]


class MenuDeleted(Result, kw_only=True):
    deleted: str
    id: int
    handle: str


async def menu_out(ctx: Ctx, m: Menu) -> MenuOut:
    rows = (await ctx.db.scalars(select(MenuItem).where(MenuItem.menu_id == m.id)
                                 .order_by(MenuItem.position, MenuItem.id))).all()
    kids: dict[int | None, list[MenuItem]] = {}
    for r in rows:
        kids.setdefault(r.parent_id, []).append(r)

    def build(parent: int | None) -> list[MenuItemOut]:
        return [MenuItemOut(id=r.id, title=r.title, url=r.url, children=build(r.id)) for r in kids.get(parent, [])]

    return MenuOut(id=m.id, handle=m.handle, title=m.title, items=build(None))


def _depth(items: list[MenuItemIn], level: int = 1) -> int:
    return max([level] + [_depth(i.children, level + 1) for i in items if i.children])


async def _write_items(ctx: Ctx, menu_id: int, items: list[MenuItemIn], parent: int | None = None) -> None:
    for pos, item in enumerate(items, 1):
        row = MenuItem(store_id=ctx.store_id, menu_id=menu_id, parent_id=parent, title=item.title, url=item.url,
                       position=pos)
        ctx.db.add(row)
        await ctx.db.flush()
        await _write_items(ctx, menu_id, item.children, row.id)


class NoArgs(Args, kw_only=True):
    pass


@tool("list_menus", "List menus", "Every navigation menu with its nested items.", NoArgs, MenuList, "menus:read")
async def list_menus(ctx: Ctx, a: NoArgs) -> MenuList:
    menus = (await ctx.db.scalars(select(Menu).where(Menu.store_id == ctx.store_id).order_by(Menu.id))).all()
    return MenuList(items=[await menu_out(ctx, m) for m in menus])


class CreateMenu(WriteArgs, kw_only=True):
    handle: Handle
    title: Name
    items: Annotated[list[MenuItemIn], Meta(max_length=50)] = msgspec.field(default_factory=list)


@tool("create_menu", "Create a menu", "Create a navigation menu with nested items (up to 3 levels).",
      CreateMenu, MenuOut, "menus:write")
async def create_menu(ctx: Ctx, a: CreateMenu) -> MenuOut:
    if a.items and _depth(a.items) > MAX_DEPTH:
        raise InvalidArgument("$.items", f"menus nest at most {MAX_DEPTH} levels")
    clash = await ctx.db.scalar(select(Menu.id).where(Menu.store_id == ctx.store_id, Menu.handle == a.handle))
    if clash:
        raise ToolFailure(f"a menu with handle '{a.handle}' already exists (id {clash})")
    m = Menu(store_id=ctx.store_id, handle=a.handle, title=a.title)
    ctx.db.add(m)
    await ctx.db.flush()
    await _write_items(ctx, m.id, a.items)
    ctx.created("menu", m.id)
    return await menu_out(ctx, m)


class MenuRef(WriteArgs, kw_only=True):
    id: Id | None = None
    handle: Handle | None = None


async def resolve(ctx: Ctx, a: MenuRef) -> Menu:
    if (a.id is None) == (a.handle is None):
        raise InvalidArgument("$", "give exactly one of id or handle")
    if a.id is not None:
        return await by_id(ctx, Menu, a.id, "menu")
    m = await ctx.db.scalar(select(Menu).where(Menu.store_id == ctx.store_id, Menu.handle == a.handle))
    if m is None:
        handles = (await ctx.db.scalars(select(Menu.handle).where(Menu.store_id == ctx.store_id))).all()
        raise ToolFailure(f"no menu '{a.handle}'; menus: {', '.join(handles) or 'none'}")
    return m


class UpdateMenu(MenuRef, kw_only=True):
    title: Name | None = None
    items: Annotated[list[MenuItemIn], Meta(max_length=50, description="Replaces all items.")] | None = None


@tool("update_menu", "Update a menu", "Rename a menu (by id or handle) or replace its items.", UpdateMenu, MenuOut,
      "menus:write", idempotent=True)
async def update_menu(ctx: Ctx, a: UpdateMenu) -> MenuOut:
    m = await resolve(ctx, a)
    if a.title is not None:
        ctx.updated("menu", m.id, "title", m.title, a.title)
        m.title = a.title
    if a.items is not None:
        if a.items and _depth(a.items) > MAX_DEPTH:
            raise InvalidArgument("$.items", f"menus nest at most {MAX_DEPTH} levels")
        before = await menu_out(ctx, m)
        await ctx.db.execute(delete(MenuItem).where(MenuItem.menu_id == m.id))
        await _write_items(ctx, m.id, a.items)
        ctx.updated("menu", m.id, "items", [i.title for i in before.items], [i.title for i in a.items])
    await ctx.db.flush()
    return await menu_out(ctx, m)


class DeleteMenu(MenuRef, kw_only=True):
    pass


@tool("delete_menu", "Delete a menu", "Delete a menu and its items by id or handle.", DeleteMenu, MenuDeleted,
      "menus:write", destructive=True)
async def delete_menu(ctx: Ctx, a: DeleteMenu) -> MenuDeleted:
    m = await resolve(ctx, a)
    await ctx.db.delete(m)
    await ctx.db.flush()
    ctx.deleted("menu", m.id)
    return MenuDeleted(deleted="menu", id=m.id, handle=m.handle)


TOOLS = (list_menus, create_menu, update_menu, delete_menu)
