"""HTTP routes for signing in: staff login/logout, kiosk enrolment, kiosk admin."""

from __future__ import annotations

import math
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core.config import Settings
from cloudhelp.core.throttle import Throttles
from cloudhelp.domain import accounts, audit
from cloudhelp.domain.accounts import STAFF_COOKIE
from cloudhelp.http.auth import current_staff, staff_token
from cloudhelp.http.bodies import Body, parse_body
from cloudhelp.http.errors import ApiError
from cloudhelp.http.pages import SIGNED_OUT_COOKIE, site_path
from cloudhelp.http.state import AppState
from cloudhelp.store.models import Staff

PREFIX = "/api/v1"
THROTTLE_KEY = web.AppKey("login_throttle", accounts.LoginThrottle)


class LoginBody(Body):
    username: Annotated[str, Field(min_length=1, max_length=50)]
    password: Annotated[str, Field(min_length=1, max_length=200)]


class EnrolBody(Body):
    code: Annotated[str, Field(min_length=4, max_length=20)]


class NewKioskBody(Body):
    station: Annotated[str, Field(min_length=1, max_length=32)]
    code: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
    name: Annotated[str, Field(max_length=100)] | None = None


def staff_json(staff: Staff) -> dict[str, Any]:
    return {
        "username": staff.username,
        "name": staff.display_name,
        "role": staff.role,
        "station": staff.station.code,
        # Rung for calls only with an item or a department to answer for (a supervisor may have
        # none: the console then says so).
        "answers_calls": bool(staff.skills),
    }


async def login(request: web.Request) -> web.Response:
    body = await parse_body(request, LoginBody)
    throttle = request.app[THROTTLE_KEY]
    # A try that is not refused counts as a failure from here, in the same step as the check
    # (one script on Redis), so guesses sent side by side while the checks run are throttled
    # too; the right password clears it.
    wait = await throttle.attempt(body.username, request.remote)
    if wait > 0:
        seconds, minutes = math.ceil(wait), math.ceil(wait / 60)
        async with AppState.of(request.app).db.write() as session:
            await audit.append(session, audit.Actor("anonymous", body.username),
                               "auth.sign_in_failed", subject_kind="account",
                               subject=body.username, code="too_many_attempts")  # fmt: skip
        raise ApiError(
            429,
            "too_many_attempts",
            f"Too many wrong passwords for this account; try again in {minutes} min.",
            headers={"Retry-After": str(seconds)},
            retry_after=seconds,
            minutes=minutes,
        )
    state = AppState.of(request.app)
    candidate = None
    try:
        # The password is checked in a worker thread with no transaction open: argon2 takes
        # ~0.15 s, which must stall neither the event loop nor SQLite's other writers.
        async with state.db.read() as session:
            candidate = await accounts.sign_in_candidate(session, body.username)
        checked = await accounts.check_password(candidate, body.password)
        async with state.db.write() as session:
            staff, token = await accounts.start_sign_in(session, checked)
            await audit.append(session, audit.staff_actor(staff), "auth.sign_in",
                               subject_kind="account", subject=staff.username)  # fmt: skip
    except accounts.AccountError as exc:
        # The person is told only 用户名或密码错误; the trail says which (a disabled account).
        code = "account_disabled" if candidate is not None and not candidate.active else exc.code
        async with state.db.write() as session:  # a started sign-in's transaction rolled back
            await audit.append(session, audit.Actor("anonymous", body.username),
                               "auth.sign_in_failed", subject_kind="account",
                               subject=body.username, code=code)  # fmt: skip
        raise ApiError.of(exc, 401) from None
    await throttle.succeeded(body.username, request.remote)
    response = web.json_response({"staff": staff_json(staff)}, dumps=state.dumps)
    response.set_cookie(
        STAFF_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        max_age=int(accounts.LOGIN_TTL.total_seconds()),
        secure=request.secure,
    )
    return response


async def _login_of(session: AsyncSession, staff_id: int) -> str:
    return await session.scalar(select(Staff.username).where(Staff.id == staff_id)) or ""


async def _sign_out(request: web.Request) -> None:
    """End the request's staff sign-in, if any: audited, and the staff member's presence ends."""
    state = AppState.of(request.app)
    token = staff_token(request)
    if token:
        async with state.db.write() as session:
            staff_id = await accounts.logout(session, token)
            if staff_id is not None:
                login = await _login_of(session, staff_id)
                await audit.append(session, audit.Actor("staff", login, staff_id), "auth.sign_out",
                                   subject_kind="account", subject=login)  # fmt: skip
        if staff_id is not None:
            await state.callcenter.sign_out_staff(staff_id)


async def logout(request: web.Request) -> web.Response:
    await _sign_out(request)
    response = web.json_response({"signed_out": True})
    response.del_cookie(STAFF_COOKIE)
    return response


async def signout_page(request: web.Request) -> web.Response:
    """退出 on a page (templates/_signout.html): signed out, then back to the page it was on,
    which says 已退出登录 on its sign-in card."""
    await _sign_out(request)
    back = site_path(str((await request.post()).get("next", ""))) or "/"
    response = web.Response(status=303, headers={"Location": back})
    response.del_cookie(STAFF_COOKIE)
    # The page it goes back to (or the console, where it sends the signed-out) says so.
    response.set_cookie(SIGNED_OUT_COOKIE, "1", max_age=60, httponly=True, samesite="Strict",
                        secure=request.secure)  # fmt: skip
    return response


async def me(request: web.Request) -> web.Response:
    staff = await current_staff(request)
    return web.json_response({"staff": staff_json(staff)}, dumps=AppState.of(request.app).dumps)


async def enrol(request: web.Request) -> web.Response:
    """A kiosk exchanges its one-time code for its device credential."""
    body = await parse_body(request, EnrolBody)
    state = AppState.of(request.app)
    try:
        async with state.db.write() as session:
            kiosk, credential = await accounts.redeem_enrol_code(session, body.code)
            await audit.append(session, audit.kiosk_actor(kiosk), "kiosk.enrolled",
                               subject_kind="kiosk", subject=kiosk.code,
                               station=kiosk.station.code)  # fmt: skip
            result = {
                "kiosk": {
                    "code": kiosk.code,
                    "name": kiosk.name,
                    "station": {"code": kiosk.station.code, "name": kiosk.station.name},
                },
                "credential": credential,
            }
    except accounts.AccountError as exc:
        raise ApiError.of(exc) from None
    return web.json_response(result, dumps=state.dumps)


async def admin_new_kiosk(request: web.Request) -> web.Response:
    admin = await current_staff(request, ("admin",))
    body = await parse_body(request, NewKioskBody)
    state = AppState.of(request.app)
    try:
        async with state.db.write() as session:
            code = await accounts.enrol_kiosk(session, body.station, body.code, body.name)
            await audit.append(session, audit.staff_actor(admin), "kiosk.enrol_code_issued",
                               subject_kind="kiosk", subject=body.code,
                               station=body.station)  # fmt: skip
    except accounts.AccountError as exc:
        raise ApiError.of(exc) from None
    return web.json_response({"kiosk": body.code, "enrol_code": code}, status=201)


async def admin_revoke_kiosk(request: web.Request) -> web.Response:
    admin = await current_staff(request, ("admin",))
    state = AppState.of(request.app)
    try:
        async with state.db.write() as session:
            kiosk = await accounts.revoke_kiosk(session, request.match_info["code"])
            kiosk_id = kiosk.id
            await audit.append(session, audit.staff_actor(admin), "kiosk.revoked",
                               subject_kind="kiosk", subject=kiosk.code)  # fmt: skip
    except accounts.AccountError as exc:
        raise ApiError.of(exc, 404) from None
    await state.callcenter.revoke_kiosk_sessions(kiosk_id)
    return web.json_response({"kiosk": request.match_info["code"], "revoked": True})


def setup(app: web.Application, settings: Settings, throttles: Throttles) -> None:
    app[THROTTLE_KEY] = accounts.LoginThrottle(
        per_address=settings.login_failures_per_address,
        per_account=settings.login_failures_per_account,
        window=settings.login_window_seconds,
        throttles=throttles,
    )
    app.router.add_post(f"{PREFIX}/auth/login", login)
    app.router.add_post(f"{PREFIX}/auth/logout", logout)
    app.router.add_post("/signout", signout_page)
    app.router.add_get(f"{PREFIX}/auth/me", me)
    app.router.add_post(f"{PREFIX}/kiosk/enrol", enrol)
    app.router.add_post(f"{PREFIX}/admin/kiosks", admin_new_kiosk)
    app.router.add_post(f"{PREFIX}/admin/kiosks/{{code}}/revoke", admin_revoke_kiosk)
