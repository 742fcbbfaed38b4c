"""The aiohttp application: wiring only."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from cloudhelp import api, db, pages
from cloudhelp.config import Settings
from cloudhelp.errors import json_errors
from cloudhelp.state import STATE_KEY, AppState
from web import STATIC_DIR


def create_app(settings: Settings, *, migrate: bool = True) -> web.Application:
    """The web application; opens the database (and applies migrations) on startup."""
    app = web.Application(middlewares=[json_errors], client_max_size=1024**2)

    async def database(app: web.Application) -> AsyncIterator[None]:
        engine = db.create_engine(settings.effective_database_url)
        await db.check_connection(engine)
        if migrate:
            await db.upgrade(engine)
        app[STATE_KEY] = AppState(
            settings=settings, engine=engine, sessions=db.session_factory(engine)
        )
        yield
        await engine.dispose()

    app.cleanup_ctx.append(database)
    api.setup(app)
    pages.setup(app)
    app.router.add_static("/static", STATIC_DIR, append_version=True)
    return app
