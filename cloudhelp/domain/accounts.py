"""Kiosk enrolment and device credentials; staff accounts and sign-in sessions."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core.errors import CodedError
from cloudhelp.core.throttle import Limits, Throttles, local_throttles
from cloudhelp.domain.passwords import hash_password, verify_password
from cloudhelp.store.models import Kiosk, Staff, StaffLogin, Station, utcnow

# The cookie that carries a staff sign-in session (pages, API and the WebSocket read it).
STAFF_COOKIE = "cloudhelp_session"
ENROL_CODE_TTL = timedelta(hours=24)
LOGIN_TTL = timedelta(hours=12)
ENROL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone


class AccountError(CodedError):
    """A refused account operation (enrolment, sign-in, staff accounts)."""


def token_hash(token: str) -> str:
    """Tokens are random and long, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


def _normalise_code(code: str) -> str:
    return code.replace("-", "").replace(" ", "").upper()


# ---------------------------------------------------------------------------- kiosks


def _format_code(raw: str) -> str:
    return f"{raw[:4]}-{raw[4:]}"


def demo_enrol_code(secret_key: bytes, kiosk_code: str) -> str:
    """The demo's enrolment code of a kiosk: the same on every run of ``cloudhelp demo`` with the
    same secret key, so codes printed by an earlier run keep working until they are used."""
    digest = hmac.new(secret_key, f"demo-enrol:{kiosk_code}".encode(), "sha256").digest()
    return _format_code("".join(ENROL_ALPHABET[b % len(ENROL_ALPHABET)] for b in digest[:8]))


async def enrol_kiosk(
    session: AsyncSession,
    station_code: str,
    kiosk_code: str,
    name: str | None = None,
    *,
    code: str | None = None,
) -> str:
    """Register (or re-enrol) a kiosk at a station; returns the one-time enrolment code
    (``code`` when given, else a random one), valid for ``ENROL_CODE_TTL``.

    Re-enrolling replaces the kiosk's credential: the old device is signed out.
    """
    station = await session.scalar(select(Station).where(Station.code == station_code))
    if station is None:
        raise AccountError("no_such_station", f"There is no station with code {station_code!r}.")
    kiosk = await session.scalar(select(Kiosk).where(Kiosk.code == kiosk_code))
    if kiosk is None:
        kiosk = Kiosk(code=kiosk_code, name=name or kiosk_code, station=station)
        session.add(kiosk)
    elif kiosk.station_id != station.id:
        raise AccountError(
            "wrong_station", f"Kiosk {kiosk_code} belongs to another station; pick a new code."
        )
    raw = (
        _normalise_code(code) if code else "".join(secrets.choice(ENROL_ALPHABET) for _ in range(8))
    )
    kiosk.enrol_code_hash = token_hash(raw)
    kiosk.enrol_expires_at = utcnow() + ENROL_CODE_TTL
    kiosk.credential_hash = None
    kiosk.revoked_at = None
    if name:
        kiosk.name = name
    await session.flush()
    return _format_code(raw)


NEW_CODE_HINT = "ask the station's attendant for a new code (cloudhelp kiosk enrol)"


async def redeem_enrol_code(session: AsyncSession, code: str) -> tuple[Kiosk, str]:
    """Exchange a one-time code for the kiosk's long-lived credential (once).

    A redeemed code's hash stays on the kiosk (with no expiry) until the next code replaces it,
    so a second use is told apart from a mistyped code: ``enrol_code_used``,
    ``enrol_code_expired``, ``enrol_code_unknown``.
    """
    kiosk = await session.scalar(
        select(Kiosk).where(Kiosk.enrol_code_hash == token_hash(_normalise_code(code)))
    )
    if kiosk is None:
        raise AccountError(
            "enrol_code_unknown", f"There is no such enrolment code; check it, or {NEW_CODE_HINT}."
        )
    if kiosk.enrol_expires_at is None:
        raise AccountError(
            "enrol_code_used",
            f"This enrolment code was already used (kiosk {kiosk.code}); {NEW_CODE_HINT}.",
        )
    if kiosk.enrol_expires_at < utcnow():
        raise AccountError("enrol_code_expired", f"This enrolment code expired; {NEW_CODE_HINT}.")
    credential = secrets.token_urlsafe(32)
    kiosk.credential_hash = token_hash(credential)
    kiosk.enrol_expires_at = None  # the code's hash stays: a second use is "used", not "unknown"
    kiosk.enrolled_at = utcnow()
    await session.flush()
    return kiosk, credential


async def kiosk_by_credential(session: AsyncSession, credential: str) -> Kiosk:
    kiosk = await session.scalar(
        select(Kiosk).where(Kiosk.credential_hash == token_hash(credential))
    )
    if kiosk is None:
        raise AccountError(
            "auth_failed",
            "This kiosk is not enrolled or its credential was replaced; enrol it again.",
        )
    if kiosk.revoked_at is not None:
        raise AccountError("revoked", "This kiosk's credential was revoked; ask an administrator.")
    return kiosk


async def kiosks_by_id(session: AsyncSession, kiosk_ids: Collection[int]) -> dict[int, Kiosk]:
    """The kiosks of ``kiosk_ids`` that exist, by id (one statement for all of them)."""
    found = await session.scalars(select(Kiosk).where(Kiosk.id.in_(kiosk_ids)))
    return {kiosk.id: kiosk for kiosk in found}


async def revoke_kiosk(session: AsyncSession, kiosk_code: str) -> Kiosk:
    kiosk = await session.scalar(select(Kiosk).where(Kiosk.code == kiosk_code))
    if kiosk is None:
        raise AccountError("no_such_kiosk", f"There is no kiosk with code {kiosk_code!r}.")
    kiosk.revoked_at = utcnow()
    kiosk.credential_hash = None
    kiosk.enrol_code_hash = None
    await session.flush()
    return kiosk


async def kiosks_without_credential(session: AsyncSession) -> set[int]:
    """The kiosks that have no credential: revoked, or not enrolled yet (a few, however many
    kiosks are connected — so the periodic check costs the same with 5,000 of them)."""
    stmt = select(Kiosk.id).where(Kiosk.credential_hash.is_(None))
    return set((await session.scalars(stmt)).all())


# ---------------------------------------------------------------------------- staff


async def new_password_hash(password: str) -> str:
    """The hash to store for a new ``password`` (at least 8 characters), computed in a worker
    thread: call it before opening the write transaction that stores it (set_password_hash)."""
    if len(password) < 8:
        raise AccountError("weak_password", "A password needs at least 8 characters.")
    return await hash_password(password)


async def set_password_hash(session: AsyncSession, username: str, password_hash: str) -> Staff:
    """Store a hash from ``new_password_hash`` as the staff member's password."""
    staff = await session.scalar(select(Staff).where(Staff.username == username))
    if staff is None:
        raise AccountError("no_such_staff", f"There is no staff member {username!r}.")
    staff.password_hash = password_hash
    await session.flush()
    return staff


@dataclass(frozen=True)
class SignInCandidate:
    """Who a sign-in names, as read before the password is checked (outside any transaction)."""

    staff_id: int
    password_hash: str | None
    active: bool


def _bad_credentials() -> AccountError:
    """The one refusal of every wrong sign-in (which part was wrong is not said)."""
    return AccountError("bad_credentials", "Wrong username or password.")


async def sign_in_candidate(session: AsyncSession, username: str) -> SignInCandidate | None:
    """The staff member ``username`` names, if any (read only)."""
    row = (
        await session.execute(
            select(Staff.id, Staff.password_hash, Staff.active).where(Staff.username == username)
        )
    ).one_or_none()
    return SignInCandidate(*row) if row else None


async def check_password(candidate: SignInCandidate | None, password: str) -> SignInCandidate:
    """The candidate if ``password`` is theirs and the account active; else ``bad_credentials``.

    Verified in a worker thread, against a dummy hash when the user is unknown so that timing
    does not tell. Call it with no transaction open (above all no ``Database.write()``)."""
    ok = await verify_password(candidate.password_hash if candidate else None, password)
    if candidate is None or not ok or not candidate.active:
        raise _bad_credentials()
    return candidate


async def start_sign_in(session: AsyncSession, checked: SignInCandidate) -> tuple[Staff, str]:
    """Open a sign-in session for a candidate that passed ``check_password``; returns the staff
    member and the session token (for the cookie). Refused as ``bad_credentials`` if the
    account was disabled or its password changed since the check."""
    staff = await session.get(Staff, checked.staff_id)
    if staff is None or not staff.active or staff.password_hash != checked.password_hash:
        raise _bad_credentials()
    token = secrets.token_urlsafe(32)
    session.add(
        StaffLogin(token_hash=token_hash(token), staff_id=staff.id, expires_at=utcnow() + LOGIN_TTL)
    )
    await session.flush()
    return staff, token


async def staff_by_token(session: AsyncSession, token: str) -> Staff:
    row = await session.scalar(select(StaffLogin).where(StaffLogin.token_hash == token_hash(token)))
    if row is None or row.ended_at is not None or row.expires_at < utcnow():
        raise AccountError("auth_failed", "You are not signed in, or your sign-in expired.")
    staff = await session.get(Staff, row.staff_id)
    if staff is None or not staff.active:
        raise AccountError("auth_failed", "This account is disabled.")
    return staff


async def logout(session: AsyncSession, token: str) -> int | None:
    """End a sign-in; returns the staff member's id if it was active."""
    row = await session.scalar(select(StaffLogin).where(StaffLogin.token_hash == token_hash(token)))
    if row is None or row.ended_at is not None:
        return None
    row.ended_at = utcnow()
    await session.flush()
    return row.staff_id


class LoginThrottle:
    """Failed sign-ins counted per account+address and per account, never per address alone.

    A hall's staff share one NAT address: one person mistyping their own password must not
    lock out the others. ``per_address`` failures for one account from one address within
    ``window`` seconds block that account from that address; ``per_account`` failures from any
    addresses block the account everywhere (a guesser spreading over many addresses). Counted
    by the throttle ``throttles`` makes (this process's memory, or Redis shared by every node).
    """

    def __init__(
        self,
        per_address: int = 5,
        per_account: int = 20,
        window: float = 300.0,
        throttles: Throttles = local_throttles,
    ) -> None:
        self.per_address = per_address
        self.per_account = per_account
        self.failures = throttles("login", max(per_address, per_account), window)

    def _limits(self, username: str, address: str | None) -> Limits:
        return (
            (f"account:{username}", self.per_account),
            (f"account:{username}|address:{address or '-'}", self.per_address),
        )

    async def attempt(self, username: str, address: str | None) -> float:
        """Seconds until ``username`` may try again from ``address``; 0: this attempt is
        counted as a failure already (in the same step as the check, so guesses sent side by
        side cannot all pass it) until ``succeeded`` clears it."""
        return await self.failures.take(self._limits(username, address))

    async def succeeded(self, username: str, address: str | None) -> None:
        """The right password ends both counts of this account."""
        await self.failures.clear(key for key, _ in self._limits(username, address))


async def display_names(session: AsyncSession, logins: set[str]) -> dict[str, str]:
    """The names people know (赵刚) of staff logins, for pages; unknown logins are left out."""
    rows = await session.execute(
        select(Staff.username, Staff.display_name).where(Staff.username.in_(logins))
    )
    return {login: name for login, name in rows.all()}
