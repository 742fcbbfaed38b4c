"""Network quality: the kiosk's pre-call check and the calls' periodic media figures.

One rule for each judgement, used by the server only (the pages show what it says):
``check_verdict`` (good / poor / failed, for the pre-call check) and ``sample_level`` (good /
fair / poor, for one ``call.stats`` summary). ``CallFigures`` gathers a call's summaries per side
while it lasts; ``save_summaries`` keeps them with the ticket when it ends (``call_quality``).
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core.clock import day_bounds, iso
from cloudhelp.store.models import Call, CallQuality, ServiceItem, Staff, Station, Ticket

# Pre-call check: above these the network is poor (calls may stutter).
CHECK_POOR_RTT_MS = 300.0
CHECK_POOR_LOSS = 0.05
CHECK_POOR_SIGNALING_MS = 1000.0
# One call summary: (fair, poor) thresholds.
RTT_MS = (200.0, 400.0)
LOSS = (0.02, 0.08)
# Lower is worse; only when video is received. A document camera at 15 fps (many send 15)
# measures 14-15: still good; 12 is where motion starts to stutter, 6 where it is a slideshow.
FPS = (12.0, 6.0)
LEVELS = ("good", "fair", "poor")
BARS = {"good": 3, "fair": 2, "poor": 1}
# Summaries kept per side of a call for its medians (a 5 s period: one hour).
SAMPLES_KEPT = 720
# A side's level shown gets worse at once and better only after this many better summaries in
# a row (15 s at one every 5 s): one good or bad moment does not flip the console's bars.
RECOVERY_SAMPLES = 3


def check_verdict(signaling_rtt_ms: float | None, media: dict[str, Any] | None) -> str:
    """``failed``: no media path to the server (not connected, or no probe came back);
    ``poor``: round trip or loss above the thresholds; else ``good``."""
    if not media or not media.get("connected") or not media.get("answered"):
        return "failed"
    rtt, loss = media.get("rtt_ms"), media.get("loss") or 0.0
    if (rtt is not None and rtt > CHECK_POOR_RTT_MS) or loss > CHECK_POOR_LOSS:
        return "poor"
    if signaling_rtt_ms is not None and signaling_rtt_ms > CHECK_POOR_SIGNALING_MS:
        return "poor"
    return "good"


def sample_level(sample: dict[str, Any]) -> str:
    """good / fair / poor for one summary: the worst of round trip, loss, frame rate, freezes."""
    worst = 0
    rtt, loss, fps = sample.get("rtt_ms"), sample.get("loss"), sample.get("fps")
    for value, (fair, poor) in ((rtt, RTT_MS), (loss, LOSS)):
        if value is not None:
            worst = max(worst, 2 if value > poor else 1 if value > fair else 0)
    if fps is not None:
        worst = max(worst, 2 if fps < FPS[1] else 1 if fps < FPS[0] else 0)
    if sample.get("freezes"):
        worst = max(worst, 1 if sample["freezes"] < 3 else 2)
    return LEVELS[worst]


def worse(*levels: str | None) -> str | None:
    """The worst of some levels (None when there is none)."""
    known = [LEVELS.index(level) for level in levels if level in LEVELS]
    return LEVELS[max(known)] if known else None


@dataclass
class SideFigures:
    """One side's summaries in one call: the latest, a bounded window, and running totals."""

    latest: dict[str, Any] | None = None
    window: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT))
    count: int = 0
    freezes: int = 0
    poor: int = 0
    relay: bool = False
    rtt_worst: float | None = None
    loss_worst: float | None = None
    fps_worst: float | None = None

    def add(self, sample: dict[str, Any]) -> None:
        """Add a summary (its ``level`` its own); it gets ``shown_level``, the worst of the
        last RECOVERY_SAMPLES summaries' levels."""
        self.latest = sample
        self.window.append(sample)
        recent = (self.window[-n] for n in range(1, min(RECOVERY_SAMPLES, len(self.window)) + 1))
        sample["shown_level"] = worse(*(s["level"] for s in recent))
        self.count += 1
        self.freezes += int(sample.get("freezes") or 0)
        self.poor += sample["level"] == "poor"
        self.relay = self.relay or bool(sample.get("relay"))
        self.rtt_worst = _max(self.rtt_worst, sample.get("rtt_ms"))
        self.loss_worst = _max(self.loss_worst, sample.get("loss"))
        fps = sample.get("fps")
        if fps is not None:
            self.fps_worst = fps if self.fps_worst is None else min(self.fps_worst, fps)

    def summary(self) -> dict[str, Any]:
        """The figures kept for the reports: medians over the window, worsts over the call."""

        def median(name: str) -> float | None:
            values = [s[name] for s in self.window if s.get(name) is not None]
            return round(statistics.median(values), 4) if values else None

        medians = {"rtt_ms": median("rtt_ms"), "loss": median("loss"), "fps": median("fps")}
        return {
            "samples": self.count,
            "rtt_median_ms": medians["rtt_ms"],
            "rtt_worst_ms": self.rtt_worst,
            "loss_median": medians["loss"],
            "loss_worst": self.loss_worst,
            "fps_median": medians["fps"],
            "fps_worst": self.fps_worst,
            "freezes": self.freezes,
            "poor_samples": self.poor,
            "relay": self.relay,
            "level": sample_level(medians | {"freezes": 0}),
        }


def _max(current: float | None, value: float | None) -> float | None:
    if value is None:
        return current
    return value if current is None else max(current, value)


@dataclass
class CallFigures:
    """A call's summaries from both sides, while it lasts."""

    ticket_id: int
    ticket_number: str
    sides: dict[str, SideFigures] = field(default_factory=dict)
    # Each side's latest summary reported to another server process (shown, not kept here:
    # that process keeps its side's figures).
    elsewhere: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, side: str, sample: dict[str, Any]) -> None:
        self.sides.setdefault(side, SideFigures()).add(sample)

    def latest_by_side(self) -> dict[str, dict[str, Any] | None]:
        """Each side's latest summary, wherever it was reported."""
        return self.elsewhere | {side: figures.latest for side, figures in self.sides.items()}

    def level(self) -> str | None:
        """The call's level now: the worse of the two sides' shown levels (SideFigures.add;
        a summary from another process carries its own)."""
        return worse(
            *(s.get("shown_level", s["level"]) for s in self.latest_by_side().values() if s)
        )

    def now(self) -> dict[str, Any]:
        """What the console and the board show: the level, its bars, each side's latest."""
        level = self.level()
        latest = self.latest_by_side()
        relay = any(bool(s and s.get("relay")) for s in latest.values())
        return {"level": level, "bars": BARS.get(level or "", 0), "relay": relay, **latest}


async def save_summaries(
    session: AsyncSession, call_id: int, ticket_id: int, figures: CallFigures | None
) -> None:
    """Keep each side's summary of a call that ended (nothing when no page reported)."""
    if figures is None:
        return
    for side, side_figures in figures.sides.items():
        if side_figures.count:
            session.add(
                CallQuality(call_id=call_id, ticket_id=ticket_id, side=side,
                            **side_figures.summary())
            )  # fmt: skip


async def ended_calls(session: AsyncSession, call_ids: Iterable[int]) -> set[int]:
    """Which of these calls have ended."""
    rows = await session.scalars(
        select(Call.id).where(Call.id.in_(list(call_ids)), Call.ended_at.is_not(None))
    )
    return set(rows.all())


REPORT_LIMIT = 2000  # calls listed at most in one report (the totals count them all)
# A side's figures as the report lists them (CallQuality.JSON_NAMES), read as plain columns: a
# year's calls as entities took seconds of the event loop.
QUALITY_COLUMNS = [CallQuality.__table__.c[name] for name in CallQuality.JSON_NAMES]


@dataclass
class _CallSummary:
    """What the totals and the stations need of one call."""

    station: str
    started_at: datetime
    level: str | None = None  # the worse side's
    relay: bool = False
    kiosk: tuple[float | None, float | None, float | None] | None = None  # rtt, loss, fps


async def report(
    session: AsyncSession, first: date, last: date, level: str | None = None
) -> dict[str, Any]:
    """Calls started in the local days ``first``…``last``: totals (calls with figures, poor,
    fair and relayed ones), per station (_by_station), and the calls (of ``level`` only, if
    given; newest first, at most REPORT_LIMIT) with the ticket, the pre-call check's verdict
    and each side's figures."""
    start, end = day_bounds(first, last)
    summaries: dict[int, _CallSummary] = {}
    sides = await session.execute(
        select(Call.id, Call.started_at, Station.name, CallQuality.side, CallQuality.level,
               CallQuality.relay, CallQuality.rtt_median_ms, CallQuality.loss_median,
               CallQuality.fps_median)
        .join(Ticket, Ticket.id == Call.ticket_id)
        .join(Station, Station.id == Ticket.station_id)
        .join(CallQuality, CallQuality.call_id == Call.id)
        .where(Call.started_at >= start, Call.started_at < end)
    )  # fmt: skip
    for call_id, started_at, station, side, side_level, relay, rtt, loss, fps in sides:
        summary = summaries.setdefault(call_id, _CallSummary(station, started_at))
        summary.level = worse(summary.level, side_level)
        summary.relay = summary.relay or relay
        if side == "kiosk":
            summary.kiosk = (rtt, loss, fps)
    listed = sorted(
        (i for i, c in summaries.items() if level is None or c.level == level),
        key=lambda i: (summaries[i].started_at, i),
        reverse=True,
    )
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "total": _counts(list(summaries.values())),
        "stations": _by_station(summaries.values()),
        "calls": await _listed(session, listed[:REPORT_LIMIT], summaries),
    }


async def _listed(
    session: AsyncSession, call_ids: list[int], summaries: dict[int, _CallSummary]
) -> list[dict[str, Any]]:
    """The calls' details in the order of ``call_ids``: each side's figures, the call's level."""
    # Columns, not tickets: a ticket brings its item (and the item its materials) and station.
    rows = await session.execute(
        select(
            Call.id, Call.started_at, Call.ended_at, Ticket.id, Ticket.number, Ticket.day,
            Ticket.netcheck, Station.name, ServiceItem.name, Staff.display_name, *QUALITY_COLUMNS,
        )
        .join(Ticket, Ticket.id == Call.ticket_id)
        .join(Station, Station.id == Ticket.station_id)
        .join(ServiceItem, ServiceItem.id == Ticket.item_id)
        .join(Staff, Staff.id == Call.staff_id)
        .join(CallQuality, CallQuality.call_id == Call.id)
        .where(Call.id.in_(call_ids))
        .order_by(CallQuality.side)
    )  # fmt: skip
    calls: dict[int, dict[str, Any]] = {}
    for (call_id, started_at, ended_at, ticket_id, number, day, netcheck, station, item,
         staff_name, *figures) in rows:  # fmt: skip
        entry = calls.setdefault(call_id, {
            "call": call_id, "ticket": ticket_id, "number": number, "day": day,
            "station": station, "item": item, "staff": staff_name,
            "started_at": iso(started_at), "ended_at": iso(ended_at),
            "netcheck": (netcheck or {}).get("verdict"), "level": summaries[call_id].level,
            "sides": {},
        })  # fmt: skip
        side = dict(zip(CallQuality.JSON_NAMES, figures, strict=True))
        entry["sides"][side["side"]] = side
    return [calls[i] for i in call_ids]  # in the order given


def _counts(calls: Sequence[_CallSummary]) -> dict[str, int]:
    """How many calls, how many poor or fair (the worse side's level), how many relayed."""
    levels = [c.level for c in calls]
    return {
        "calls": len(calls),
        "poor": levels.count("poor"),
        "fair": levels.count("fair"),
        "relayed": sum(c.relay for c in calls),
    }


def _by_station(calls: Iterable[_CallSummary]) -> list[dict[str, Any]]:
    """Per station (the largest share of poor calls first): the counts, and the median over its
    calls of the kiosk side's medians — the station's own link, which a supervisor can mend."""
    grouped: dict[str, list[_CallSummary]] = {}
    for c in calls:
        grouped.setdefault(c.station, []).append(c)

    def median(station_calls: list[_CallSummary], figure: int) -> float | None:
        values = [v for c in station_calls if c.kiosk and (v := c.kiosk[figure]) is not None]
        return round(statistics.median(values), 4) if values else None

    rows = [
        {"station": station, **_counts(station_calls), "rtt_median_ms": median(station_calls, 0),
         "loss_median": median(station_calls, 1), "fps_median": median(station_calls, 2)}
        for station, station_calls in grouped.items()
    ]  # fmt: skip
    return sorted(rows, key=lambda r: (-r["poor"] / r["calls"], -r["calls"], r["station"]))
