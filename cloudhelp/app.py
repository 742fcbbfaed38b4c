"""The aiohttp application: wiring only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web
from redis.asyncio import Redis

from cloudhelp.callcenter import CallCenter
from cloudhelp.core import workers
from cloudhelp.core.config import Settings
from cloudhelp.core.throttle import Throttles, local_throttles
from cloudhelp.domain import metrics, retention, workcalendar
from cloudhelp.domain.notice_store import NoticePdfs
from cloudhelp.http import (
    account_routes,
    api,
    appointment_routes,
    audit_routes,
    bodies,
    campaign_routes,
    case_routes,
    console_routes,
    file_routes,
    follow_up_routes,
    forwarded,
    kiosk_routes,
    logistics_routes,
    ops_routes,
    outage,
    pages,
    report_routes,
    review_routes,
    security_headers,
    warning_routes,
)
from cloudhelp.http.errors import json_errors
from cloudhelp.http.state import STATE_KEY, AppState
from cloudhelp.store import db, serverlock
from cloudhelp.store.redis_throttle import RedisThrottles, shared_redis
from signaling.broker import Broker
from signaling.hub import HubSettings
from signaling.ice import IceSettings
from signaling.redis_broker import RedisBroker
from web import STATIC_DIR


def hub_settings(settings: Settings) -> HubSettings:
    return HubSettings(
        grace_seconds=settings.grace_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
        rate_per_second=settings.rate_per_second,
        burst=settings.rate_burst,
        ice=IceSettings(
            stun_urls=settings.stun_urls,
            turn_urls=settings.turn_urls,
            turn_secret=settings.turn_secret,
            turn_ttl_seconds=settings.turn_ttl_seconds,
            transport_policy=settings.ice_transport_policy,
        ),
    )


async def _open_database(settings: Settings, migrate: bool) -> tuple[db.AsyncEngine, db.Database]:
    """The database, reachable, migrated (unless told not to), with the working-day calendar
    loaded (a newer chinesecalendar may know another year)."""
    engine = db.create_engine(settings.effective_database_url)
    await db.check_connection(engine)
    if migrate:
        await db.upgrade(engine)
    database = db.Database(engine)
    async with database.write() as s:
        await workcalendar.sync_from_package(s, follow_up_days=settings.follow_up_working_days)
        await workcalendar.refresh(s)
    return engine, database


def _lifecycle(
    settings: Settings, migrate: bool, broker: Broker | None, shared: Redis | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The app's cleanup context: connects to Redis (``redis_url``: a broker of its own unless
    one is given), opens the database and starts the call centre and the file purge; stops
    them in reverse order, and closes ``shared`` (the throttles' Redis client) last."""

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        owned: RedisBroker | None = None
        hub_broker = broker
        if hub_broker is None and settings.redis_url is not None:
            # A call's session card outlives a dead node by the grace time and the topics' TTL.
            card_ttl = settings.grace_seconds + 15.0
            owned = RedisBroker(
                settings.redis_url,
                settings.node_id,
                prefix="cloudhelp",
                card_ttl=card_ttl,
                link_key=settings.node_link_key if settings.node_links else None,
                link_host=settings.node_link_host,
                link_port=settings.node_link_port,
            )
            await owned.start()
            hub_broker = owned
        try:
            # Alone (no broker shared with other processes) it must be the database's only
            # server; nodes sharing a broker may be many (cloudhelp/store/serverlock.py).
            clustered = hub_broker is not None
            async with (
                serverlock.hold(settings.effective_database_url, clustered),
                _serving(app, settings, migrate, hub_broker, shared),
            ):
                yield
        finally:
            if owned is not None:
                await owned.close()
            if shared is not None:
                await shared.aclose()

    return lifecycle


@asynccontextmanager
async def _serving(
    app: web.Application,
    settings: Settings,
    migrate: bool,
    broker: Broker | None,
    shared: Redis | None,
) -> AsyncIterator[None]:
    """The database, the call centre and the file purge, for the app's life."""
    engine, database = await _open_database(settings, migrate)
    secret_key = settings.effective_secret_key.encode()
    callcenter = CallCenter(
        database,
        hub_settings(settings),
        broker,
        settings.prefer_reviewer_seconds,
        settings.follow_up_working_days,
        settings.warning_check_seconds,
        metrics.Rules.of(settings),
        secret_key=secret_key,
        netcheck_max_peers=settings.netcheck_max_peers,
        netcheck_seconds=settings.netcheck_seconds,
    )
    await callcenter.start()
    state = app[STATE_KEY] = AppState(
        settings=settings,
        db=database,
        callcenter=callcenter,
        notice_pdfs=NoticePdfs(database, settings.data_dir),
        secret_key=secret_key,
        redis=shared,
    )
    state.loop_lag.start()
    purging = (
        asyncio.create_task(
            retention.run_periodically(
                database,
                settings.data_dir,
                settings.file_retention_days,
                settings.file_purge_check_seconds,
            )
        )
        if settings.file_purge_check_seconds > 0
        else None
    )
    yield
    if purging is not None:
        purging.cancel()
        await asyncio.gather(purging, return_exceptions=True)
    await state.loop_lag.stop()
    await callcenter.stop()  # usually already done by on_shutdown
    await asyncio.to_thread(workers.shutdown)  # the export and PDF processes, if started
    await engine.dispose()


async def drain(app: web.Application, seconds: float) -> None:
    """Let the clients of this node resume on the others before it stops (SIGTERM with
    ``redis_url``): see ``signaling.hub.Hub.drain``."""
    await AppState.of(app).callcenter.hub.drain(seconds)


async def _close_sockets(app: web.Application) -> None:
    # Before aiohttp waits for handlers: WebSocket handlers only return once closed.
    await AppState.of(app).callcenter.stop()


async def _websocket(request: web.Request) -> web.StreamResponse:
    return await AppState.of(request.app).callcenter.hub.handle(request)


def _add_routes(app: web.Application, settings: Settings, throttles: Throttles) -> None:
    api.setup(app)
    ops_routes.setup(app, settings)
    account_routes.setup(app, settings, throttles)
    file_routes.setup(app)
    kiosk_routes.setup(app, settings, throttles)
    console_routes.setup(app)
    follow_up_routes.setup(app)
    review_routes.setup(app)
    case_routes.setup(app)
    report_routes.setup(app)
    warning_routes.setup(app)
    audit_routes.setup(app)
    logistics_routes.setup(app, throttles)
    appointment_routes.setup(app, settings, throttles)
    campaign_routes.setup(app)
    pages.setup(app)
    app.router.add_get("/ws", _websocket)
    app.router.add_static("/static", STATIC_DIR, append_version=True)


def create_app(
    settings: Settings, *, migrate: bool = True, broker: Broker | None = None
) -> web.Application:
    """The web application; opens the database (and applies migrations) on startup. With
    ``redis_url`` the throttles are shared by every node through Redis; without, each is in
    this process's memory."""
    app = web.Application(
        middlewares=[
            forwarded.apply_forwarded,
            json_errors,
            bodies.refuse_nul_in_address,
            outage.database_outage,
            forwarded.remember_address,
        ],
        client_max_size=1024**2,
    )
    forwarded.setup(app, settings.trusted_proxies)
    security_headers.setup(app, settings.allowed_origins)
    shared = shared_redis(settings.redis_url, settings.node_id) if settings.redis_url else None
    throttles: Throttles = RedisThrottles(shared) if shared is not None else local_throttles
    app.cleanup_ctx.append(_lifecycle(settings, migrate, broker, shared))
    app.on_shutdown.append(_close_sockets)
    _add_routes(app, settings, throttles)
    return app
