"""JSON API, version 1 (docs/api.md)."""

from __future__ import annotations

from aiohttp import web

from cloudhelp.domain import catalog, network, ratings
from cloudhelp.http import openapi, ops_routes, outage
from cloudhelp.http.bodies import query_bool, query_int
from cloudhelp.http.errors import ApiError, bad_request, not_found
from cloudhelp.http.state import AppState
from cloudhelp.store.outage import RETRY_AFTER_SECONDS

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


async def hot_items(request: web.Request) -> web.Response:
    """The most asked-for cloud items of the last 30 days, topped up with the catalog's
    featured items (an empty list when there are neither)."""
    state = AppState.of(request.app)
    limit = query_int(request, "limit", 0, 50, default=8)
    async with state.db.read() as session:
        body = [catalog.item_summary(item) for item in await catalog.hot_items(session, limit)]
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
    """Alive with its database (503 ``service_unavailable`` while the database is out), and
    how late the event loop ran over the last ``window`` seconds (default 10)."""
    window = query_int(request, "window", 1, 60, default=10)
    state = AppState.of(request.app)
    latency, _problem = await ops_routes.probe_database(state)
    if latency is None:
        raise ApiError(
            503,
            "service_unavailable",
            outage.MESSAGE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    lag = state.loop_lag.summary(window)
    passes = state.full_passes
    last = passes.last if passes is not None else None
    return web.json_response(
        {
            "status": "ok",
            "database": {"latency_ms": round(latency * 1000, 2)},
            "event_loop": {
                "window_seconds": window,
                "samples": lag.samples,
                "lag_p50_ms": lag.p50_ms,
                "lag_p99_ms": lag.p99_ms,
                "lag_max_ms": lag.max_ms,
            },
            # The collector's full passes (core/gcpolicy), when `cloudhelp serve` runs them.
            "gc_full_passes": {
                "count": passes.count if passes is not None else 0,
                "last_ms": round(last.seconds * 1000, 1) if last is not None else None,
                "last_reason": last.reason if last is not None else None,
            },
        }
    )


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
