"""Content: blog posts and pages.  Bodies are returned as data, never interpreted (TL-10)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta
from sqlalchemy import func, or_, select

from till_tools.lookup import by_id
from till_tools.pagination import DEFAULT_LIMIT, decode_cursor, finish, like_contains
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
    Query,
    Result,
    ShortText,
    Slug,
    ToolFailure,
    WriteArgs,
    tool,
)
from till_tools.store.content import BlogPost
from till_tools.store.content import Page as PageRow
from till_tools.tools.products import unique_slug

Tag = Annotated[str, Meta(min_length=1, max_length=50, pattern=r"^[^\x00-\x1f,]+$")]
EXCERPT = 200


class PostOut(Result, kw_only=True):
    id: int
    title: str
    slug: str
    body: str
    author: str
    tags: list[str]
    published: bool
    published_at: datetime | None
    updated_at: datetime


class PostSummary(Result, kw_only=True):
    id: int
    title: str
    slug: str
    excerpt: str
    published: bool
    published_at: datetime | None


class PostPage(Page, kw_only=True):
    items: list[PostSummary]


class PageOut(Result, kw_only=True):
    id: int
    title: str
    slug: str
    body: str
    published: bool
    updated_at: datetime


class PageSummary(Result, kw_only=True):
    id: int
    title: str
    slug: str
    excerpt: str
    published: bool


class PagePage(Page, kw_only=True):
    items: list[PageSummary]


class ContentDeleted(Result, kw_only=True):
    deleted: str
    id: int
    slug: str


def _post(p: BlogPost) -> PostOut:
    return PostOut(id=p.id, title=p.title, slug=p.slug, body=p.body, author=p.author, tags=list(p.tags),
                   published=p.published, published_at=p.published_at, updated_at=p.updated_at)


def _page(p: PageRow) -> PageOut:
    return PageOut(id=p.id, title=p.title, slug=p.slug, body=p.body, published=p.published, updated_at=p.updated_at)


async def page_detail(ctx: Ctx, page_id: int) -> PageOut:
    return _page(await by_id(ctx, PageRow, page_id, "page"))


async def _resolve(ctx: Ctx, model: Any, a: Any, what: str) -> Any:
    if (a.id is None) == (a.slug is None):
        raise InvalidArgument("$", "give exactly one of id or slug")
    if a.id is not None:
        return await by_id(ctx, model, a.id, what)
    row = await ctx.db.scalar(select(model).where(model.store_id == ctx.store_id, model.slug == a.slug))
    if row is None:
        raise ToolFailure(f"no {what} with slug '{a.slug}' in this store")
    return row


class ListContent(Args, kw_only=True):
    query: Annotated[Query | None, Meta(description="Text in the title or body (literal match).")] = None
    published: bool | None = None
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None


async def _list(ctx: Ctx, model: Any, a: ListContent, tool_name: str) -> tuple[list[Any], int]:
    offset = decode_cursor(tool_name, a.cursor)
    q = select(model).where(model.store_id == ctx.store_id)
    if a.query:
        p = like_contains(a.query)
        q = q.where(or_(func.lower(model.title).like(p, escape="\\"), func.lower(model.body).like(p, escape="\\")))
    if a.published is not None:
        q = q.where(model.published == a.published)
    rows = (await ctx.db.scalars(q.order_by(model.updated_at.desc(), model.id.desc())
                                 .offset(offset).limit(a.limit + 1))).all()
    return list(rows), offset


@tool("list_blog_posts", "List blog posts", "List blog posts (title, slug, excerpt, published state), newest "
      "change first; search title and body.", ListContent, PostPage, "content:read")
async def list_blog_posts(ctx: Ctx, a: ListContent) -> PostPage:
    rows, offset = await _list(ctx, BlogPost, a, "list_blog_posts")
    items = [PostSummary(id=p.id, title=p.title, slug=p.slug, excerpt=p.body[:EXCERPT], published=p.published,
                         published_at=p.published_at) for p in rows]
    return finish("list_blog_posts", PostPage, items, offset, a.limit)


class CreatePost(WriteArgs, kw_only=True):
    title: Name
    body: LongText = ""
    author: ShortText = ""
    tags: Annotated[list[Tag], Meta(max_length=30)] = msgspec.field(default_factory=list)
    published: bool = False


@tool("create_blog_post", "Create a blog post", "Write a blog post (draft unless published is true).",
      CreatePost, PostOut, "content:write")
async def create_blog_post(ctx: Ctx, a: CreatePost) -> PostOut:
    p = BlogPost(store_id=ctx.store_id, title=a.title, slug=await unique_slug(ctx, BlogPost, a.title), body=a.body,
                 author=a.author, tags=list(a.tags), published=a.published,
                 published_at=ctx.now if a.published else None, created_at=ctx.now, updated_at=ctx.now)
    ctx.db.add(p)
    await ctx.db.flush()
    ctx.created("blog_post", p.id)
    return _post(p)


class UpdatePost(WriteArgs, kw_only=True):
    id: Id | None = None
    slug: Slug | None = None
    title: Name | None = None
    body: LongText | None = None
    author: ShortText | None = None
    tags: Annotated[list[Tag], Meta(max_length=30)] | None = None
    published: bool | None = None


@tool("update_blog_post", "Update a blog post", "Change a blog post (by id or slug): title, body, author, tags, "
      "or publish/unpublish it.", UpdatePost, PostOut, "content:write", idempotent=True)
async def update_blog_post(ctx: Ctx, a: UpdatePost) -> PostOut:
    p = await _resolve(ctx, BlogPost, a, "blog post")
    for name in ("title", "body", "author", "published"):
        value = getattr(a, name)
        if value is not None:
            ctx.updated("blog_post", p.id, name, getattr(p, name), value)
            setattr(p, name, value)
    if a.tags is not None:
        p.tags = list(a.tags)
    if a.published and p.published_at is None:
        p.published_at = ctx.now
    p.updated_at = ctx.now
    await ctx.db.flush()
    return _post(p)


class DeleteByRef(WriteArgs, kw_only=True):
    id: Id | None = None
    slug: Slug | None = None


@tool("delete_blog_post", "Delete a blog post", "Delete a blog post by id or slug.", DeleteByRef, ContentDeleted,
      "content:write", destructive=True)
async def delete_blog_post(ctx: Ctx, a: DeleteByRef) -> ContentDeleted:
    p = await _resolve(ctx, BlogPost, a, "blog post")
    await ctx.db.delete(p)
    await ctx.db.flush()
    ctx.deleted("blog_post", p.id)
    return ContentDeleted(deleted="blog_post", id=p.id, slug=p.slug)


@tool("list_pages", "List pages", "List the store's content pages (About, FAQ, policies …) with excerpts.",
      ListContent, PagePage, "content:read")
async def list_pages(ctx: Ctx, a: ListContent) -> PagePage:
    rows, offset = await _list(ctx, PageRow, a, "list_pages")
    items = [PageSummary(id=p.id, title=p.title, slug=p.slug, excerpt=p.body[:EXCERPT], published=p.published)
             for p in rows]
    return finish("list_pages", PagePage, items, offset, a.limit)


class CreatePage(WriteArgs, kw_only=True):
    title: Name
    body: LongText = ""
    slug: Slug | None = None
    published: bool = True


@tool("create_page", "Create a page", "Create a content page; the slug is derived from the title unless given.",
      CreatePage, PageOut, "content:write")
async def create_page(ctx: Ctx, a: CreatePage) -> PageOut:
    slug = a.slug or await unique_slug(ctx, PageRow, a.title)
    clash = await ctx.db.scalar(select(PageRow.id).where(PageRow.store_id == ctx.store_id, PageRow.slug == slug))
    if clash:
        raise ToolFailure(f"a page with slug '{slug}' already exists (id {clash})")
    p = PageRow(store_id=ctx.store_id, title=a.title, slug=slug, body=a.body, published=a.published,
                created_at=ctx.now, updated_at=ctx.now)
    ctx.db.add(p)
    await ctx.db.flush()
    ctx.created("page", p.id)
    return _page(p)


class UpdatePage(WriteArgs, kw_only=True):
    id: Id | None = None
    slug: Slug | None = None
    title: Name | None = None
    body: LongText | None = None
    published: bool | None = None


@tool("update_page", "Update a page", "Change a page (by id or slug): title, body or published state.",
      UpdatePage, PageOut, "content:write", idempotent=True)
async def update_page(ctx: Ctx, a: UpdatePage) -> PageOut:
    p = await _resolve(ctx, PageRow, a, "page")
    for name in ("title", "body", "published"):
        value = getattr(a, name)
        if value is not None:
            ctx.updated("page", p.id, name, getattr(p, name), value)
            setattr(p, name, value)
    p.updated_at = ctx.now
    await ctx.db.flush()
    return _page(p)


@tool("delete_page", "Delete a page", "Delete a page by id or slug.", DeleteByRef, ContentDeleted,
      "content:write", destructive=True)
async def delete_page(ctx: Ctx, a: DeleteByRef) -> ContentDeleted:
    p = await _resolve(ctx, PageRow, a, "page")
    await ctx.db.delete(p)
    await ctx.db.flush()
    ctx.deleted("page", p.id)
    return ContentDeleted(deleted="page", id=p.id, slug=p.slug)


TOOLS = (list_blog_posts, create_blog_post, update_blog_post, delete_blog_post, list_pages, create_page,
         update_page, delete_page)
