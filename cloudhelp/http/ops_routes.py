"""Operations endpoints (docs/operations.md): ``/healthz``, ``/readyz`` and ``/metrics``.

- ``/healthz``: the process answers (no database touched) — for a liveness check.
- ``/readyz``: the database answers a probe within ``PROBE_TIMEOUT_SECONDS`` and its migrations
  are at this code's head, and (with ``redis_url``) Redis answers a PING and the broker is
  connected; 503 naming the failed check otherwise — for a load balancer.
- ``/metrics``: Prometheus text format from a registry of this app's own (several servers in
  one process never share one). Gauges are gathered when scraped (``LiveCollector``) from the
  hub's sessions, the database, Redis and its broker, and the loop-lag monitor; nothing is
  updated on the hot paths but two plain integer counters on the hub. Readable only from
  ``metrics_networks``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from cloudhelp.core.config import Network, Settings, parse_networks
from cloudhelp.core.logs import log_event
from cloudhelp.domain.live_figures import LiveFigures, live_figures
from cloudhelp.http import forwarded
from cloudhelp.http.errors import ApiError
from cloudhelp.http.state import AppState
from cloudhelp.store import db
from cloudhelp.store.models import utcnow
from signaling.redis_broker import RedisBroker

if TYPE_CHECKING:
    from signaling.hub import Hub

PROBE_TIMEOUT_SECONDS = 2.0
LAG_WINDOW_SECONDS = 60.0  # the loop-lag figures cover the last minute (the monitor keeps one)
LAG_QUANTILES = (("0.5", "p50_ms"), ("0.99", "p99_ms"), ("1", "max_ms"))


@dataclass
class RedisFigures:
    """Redis as one node sees it: the probe (PING on the shared client) and the broker."""

    up: bool
    probe_seconds: float | None
    error: str | None
    broker: RedisBroker | None

    @property
    def ok(self) -> bool:
        return self.up and (self.broker is None or self.broker.healthy)

    def check(self) -> dict[str, Any]:
        """``/readyz``'s entry."""
        check: dict[str, Any] = {"ok": self.ok}
        if self.probe_seconds is not None:
            check["latency_ms"] = round(self.probe_seconds * 1000, 2)
        if self.error is not None:
            check["error"] = self.error
        if self.broker is not None:
            check |= {"broker_connected": self.broker.healthy,
                      "reconnects": self.broker.reconnects, "dropped": self.broker.dropped,
                      "waiting": self.broker.waiting}  # fmt: skip
            if self.up and not self.broker.healthy:
                check["error"] = "the broker has not reconnected yet"
        return check


async def probe_redis(state: AppState) -> RedisFigures | None:
    """Redis's figures, or None when this node runs without Redis."""
    broker = state.callcenter.hub.broker
    redis_broker = broker if isinstance(broker, RedisBroker) else None
    if state.redis is None and redis_broker is None:
        return None
    if state.redis is None:  # a broker given without redis_url (tests): its view only
        return RedisFigures(redis_broker is not None and redis_broker.healthy, None, None,
                            redis_broker)  # fmt: skip
    started = time.perf_counter()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            await state.redis.ping()
    except Exception as exc:  # refused, reset, timed out: the reason, in one line
        return RedisFigures(False, None, f"{type(exc).__name__}: {exc}".strip(), redis_broker)
    return RedisFigures(True, time.perf_counter() - started, None, redis_broker)


@dataclass
class Snapshot:
    """What one scrape found: gathered (awaiting the database) before the registry is read."""

    hub: Hub | None = None
    lag: dict[str, float] = field(default_factory=dict)  # quantile → seconds
    database_up: bool = False
    probe_seconds: float | None = None
    live: LiveFigures | None = None
    redis: RedisFigures | None = None


class LiveCollector(Collector):
    """Yields the metric families of the snapshot set just before each scrape."""

    def __init__(self) -> None:
        self.snapshot = Snapshot()

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        yield from _session_metrics(snap.hub)
        lag = GaugeMetricFamily(
            "cloudhelp_event_loop_lag_seconds",
            "How late a 10 ms timer fired over the last minute (quantile 1 is the maximum).",
            labels=["quantile"],
        )
        for quantile, seconds in snap.lag.items():
            lag.add_metric([quantile], seconds)
        yield lag
        yield GaugeMetricFamily(
            "cloudhelp_database_up",
            "1 when the database answered the probe query in time, else 0.",
            value=1 if snap.database_up else 0,
        )
        if snap.probe_seconds is not None:
            yield GaugeMetricFamily(
                "cloudhelp_database_probe_seconds",
                "How long the probe query (SELECT 1, on a pooled connection) took.",
                value=snap.probe_seconds,
            )
        if snap.live is not None:
            yield from _live_metrics(snap.live)
        if snap.redis is not None:
            yield from _redis_metrics(snap.redis)


def _session_metrics(hub: Hub | None) -> Iterator[Metric]:
    sessions = GaugeMetricFamily(
        "cloudhelp_sessions",
        "Protocol sessions held by this process, by kind, staff role and purpose "
        "(connected or waiting to be resumed).",
        labels=["kind", "role", "purpose"],
    )
    relayed = CounterMetricFamily(
        "cloudhelp_relayed_messages",
        "Offers, answers, ICE candidates and app messages relayed between call members.",
    )
    turn = CounterMetricFamily(
        "cloudhelp_turn_credentials_issued",
        "Short-lived TURN credentials handed out (one per welcome when TURN is configured).",
    )
    if hub is not None:
        counts = Counter(
            (
                s.principal.kind,
                str(s.principal.info.get("role", s.principal.kind)),
                s.principal.purpose or "",
            )
            for s in hub.sessions.values()
        )
        for labels, count in sorted(counts.items()):
            sessions.add_metric(list(labels), count)
        relayed.add_metric([], hub.relayed_messages)
        turn.add_metric([], hub.turn_credentials_issued)
    yield from (sessions, relayed, turn)


def _redis_metrics(redis: RedisFigures) -> Iterator[Metric]:
    """Only with redis_url (or a Redis broker): absent on a single process."""
    yield GaugeMetricFamily(
        "cloudhelp_redis_up", "1 when Redis answered this scrape's PING in time, else 0.",
        value=1 if redis.up else 0,
    )  # fmt: skip
    if redis.probe_seconds is not None:
        yield GaugeMetricFamily(
            "cloudhelp_redis_probe_seconds", "How long that PING took.", value=redis.probe_seconds
        )
    broker = redis.broker
    if broker is None:
        return
    yield GaugeMetricFamily(
        "cloudhelp_redis_broker_connected",
        "1 while the broker reaches Redis (its sessions registered), else 0.",
        value=1 if broker.healthy else 0,
    )
    yield CounterMetricFamily(
        "cloudhelp_redis_reconnects",
        "Times the broker reached Redis again after losing it (and registered its sessions).",
        value=broker.reconnects,
    )
    yield CounterMetricFamily(
        "cloudhelp_redis_dropped_messages",
        "Messages for sessions on other nodes given up: waited too long for Redis or for "
        "their session's node, or pushed out of a full outbox.",
        value=broker.dropped,
    )
    yield CounterMetricFamily(
        "cloudhelp_redis_broadcasts_missed",
        "Notices for every node (board changed) that reached this node only: Redis was away.",
        value=broker.broadcasts_missed,
    )
    yield CounterMetricFamily(
        "cloudhelp_redis_wire_mismatches",
        "Entries from a node of another inter-node format version, dropped unread (nodes of "
        "two versions running at once).",
        value=broker.wire_mismatches,
    )
    yield GaugeMetricFamily(
        "cloudhelp_node_links_open",
        "Links from this node to other nodes open now (relayed call messages go on them).",
        value=broker.links_open,
    )
    yield CounterMetricFamily(
        "cloudhelp_node_link_frames",
        "Relayed messages sent to other nodes on links (not through Redis).",
        value=broker.link_frames,
    )
    yield CounterMetricFamily(
        "cloudhelp_node_link_resent",
        "Messages a closed link's node had not handled, sent again through Redis.",
        value=broker.link_resent,
    )
    yield CounterMetricFamily(
        "cloudhelp_node_links_refused",
        "Links other nodes tried to open here with another key (secret_key differs).",
        value=broker.links_refused,
    )
    yield GaugeMetricFamily(
        "cloudhelp_redis_outbox_messages",
        "Messages for sessions on other nodes waiting here for Redis (or their node).",
        value=broker.waiting,
    )


def _live_metrics(live: LiveFigures) -> Iterator[Metric]:
    length = GaugeMetricFamily(
        "cloudhelp_queue_length",
        "Tickets waiting (or being offered) per department.",
        labels=["department"],
    )
    oldest = GaugeMetricFamily(
        "cloudhelp_queue_oldest_wait_seconds",
        "How long the longest-waiting ticket of each department has waited (0 when none).",
        labels=["department"],
    )
    for queue in live.queues:
        length.add_metric([queue.department], queue.waiting)
        oldest.add_metric([queue.department], queue.oldest_wait_seconds)
    yield length
    yield oldest
    yield GaugeMetricFamily(
        "cloudhelp_calls_in_progress",
        "Tickets connected to a staff member now (the whole district).",
        value=live.calls_in_progress,
    )
    yield GaugeMetricFamily(
        "cloudhelp_files_stored",
        "Files sent in calls whose content is still kept (not yet purged).",
        value=live.files_stored,
    )
    yield GaugeMetricFamily(
        "cloudhelp_files_stored_bytes",
        "The size of those files, as sent (identical contents are kept once on disk).",
        value=live.files_stored_bytes,
    )


@dataclass
class Ops:
    """This app's registry, its live collector, and who may scrape."""

    registry: CollectorRegistry
    collector: LiveCollector
    networks: tuple[Network, ...]


OPS_KEY = web.AppKey("ops", Ops)


def _make_ops(settings: Settings) -> Ops:
    registry = CollectorRegistry(auto_describe=True)
    collector = LiveCollector()
    registry.register(collector)
    ProcessCollector(registry=registry)  # process_cpu_seconds_total, resident memory, fds …
    return Ops(registry, collector, parse_networks(settings.metrics_networks, "metrics_networks"))


async def probe_database(state: AppState) -> tuple[float | None, str | None]:
    """The probe's latency, or None and why it failed."""
    try:
        return await db.probe(state.db.engine, PROBE_TIMEOUT_SECONDS), None
    except TimeoutError:
        return None, f"no answer within {PROBE_TIMEOUT_SECONDS:g} s"
    except Exception as exc:  # the drivers' errors differ: asyncpg, OSError, sqlite3
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return None, f"{type(exc).__name__}: {reason[0] if reason else ''}".strip()


async def healthz(request: web.Request) -> web.Response:
    """Alive: the process answers. Touches no database."""
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    """Ready: the database answers and its migrations are at this code's head."""
    state = AppState.of(request.app)
    latency, problem = await probe_database(state)
    checks: dict[str, dict[str, Any]] = {
        "database": {"ok": latency is not None}
        | ({"latency_ms": round(latency * 1000, 2)} if latency is not None else {"error": problem})
    }
    redis = await probe_redis(state)
    if redis is not None:
        checks["redis"] = redis.check()
    head = sorted(db.head_revisions())
    if latency is None:
        checks["migrations"] = {"ok": False, "head": head, "error": "database unreachable"}
    else:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                current = sorted(await db.current_heads(state.db.engine))
            checks["migrations"] = {"ok": current == head, "current": current, "head": head}
        except Exception as exc:
            checks["migrations"] = {"ok": False, "head": head, "error": type(exc).__name__}
    failed = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "not_ready" if failed else "ready", "failed": failed, "checks": checks}
    if failed:
        log_event("readyz.not_ready", severity=logging.WARNING, failed=failed)
    return web.json_response(body, status=503 if failed else 200)


def _may_scrape(request: web.Request, ops: Ops) -> bool:
    """Whether the client is in ``metrics_networks``. A request relayed by a proxy that is not
    trusted is refused: its real client cannot be known."""
    trusted = request.app[forwarded.TRUSTED_PROXIES_KEY]
    relayed = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
    if relayed and not forwarded.peer_is_trusted(request, trusted):
        return False
    try:
        address = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    return any(address in network for network in ops.networks)


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus exposition (text format 0.0.4)."""
    ops = request.app[OPS_KEY]
    if not _may_scrape(request, ops):
        raise ApiError(
            403, "forbidden", "Metrics are readable only from the networks in metrics_networks."
        )
    state = AppState.of(request.app)
    snapshot = Snapshot(hub=state.callcenter.hub)
    lag = state.loop_lag.summary(LAG_WINDOW_SECONDS)
    if lag.samples:
        snapshot.lag = {q: getattr(lag, attr) / 1000 for q, attr in LAG_QUANTILES}
    snapshot.redis = await probe_redis(state)
    snapshot.probe_seconds, problem = await probe_database(state)
    snapshot.database_up = problem is None
    if snapshot.database_up:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS), state.db.read() as session:
                snapshot.live = await live_figures(session, utcnow())
        except Exception as exc:  # the figures are left out; database_up says why
            snapshot.database_up = False
            log_event("metrics.figures_failed", severity=logging.WARNING, error=repr(exc))
    # No await between setting the snapshot and reading it: scrapes cannot interleave here.
    ops.collector.snapshot = snapshot
    body = generate_latest(ops.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup(app: web.Application, settings: Settings) -> None:
    app[OPS_KEY] = _make_ops(settings)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
