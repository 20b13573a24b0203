"""Categories: organise products (a product may sit in several)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta
from sqlalchemy import func, select

from till_tools.lookup import by_id, by_id_or_text
from till_tools.pagination import DEFAULT_LIMIT, decode_cursor, finish
from till_tools.spec import (
    Args,
    Ctx,
    Cursor,
    Id,
    InvalidArgument,
    Limit,
    LongText,
    Name,
    Page,
    Result,
    ToolFailure,
    WriteArgs,
    tool,
)
from till_tools.store.models import Category, ProductCategory
from till_tools.tools.products import unique_slug


class CategoryOut(Result, kw_only=True):
    id: int
    name: str
    slug: str
    description: str
    parent_id: int | None
    product_count: int


class CategoryPage(Page, kw_only=True):
    items: list[CategoryOut]


class CategoryDeleted(Result, kw_only=True):
    deleted: str
    id: int
    products_unassigned: int


async def _count(ctx: Ctx, cid: int) -> int:
    return int(await ctx.db.scalar(select(func.count()).where(ProductCategory.category_id == cid)) or 0)


async def _out(ctx: Ctx, c: Category) -> CategoryOut:
    return CategoryOut(id=c.id, name=c.name, slug=c.slug, description=c.description, parent_id=c.parent_id,
                       product_count=await _count(ctx, c.id))


class ListCategories(Args, kw_only=True):
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None


@tool("list_categories", "List categories", "List product categories with how many products each holds.",
      ListCategories, CategoryPage, "categories:read")
async def list_categories(ctx: Ctx, a: ListCategories) -> CategoryPage:
    offset = decode_cursor("list_categories", a.cursor)
    counts = (select(ProductCategory.category_id, func.count().label("n")).where(
        ProductCategory.store_id == ctx.store_id).group_by(ProductCategory.category_id).subquery())
    rows = (await ctx.db.execute(
        select(Category, func.coalesce(counts.c.n, 0)).outerjoin(counts, counts.c.category_id == Category.id)
        .where(Category.store_id == ctx.store_id).order_by(Category.name, Category.id)
        .offset(offset).limit(a.limit + 1))).all()
    items = [CategoryOut(id=c.id, name=c.name, slug=c.slug, description=c.description, parent_id=c.parent_id,
                         product_count=int(n)) for c, n in rows]
    return finish("list_categories", CategoryPage, items, offset, a.limit)


class CreateCategory(WriteArgs, kw_only=True):
    name: Name
    description: LongText = ""
    parent_id: Id | None = None


@tool("create_category", "Create a category", "Create a product category, optionally under a parent.",
      CreateCategory, CategoryOut, "categories:write")
async def create_category(ctx: Ctx, a: CreateCategory) -> CategoryOut:
    if a.parent_id is not None:
        await by_id(ctx, Category, a.parent_id, "parent category")
    clash = await ctx.db.scalar(select(Category.id).where(Category.store_id == ctx.store_id,
                                                          func.lower(Category.name) == a.name.lower()))
    if clash:
        raise ToolFailure(f"a category named '{a.name}' already exists (id {clash})")
    c = Category(store_id=ctx.store_id, name=a.name, slug=await unique_slug(ctx, Category, a.name),
                 description=a.description, parent_id=a.parent_id, created_at=ctx.now)
    ctx.db.add(c)
    await ctx.db.flush()
    ctx.created("category", c.id)
    return await _out(ctx, c)


class CategoryRef(WriteArgs, kw_only=True):
    id: Id | None = None
    name: Annotated[Name | None, Meta(description="Exact category name.")] = None


async def resolve(ctx: Ctx, a: CategoryRef) -> Category:
    return await by_id_or_text(ctx, Category, a.id, Category.name, a.name, "category", "name")


class UpdateCategory(CategoryRef, kw_only=True):
    new_name: Name | None = None
    description: LongText | None = None
    parent_id: Id | None = None


@tool("update_category", "Update a category", "Rename a category (by id or name), change its description or "
      "parent.", UpdateCategory, CategoryOut, "categories:write", idempotent=True)
async def update_category(ctx: Ctx, a: UpdateCategory) -> CategoryOut:
    c = await resolve(ctx, a)
    if a.parent_id is not None:
        if a.parent_id == c.id:
            raise InvalidArgument("$.parent_id", "a category cannot be its own parent")
        await by_id(ctx, Category, a.parent_id, "parent category")
        ctx.updated("category", c.id, "parent_id", c.parent_id, a.parent_id)
        c.parent_id = a.parent_id
    if a.new_name is not None:
        ctx.updated("category", c.id, "name", c.name, a.new_name)
        c.name = a.new_name
        c.slug = await unique_slug(ctx, Category, a.new_name, exclude_id=c.id)
    if a.description is not None:
        ctx.updated("category", c.id, "description", c.description, a.description)
        c.description = a.description
    await ctx.db.flush()
    return await _out(ctx, c)


class DeleteCategory(CategoryRef, kw_only=True):
    pass


@tool("delete_category", "Delete a category", "Delete a category (by id or name); its products stay, only "
      "unassigned.", DeleteCategory, CategoryDeleted, "categories:write", destructive=True)
async def delete_category(ctx: Ctx, a: DeleteCategory) -> CategoryDeleted:
    c = await resolve(ctx, a)
    n = await _count(ctx, c.id)
    await ctx.db.delete(c)
    await ctx.db.flush()
    ctx.deleted("category", c.id)
    return CategoryDeleted(deleted="category", id=c.id, products_unassigned=n)


TOOLS = (list_categories, create_category, update_category, delete_category)
