"""The published theme: settings, sections and their blocks."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta
from sqlalchemy import select

from till_tools.spec import Args, Ctx, InvalidArgument, Result, ToolFailure, WriteArgs, tool
from till_tools.store.content import Theme, ThemeBlock, ThemeSection

Key = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
Value = Annotated[str, Meta(max_length=2000, pattern=r"^[^\x00]*$")] | int | bool
Settings = Annotated[dict[Key, Value], Meta(max_length=100)]


class BlockOut(Result, kw_only=True):
    id: int
    type: str
    position: int
    settings: dict[str, Any]


class SectionOut(Result, kw_only=True):
    id: int
    key: str
    type: str
    position: int
    enabled: bool
    settings: dict[str, Any]
    blocks: list[BlockOut]


class ThemeOut(Result, kw_only=True):
    id: int
    name: str
    role: str
    settings: dict[str, Any]
    sections: list[SectionOut]


class ThemeSettingsOut(Result, kw_only=True):
    theme_id: int
    theme_name: str
    settings: dict[str, Any]


async def _theme(ctx: Ctx) -> Theme:
    t = await ctx.db.scalar(select(Theme).where(Theme.store_id == ctx.store_id, Theme.role == "main")
                            .order_by(Theme.id).limit(1))
    if t is None:
        raise ToolFailure("this store has no published theme")
    return t


async def _section_out(ctx: Ctx, s: ThemeSection) -> SectionOut:
    blocks = (await ctx.db.scalars(select(ThemeBlock).where(ThemeBlock.section_id == s.id)
                                   .order_by(ThemeBlock.position, ThemeBlock.id))).all()
    return SectionOut(id=s.id, key=s.key, type=s.type, position=s.position, enabled=s.enabled,
                      settings=dict(s.settings),
                      blocks=[BlockOut(id=b.id, type=b.type, position=b.position, settings=dict(b.settings))
                              for b in blocks])


async def published_theme(ctx: Ctx) -> ThemeOut:
    t = await _theme(ctx)
    sections = (await ctx.db.scalars(select(ThemeSection).where(ThemeSection.theme_id == t.id)
                                     .order_by(ThemeSection.position, ThemeSection.id))).all()
    return ThemeOut(id=t.id, name=t.name, role=t.role, settings=dict(t.settings),
                    sections=[await _section_out(ctx, s) for s in sections])


class NoArgs(Args, kw_only=True):
    pass


@tool("get_theme", "Get the theme", "The published theme with its settings and every section (with blocks) in "
      "page order.", NoArgs, ThemeOut, "themes:read")
async def get_theme(ctx: Ctx, a: NoArgs) -> ThemeOut:
    return await published_theme(ctx)


@tool("get_theme_settings", "Get theme settings", "The published theme's global settings (colours, fonts, "
      "logo, …).", NoArgs, ThemeSettingsOut, "themes:read")
async def get_theme_settings(ctx: Ctx, a: NoArgs) -> ThemeSettingsOut:
    t = await _theme(ctx)
    return ThemeSettingsOut(theme_id=t.id, theme_name=t.name, settings=dict(t.settings))


class UpdateThemeSettings(WriteArgs, kw_only=True):
    settings: Annotated[Settings, Meta(description="Keys to set (merged into the current settings), e.g. "
                                                   '{"color_primary": "#1a73e8"}.')]
    remove: Annotated[list[Key], Meta(max_length=100)] = msgspec.field(default_factory=list)


@tool("update_theme_settings", "Update theme settings", "Set or remove global theme settings (merge: keys not "
      "named stay as they are).", UpdateThemeSettings, ThemeSettingsOut, "themes:write", idempotent=True)
async def update_theme_settings(ctx: Ctx, a: UpdateThemeSettings) -> ThemeSettingsOut:
    t = await _theme(ctx)
    new = dict(t.settings)
    for k, v in a.settings.items():
        ctx.updated("theme", t.id, f"settings.{k}", new.get(k), v)
        new[k] = v
    for k in a.remove:
        if k in new:
            ctx.updated("theme", t.id, f"settings.{k}", new.pop(k), None)
    t.settings = new
    t.updated_at = ctx.now
    await ctx.db.flush()
    return ThemeSettingsOut(theme_id=t.id, theme_name=t.name, settings=new)


class BlockIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    type: Key
    settings: Settings = msgspec.field(default_factory=dict)


class UpdateThemeSection(WriteArgs, kw_only=True):
    section: Annotated[Key, Meta(description='Section key, e.g. "hero" (see get_theme).')]
    enabled: bool | None = None
    position: Annotated[int, Meta(ge=1, le=1000)] | None = None
    settings: Settings | None = None
    blocks: Annotated[list[BlockIn], Meta(max_length=50, description="Replaces the section's blocks, in order.")] \
        | None = None


@tool("update_theme_section", "Update a theme section", "Change one section of the published theme: show/hide, "
      "move, merge settings, or replace its blocks.", UpdateThemeSection, SectionOut, "themes:write",
      idempotent=True)
async def update_theme_section(ctx: Ctx, a: UpdateThemeSection) -> SectionOut:
    t = await _theme(ctx)
    s = await ctx.db.scalar(select(ThemeSection).where(ThemeSection.theme_id == t.id, ThemeSection.key == a.section))
    if s is None:
        keys = (await ctx.db.scalars(select(ThemeSection.key).where(ThemeSection.theme_id == t.id)
                                     .order_by(ThemeSection.position, ThemeSection.id))).all()
        raise ToolFailure(f"the theme has no section '{a.section}'; sections: {', '.join(keys)}")
    if a.enabled is not None:
        ctx.updated("theme_section", s.id, "enabled", s.enabled, a.enabled)
        s.enabled = a.enabled
    if a.position is not None:
        ctx.updated("theme_section", s.id, "position", s.position, a.position)
        s.position = a.position
    if a.settings is not None:
        new = dict(s.settings)
        for k, v in a.settings.items():
            ctx.updated("theme_section", s.id, f"settings.{k}", new.get(k), v)
            new[k] = v
        s.settings = new
    if a.blocks is not None:
        if not a.blocks and a.section == "header":
            raise InvalidArgument("$.blocks", "the header needs at least one block")
        for b in (await ctx.db.scalars(select(ThemeBlock).where(ThemeBlock.section_id == s.id))).all():
            await ctx.db.delete(b)
        for i, b_in in enumerate(a.blocks):
            ctx.db.add(ThemeBlock(store_id=ctx.store_id, section_id=s.id, type=b_in.type, position=i + 1,
                                  settings=dict(b_in.settings)))
        ctx.updated("theme_section", s.id, "blocks", None, [b.type for b in a.blocks])
    t.updated_at = ctx.now
    await ctx.db.flush()
    return await _section_out(ctx, s)


TOOLS = (get_theme, get_theme_settings, update_theme_settings, update_theme_section)
