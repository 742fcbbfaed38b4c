"""Reminders of appointments through a notifier seam (docs/appointments.md, "Reminders").

``reminders`` says who to remind of what; a ``Notifier`` delivers them. ``CsvNotifier`` — the
only one today — writes them as CSV for a person to send (or to load into an SMS platform); an
SMS gateway later implements ``Notifier.deliver`` the same way, and nothing calls one in tests.
Each appointment reminded gets ``reminded_at``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cloudhelp.core.clock import LOCAL_TZ
from cloudhelp.domain import appointments
from cloudhelp.store.models import Appointment

HEADINGS = ("预约码", "姓名", "手机号", "事项", "日期", "时间", "驿站", "短信内容")


@dataclass(frozen=True)
class Reminder:
    code: str
    name: str
    phone: str
    item: str
    day: str
    time: str
    station: str
    text: str


def reminder(appointment: Appointment) -> Reminder:
    starts = appointment.starts_at.astimezone(LOCAL_TZ)
    code = appointments.show_code(appointment.code)
    text = (
        f"【云帮办】{appointment.name}您好，您预约的{appointment.item.name}将于"
        f"{starts:%m月%d日 %H:%M}在{appointment.station.name}办理，请提前到达并在自助终端输入"
        f"预约码{code}签到，带齐材料。改约或取消请凭预约码和手机号后四位办理。"
    )
    return Reminder(code, appointment.name, appointment.phone, appointment.item.name,
                    f"{starts:%Y-%m-%d}", f"{starts:%H:%M}", appointment.station.name,
                    text)  # fmt: skip


class Notifier(Protocol):
    """Delivers reminders; what it returns is for the person who asked (a file, a receipt)."""

    def deliver(self, reminders: Sequence[Reminder]) -> bytes: ...


class CsvNotifier:
    """Reminders as a UTF-8 CSV (with BOM, so that Excel reads the Chinese)."""

    media_type = "text/csv; charset=utf-8"

    def deliver(self, reminders: Sequence[Reminder]) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(HEADINGS)
        for r in reminders:
            writer.writerow((r.code, r.name, r.phone, r.item, r.day, r.time, r.station, r.text))
        return ("\ufeff" + out.getvalue()).encode("utf-8")


def remind(notifier: Notifier, booked: Sequence[Appointment], now: datetime) -> bytes:
    """Deliver reminders of the booked appointments still to come; mark them reminded."""
    due = [a for a in booked if a.status == "booked" and a.starts_at > now]
    result = notifier.deliver([reminder(a) for a in due])
    for a in due:
        a.reminded_at = now
    return result
