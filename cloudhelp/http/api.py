"""JSON API, version 1 (docs/api.md)."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from sqlalchemy import func, select

from cloudhelp.core.errors import bad_request, not_found
from cloudhelp.domain import catalog, network, ratings
from cloudhelp.http import openapi
from cloudhelp.http.bodies import query_bool, query_int
from cloudhelp.http.state import AppState
from cloudhelp.store.models import ServiceItem, Ticket, utcnow

PREFIX = "/api/v1"
MAX_PAGE = 200


async def list_items(request: web.Request) -> web.Response:
    state = AppState.of(request.app)
    tier = request.query.get("tier") or None
    if tier is not None and tier not in network.TIER_RANK:
        raise bad_request("Parameter 'tier' must be one of community, street, district.")
    limit = query_int(request, "limit", 0, MAX_PAGE, default=50)
    offset = query_int(request, "offset", 0, 1_000_000, default=0)
    async with state.db.read() as session:
        rows, total = await catalog.search_items(
            session,
            query=request.query.get("q", ""),
            department=request.query.get("department") or None,
            category=request.query.get("category") or None,
            tier=tier,
            cloud=query_bool(request, "cloud"),
            limit=limit,
            offset=offset,
        )
        items = [catalog.item_summary(row) for row in rows]
    return web.json_response(
        {"items": items, "total": total, "limit": limit, "offset": offset},
        dumps=state.dumps,
    )


# The seed's high-frequency cloud items, used until there is enough ticket history.
HOT_FALLBACK = ("NYNC-002", "SCJG-001", "SCJG-002", "SCJG-003", "ZJJ-001", "CGJ-001", "JTJ-001",
                "SCJG-004")  # fmt: skip


async def hot_items(request: web.Request) -> web.Response:
    """The most asked-for cloud items of the last 30 days (topped up with the seed's list)."""
    state = AppState.of(request.app)
    limit = query_int(request, "limit", 0, 50, default=8)
    since = utcnow() - timedelta(days=30)
    async with state.db.read() as session:
        counted = (
            await session.execute(
                select(Ticket.item_id, func.count())
                .where(Ticket.enqueued_at >= since)
                .group_by(Ticket.item_id)
                .order_by(func.count().desc())
                .limit(limit)
            )
        ).all()
        ids = [item_id for item_id, _ in counted]
        items = {
            i.id: i
            for i in (
                await session.scalars(select(ServiceItem).where(ServiceItem.id.in_(ids)))
            ).all()
        }
        ordered = [items[i] for i in ids if i in items and items[i].cloud]
        for code in HOT_FALLBACK:
            if len(ordered) >= limit:
                break
            item = await catalog.get_item(session, code)
            if item is not None and item.cloud and item not in ordered:
                ordered.append(item)
        body = [catalog.item_summary(item) for item in ordered[:limit]]
    return web.json_response({"items": body}, dumps=state.dumps)


async def get_item(request: web.Request) -> web.Response:
    state = AppState.of(request.app)
    code = request.match_info["code"]
    async with state.db.read() as session:
        item = await catalog.get_item(session, code)
        if item is None:
            raise not_found(f"There is no service item with code {code!r}.")
        return web.json_response(catalog.item_detail(item), dumps=state.dumps)


async def list_departments(request: web.Request) -> web.Response:
    state = AppState.of(request.app)
    async with state.db.read() as session:
        rows = await catalog.list_departments(session)
    body = [{"code": d.code, "name": d.name, "items": n} for d, n in rows]
    return web.json_response({"departments": body}, dumps=state.dumps)


async def list_categories(request: web.Request) -> web.Response:
    state = AppState.of(request.app)
    async with state.db.read() as session:
        rows = await catalog.list_categories(session)
    body = [{"code": c.code, "letter": c.letter, "name": c.name, "items": n} for c, n in rows]
    return web.json_response({"categories": body}, dumps=state.dumps)


async def list_stations(request: web.Request) -> web.Response:
    state = AppState.of(request.app)
    async with state.db.read() as session:
        stations = await network.list_stations(session)
    return web.json_response({"stations": stations}, dumps=state.dumps)


async def rating_options(request: web.Request) -> web.Response:
    """The five national levels and the reasons a resident can tick on a bad rating."""
    levels = [{"value": v, "label": label} for v, label in ratings.LEVELS.items()]
    body = {
        "levels": levels,
        "bad_levels": list(ratings.BAD_LEVELS),
        "reasons": list(ratings.BAD_REASONS),
    }
    return web.json_response(body, dumps=AppState.of(request.app).dumps)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def setup(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/health", health)
    app.router.add_get(openapi.PATH, openapi.serve)
    app.router.add_get(f"{PREFIX}/ratings/options", rating_options)
    app.router.add_get(f"{PREFIX}/items", list_items)
    app.router.add_get(f"{PREFIX}/items/hot", hot_items)
    app.router.add_get(f"{PREFIX}/items/{{code}}", get_item)
    app.router.add_get(f"{PREFIX}/departments", list_departments)
    app.router.add_get(f"{PREFIX}/categories", list_categories)
    app.router.add_get(f"{PREFIX}/stations", list_stations)
