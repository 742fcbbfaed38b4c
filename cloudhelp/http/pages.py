"""Server-rendered pages (Jinja2 templates in web/templates)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import jinja2
from aiohttp import web
from sqlalchemy import func, select

from cloudhelp.core import clock, i18n
from cloudhelp.core.clock import local_minute
from cloudhelp.domain import catalog, network
from cloudhelp.domain.accounts import STAFF_COOKIE
from cloudhelp.http.state import AppState
from cloudhelp.store.models import (
    ATTENDANT_ROLE,
    ROLES,
    SUPERVISOR_ROLES,
    Department,
    Kiosk,
    ServiceItem,
    Station,
)
from web import TEMPLATES_DIR

ENV_KEY = web.AppKey("jinja_env", jinja2.Environment)


def local_time(value: str | datetime) -> str:
    """An ISO timestamp as the district's local time, e.g. 2026-11-28 00:13."""
    return local_minute(datetime.fromisoformat(value) if isinstance(value, str) else value)


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["local"] = local_time
    return env


# The header nav of signed-in pages: (path, catalog key, roles that may open it).
SITE_NAV: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("/staff", "nav.console", ROLES),
    ("/board", "nav.board", SUPERVISOR_ROLES),
    ("/reports", "nav.reports", SUPERVISOR_ROLES),
    ("/follow-ups", "nav.follow_ups", SUPERVISOR_ROLES),
    ("/cases", "nav.cases", ROLES),
    ("/campaigns", "nav.campaigns", SUPERVISOR_ROLES),
    ("/audit", "nav.audit", SUPERVISOR_ROLES),
    ("/logistics", "nav.logistics", ROLES),
    ("/station", "nav.station", (ATTENDANT_ROLE,)),
)


# Set by 退出 (account_routes.signout_page) for the next page shown, whose sign-in card then says
# 已退出登录; that page clears it.
SIGNED_OUT_COOKIE = "cloudhelp_signed_out"
# A path of this site, where a page may send the browser back to ("//host" or "/\host" would be
# another site's).
_PAGE_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9/_.\-]*")


def site_path(asked: str) -> str | None:
    """``asked`` if it is a path of this site (退出's and a sign-in's way back), else None."""
    return asked if _PAGE_PATH.fullmatch(asked) else None


def sign_in_first(request: web.Request) -> web.HTTPFound:
    """To the console's sign-in, which sends the browser back to this page once signed in."""
    return web.HTTPFound(f"/staff?next={request.path}" if site_path(request.path) else "/staff")


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    lang = i18n.request_lang(request)
    signed_out = request.cookies.get(SIGNED_OUT_COOKIE) == "1"

    def t(key: str, **values: object) -> str:
        return i18n.translate(lang, key, **values)

    other = "en" if lang == i18n.DEFAULT_LANG else i18n.DEFAULT_LANG
    # has_session: whether the request carried a sign-in cookie at all (<html data-session>):
    # without one the page's script knows nobody is signed in and asks no /api/v1/auth/me.
    common = {"t": t, "lang": lang, "other_lang": other, "path": request.path,
              "site_nav": SITE_NAV, "signed_out": signed_out,
              "has_session": bool(request.cookies.get(STAFF_COOKIE))}  # fmt: skip
    html = request.app[ENV_KEY].get_template(template).render(**common, **context)
    response = web.Response(text=html, content_type="text/html", status=status)
    if signed_out:
        response.del_cookie(SIGNED_OUT_COOKIE)
    if request.query.get("lang") in i18n.LANGS:
        response.set_cookie(
            i18n.LANG_COOKIE, lang, max_age=365 * 86400, samesite="Lax", secure=request.secure
        )
    return response


async def home(request: web.Request) -> web.Response:
    state = AppState.of(request.app)
    async with state.db.read() as session:
        counts = {
            name: await session.scalar(select(func.count()).select_from(model))
            for name, model in (
                ("items", ServiceItem),
                ("departments", Department),
                ("stations", Station),
                ("kiosks", Kiosk),
            )
        }
        stations = await network.list_stations(session)
    return render(request, "home.html", counts=counts, stations=stations)


async def catalog_page(request: web.Request) -> web.Response:
    state = AppState.of(request.app)
    query = request.query.get("q", "").strip()
    department = request.query.get("department") or None
    category = request.query.get("category") or None
    tier = request.query.get("tier") or None
    if tier not in (None, *network.TIER_RANK):
        tier = None
    async with state.db.read() as session:
        items, total = await catalog.search_items(
            session, query=query, department=department, category=category, tier=tier, limit=500
        )
        departments = await catalog.list_departments(session)
        categories = await catalog.list_categories(session)
    return render(
        request,
        "catalog.html",
        items=items,
        total=total,
        query=query,
        department=department,
        category=category,
        tier=tier,
        departments=departments,
        categories=categories,
    )


async def item_page(request: web.Request) -> web.Response:
    state = AppState.of(request.app)
    async with state.db.read() as session:
        item = await catalog.get_item(session, request.match_info["code"])
    if item is None:
        return render(request, "error.html", status=404, message_key="error.not_found")
    return render(request, "item.html", item=item)


async def kiosk_page(request: web.Request) -> web.Response:
    settings = AppState.of(request.app).settings
    return render(
        request,
        "kiosk.html",
        idle_seconds=settings.kiosk_idle_seconds,
        idle_warning_seconds=settings.kiosk_idle_warning_seconds,
    )


async def staff_page(request: web.Request) -> web.Response:
    # Sent here to sign in by a supervisor's page (?next=/board): back there once signed in.
    back = site_path(request.query.get("next", ""))
    return render(request, "staff.html", next_page="" if back == request.path else back or "")


async def board_page(request: web.Request) -> web.Response:
    return render(request, "board.html")


async def reports_page(request: web.Request) -> web.Response:
    # The district's day, not the browser's: a supervisor's machine on another clock (UTC)
    # would otherwise leave today's calls out of the default range.
    return render(request, "reports.html", today=clock.today().isoformat())


async def follow_ups_page(request: web.Request) -> web.Response:
    return render(request, "follow_ups.html")


async def campaigns_page(request: web.Request) -> web.Response:
    """The campaigns (集中办理) and the form for a new one; a campaign's own page with its id."""
    raw = request.match_info.get("id", "")
    return render(request, "campaigns.html", campaign_id=int(raw) if raw.isdigit() else 0)


async def book_page(request: web.Request) -> web.Response:
    """Booking an appointment (预约), and finding, moving or cancelling one by its code."""
    state = AppState.of(request.app)
    async with state.db.read() as session:
        stations = await network.list_stations(session)
    return render(request, "book.html", stations=[s for s in stations if s["tier"] != "district"])


async def message_catalog(request: web.Request) -> web.Response:
    lang = request.match_info["lang"]
    if lang not in i18n.LANGS:
        raise web.HTTPNotFound()
    return web.json_response(i18n.catalog(lang), dumps=AppState.of(request.app).dumps)


def setup(app: web.Application) -> None:
    app[ENV_KEY] = make_environment()
    app.router.add_get("/", home)
    app.router.add_get("/kiosk", kiosk_page)
    app.router.add_get("/staff", staff_page)
    app.router.add_get("/board", board_page)
    app.router.add_get("/reports", reports_page)
    app.router.add_get("/follow-ups", follow_ups_page)
    app.router.add_get("/campaigns", campaigns_page)
    app.router.add_get(r"/campaigns/{id:\d{1,9}}", campaigns_page)
    app.router.add_get("/book", book_page)
    app.router.add_get("/i18n/{lang}.json", message_catalog)
    app.router.add_get("/catalog", catalog_page)
    app.router.add_get("/catalog/{code}", item_page)
