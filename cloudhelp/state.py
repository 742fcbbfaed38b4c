"""The application's shared state, stored on the aiohttp app."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cloudhelp.config import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    dumps: Callable[[object], str] = field(
        default=functools.partial(json.dumps, ensure_ascii=False)
    )

    @staticmethod
    def of(app: web.Application) -> AppState:
        return app[STATE_KEY]


STATE_KEY = web.AppKey("cloudhelp_state", AppState)
