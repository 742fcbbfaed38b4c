"""The application's shared state, stored on the aiohttp app."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from redis.asyncio import Redis

from cloudhelp.core.config import Settings
from cloudhelp.core.gcpolicy import FullPasses
from cloudhelp.core.looplag import LoopLagMonitor
from cloudhelp.store.db import Database

if TYPE_CHECKING:
    from cloudhelp.callcenter import CallCenter
    from cloudhelp.domain.notice_store import NoticePdfs


@dataclass
class AppState:
    settings: Settings
    db: Database
    callcenter: CallCenter
    notice_pdfs: NoticePdfs
    secret_key: bytes = b""
    loop_lag: LoopLagMonitor = field(default_factory=LoopLagMonitor)
    # Set by ``cloudhelp serve``, which takes the collector's full passes over (core/gcpolicy).
    full_passes: FullPasses | None = None
    # With redis_url: the client the throttles and the readiness probe use (not the broker's).
    redis: Redis | None = None
    dumps: Callable[[object], str] = field(
        default=functools.partial(json.dumps, ensure_ascii=False)
    )

    @staticmethod
    def of(app: web.Application) -> AppState:
        return app[STATE_KEY]


STATE_KEY = web.AppKey("cloudhelp_state", AppState)
