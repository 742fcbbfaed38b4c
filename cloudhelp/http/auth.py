"""Who is asking: the staff member signed in by the session cookie, or the kiosk by its device
credential (``Authorization: Kiosk <credential>``), and whether their role may do a thing."""

from __future__ import annotations

from aiohttp import web

from cloudhelp.domain import accounts
from cloudhelp.domain.accounts import STAFF_COOKIE
from cloudhelp.http.errors import ApiError
from cloudhelp.http.state import AppState
from cloudhelp.store.models import ROLES, Kiosk, Staff

# Anyone signed in on the console: staff, supervisors and admins.
STAFF_ROLES = ROLES
KIOSK_SCHEME = "Kiosk "


def staff_token(request: web.Request) -> str | None:
    """The sign-in token in the session cookie, if any."""
    return request.cookies.get(STAFF_COOKIE) or None


def kiosk_credential(request: web.Request) -> str | None:
    """The device credential in ``Authorization: Kiosk …``, if the request carries one."""
    header = request.headers.get("Authorization", "")
    return header.removeprefix(KIOSK_SCHEME) if header.startswith(KIOSK_SCHEME) else None


def _refused(exc: accounts.AccountError) -> ApiError:
    return ApiError.of(exc, 401)


async def current_staff(request: web.Request, roles: tuple[str, ...] | None = None) -> Staff:
    """The signed-in staff member (by cookie): 401 if none, 403 if ``roles`` are given and
    theirs is not among them."""
    token = staff_token(request)
    if not token:
        raise ApiError(401, "not_signed_in", "Please sign in first.")
    async with AppState.of(request.app).db.read() as session:
        try:
            staff = await accounts.staff_by_token(session, token)
        except accounts.AccountError as exc:
            raise _refused(exc) from None
    if roles is not None and staff.role not in roles:
        raise ApiError(403, "forbidden", "Your role may not do this.")
    return staff


async def staff_or_none(request: web.Request, roles: tuple[str, ...] = STAFF_ROLES) -> Staff | None:
    """For pages: the signed-in viewer holding one of ``roles``, or None."""
    try:
        return await current_staff(request, roles)
    except ApiError:
        return None


async def current_kiosk(request: web.Request) -> Kiosk:
    """The enrolled kiosk whose credential the request carries; 401 otherwise (also for a
    request with no ``Kiosk`` credential at all)."""
    async with AppState.of(request.app).db.read() as session:
        try:
            return await accounts.kiosk_by_credential(session, kiosk_credential(request) or "")
        except accounts.AccountError as exc:
            raise _refused(exc) from None
