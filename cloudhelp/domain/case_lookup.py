"""A resident finds their case again at a kiosk: by its number and the last four characters of
the applicant's phone or ID number, for a case waiting for corrections (or whose pre-review a
dropped call left open).

A wrong pair and an unknown number are the same answer; failures are counted per case number
and per kiosk (:class:`LookupThrottle`), and each limit reached is audited once.
"""

from __future__ import annotations

import hmac
import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core.throttle import Limits, Throttles, local_throttles
from cloudhelp.domain import audit, cases, prereview
from cloudhelp.store.models import Case, CorrectionNotice, Kiosk

LAST4 = re.compile(r"^[0-9]{3}[0-9Xx]$")
MAX_NUMBER = 32  # the audit trail's column for a case number


def typed(text: str) -> str:
    """What was typed, as compared: full-width digits and letters (an IME's ５６７８) as ASCII."""
    return unicodedata.normalize("NFKC", text).strip()


# A case number is district-day-serial, 6-8-4 digits (cases.reserve_numbers): 210211-20261202-0002.
NUMBER_DIGITS = re.compile(r"^([0-9]{6})([0-9]{8})([0-9]{4})$")
# Spaces and dashes a resident may type between (or instead of) the hyphens; NFKC has already
# made full-width ones ASCII.
SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212]+")


def case_number(text: str) -> str:
    """A typed case number as stored: ``typed``, without spaces or dashes, and 18 digits get
    the hyphens of the format back (210211 20261202 0002 → 210211-20261202-0002). Anything
    else is returned without its separators, to be found or not as it is."""
    bare = SEPARATORS.sub("", typed(text))
    parts = NUMBER_DIGITS.match(bare)
    return "-".join(parts.groups()) if parts else bare


def well_formed(number: str, last4: str) -> bool:
    """Whether a lookup (already ``typed``) gives a number and four final characters."""
    return bool(number) and len(number) <= MAX_NUMBER and LAST4.match(last4) is not None


class LookupThrottle:
    """Failed kiosk case lookups, counted per case number (from any kiosk: guessing one case's
    digits) and per kiosk (for any number: walking the sequential numbers). A found case clears
    nothing: a resident who knows their own case must not reset a kiosk's count."""

    def __init__(
        self, per_case: int, per_kiosk: int, window: float, throttles: Throttles = local_throttles
    ) -> None:
        self.per_case = per_case
        self.per_kiosk = per_kiosk
        self.window = window
        self.failures = throttles("lookup", max(per_case, per_kiosk), window)

    def limits(self, kiosk_id: int, number: str) -> Limits:
        return (f"case:{number}", self.per_case), (f"kiosk:{kiosk_id}", self.per_kiosk)

    async def retry_after(self, kiosk_id: int, number: str) -> float:
        """Seconds until this kiosk may look this number up again (0: now)."""
        return await self.failures.wait(self.limits(kiosk_id, number))

    async def failed(self, kiosk_id: int, number: str) -> list[str]:
        """Count a failure; returns which limits (``case``, ``kiosk``) it has just reached."""
        reached = await self.failures.add(self.limits(kiosk_id, number))
        return [scope for scope, now in zip(("case", "kiosk"), reached, strict=True) if now]


@dataclass(frozen=True)
class Found:
    case: Case
    notices: list[CorrectionNotice]


def _matches(case: Case, last4: str) -> bool:
    """Whether ``last4`` ends the applicant's phone or ID number; both are compared, in constant
    time, whichever matches."""
    phone = typed(case.applicant_phone)[-4:].encode()
    id_number = typed(case.applicant_id_number)[-4:].upper().encode()
    wanted = last4.upper().encode()
    return hmac.compare_digest(phone, wanted) | hmac.compare_digest(id_number, wanted)


async def find(session: AsyncSession, number: str, last4: str) -> Found | None:
    """The case waiting for corrections with this number whose applicant's phone or ID number
    ends in ``last4``, with its notices; None otherwise (unknown, other state or wrong
    digits alike)."""
    case = await cases.for_correction(session, number)
    if case is None or not _matches(case, last4):
        return None
    return Found(case, await prereview.notices_of(session, case))


async def audit_limit_reached(
    session: AsyncSession, kiosk: Kiosk, number: str, scope: str, throttle: LookupThrottle
) -> None:
    """One audit row for the failure that reached a limit (``case`` or ``kiosk``)."""
    await audit.append(session, audit.kiosk_actor(kiosk), "case.lookup_throttled",
                       subject_kind="kiosk" if scope == "kiosk" else "case",
                       subject=kiosk.code if scope == "kiosk" else number,
                       case_number=number, scope=scope, window_seconds=throttle.window,
                       failures=throttle.per_kiosk if scope == "kiosk"
                       else throttle.per_case)  # fmt: skip
