"""The daily rollups table (``daily_stats``) and its columns; cloudhelp/domain/metrics.py fills
and reads it (docs/metrics.md)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, Float, Integer, String, Table, UniqueConstraint

from cloudhelp.store.base import Base, UTCDateTime

# Upper edges (seconds) of the wait and handling histograms kept per day; a last bucket holds
# the rest. Percentiles are read from these (docs/metrics.md).
HISTOGRAM_EDGES = (10, 20, 30, 45, 60, 90, 120, 150, 180, 240, 300, 360, 420, 480, 600, 720,
                   900, 1200, 1500, 1800, 2400, 3000, 3600, 5400, 7200)  # fmt: skip
STAT_COUNTERS = (
    "tickets", "answered", "abandoned", "short_abandons", "within_service_level",
    "wait_n", "handling_n", "ratings", "bad_ratings", "cases_opened", "cases_concluded",
    "cases_passed", "correction_rounds", "first_pass",
)  # fmt: skip
STAT_SUMS = ("wait_sum", "handling_sum")
STAT_MAXIMA = ("wait_max", "handling_max")
STAT_HISTOGRAMS = tuple(
    f"{metric}_h{i}" for metric in ("wait", "handling") for i in range(len(HISTOGRAM_EDGES) + 1)
)

# Daily rollups: one row per local day and grouping key (dimension "all" has key ""; "hour"
# has the hour of arrival). Reports sum these rows instead of reading every ticket.
daily_stats = Table(
    "daily_stats",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("day", Date, nullable=False),
    Column("week", Date, nullable=False),
    Column("month", Date, nullable=False),
    Column("dimension", String(12), nullable=False),
    Column("key", String(64), nullable=False),
    Column("final", Boolean, nullable=False),
    Column("computed_at", UTCDateTime, nullable=False),
    *(Column(name, Integer, nullable=False) for name in STAT_COUNTERS + STAT_HISTOGRAMS),
    *(Column(name, Float, nullable=False) for name in STAT_SUMS + STAT_MAXIMA),
    UniqueConstraint("dimension", "day", "key", name="uq_daily_stats_dimension_day_key"),
)
