"""Shared fixtures: a fresh database per test on SQLite and on a real PostgreSQL server.

Worker-safe under pytest-xdist (scripts/test.sh runs the whole suite on several workers): every
PostgreSQL database has a random name, every file lives under pytest's per-worker temp dirs,
every server listens on a free port; tests that share a module-scoped fixture run on one worker.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import inspect
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from aiohttp import ClientSession, CookieJar
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cloudhelp.app import create_app
from cloudhelp.core.config import Settings
from cloudhelp.devtools import demo
from cloudhelp.store import db
from tests import browserkit, cpukit, helpers
from tests.callkit import AppServer

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Tests in modules that use these helpers drive Chromium, the demo server or the command line:
# the slowest of the suite, handed out to workers first so that none is left running alone.
_SLOW_HELPERS = ("tests.browserkit", "tests.journeykit", "tests.helpers", "playwright.")
# What a test calls to get a browser: one that does runs in the worker's session event loop, where
# the worker's browser stays open from one test to the next (browserkit.browser_with).
_BROWSER_OPENERS = {
    ("tests.browserkit", "chromium"),
    ("tests.browserkit", "browser_with"),
    ("tests.journeykit", "browser"),
}


def _shares_module_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        definition.scope in ("module", "package", "class")
        for definitions in info.name2fixturedefs.values()
        for definition in definitions
    )


def _uses_slow_helpers(item: pytest.Item) -> bool:
    module = getattr(item, "module", None)
    if module is None:
        return False
    names = (str(getattr(value, "__module__", "")) for value in vars(module).values())
    return any(name.startswith(_SLOW_HELPERS) for name in names)


def _opens_browser(item: pytest.Item) -> bool:
    """Whether an async test's own code calls a browser opener, imported by its module or by
    the test itself."""
    function = getattr(item, "obj", None)
    if not inspect.iscoroutinefunction(function):
        return False
    names = set(function.__code__.co_names)
    for name in names:
        value = function.__globals__.get(name)
        key = (getattr(value, "__module__", None), getattr(value, "__qualname__", None))
        if key in _BROWSER_OPENERS:
            return True
    return any(module in names and name in names for module, name in _BROWSER_OPENERS)


def pytest_configure(config: pytest.Config) -> None:
    """Playwright's ``expect`` waits up to 30 s instead of 5 s: with three workers, Chromium and
    servers sharing two cores, a page can take longer to get there (15 s ran out on a slow
    machine). What it must reach is the same; only a failing check waits the whole time."""
    from playwright.async_api import expect

    expect.set_options(timeout=30_000)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The test process runs servers in its own event loop. Like ``serve`` (gcpolicy.tune_gc),
    it freezes what start-up loaded — here every module collection imported — so that a full
    collector pass walks only what the tests made: a full pass over the imported modules held
    an in-process server for 230 ms on a quiet machine, seconds on a busy one."""
    gc.collect()
    gc.freeze()


# At most this many tests drive Chromium at once across the workers of a run: a page test wants
# about 1.4 cores (Chromium, its server, the test), so four of them on two cores starved each
# other's pages for tens of seconds (a click not done in 30 s, a fetch not answered in 15 s).
# The workers without a slot wait before their test starts; the others' tests go on.
BROWSER_SLOTS = int(os.environ.get("CLOUDHELP_BROWSER_SLOTS") or max(1, os.cpu_count() or 1))


@contextmanager
def _browser_slot() -> Iterator[None]:
    """One of the run's BROWSER_SLOTS, held while the body runs (a file lock each, in a folder
    named by the xdist run; released if the worker dies)."""
    folder = (
        Path(tempfile.gettempdir())
        / f"cloudhelp-browser-slots-{os.environ['PYTEST_XDIST_TESTRUNUID']}"
    )
    folder.mkdir(exist_ok=True)
    while True:
        for n in range(BROWSER_SLOTS):
            slot = (folder / str(n)).open("a")
            try:
                fcntl.flock(slot, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                slot.close()
                continue
            try:
                yield
            finally:
                slot.close()  # closing the file releases its lock
            return
        time.sleep(0.1)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # before pytest-timeout starts its clock
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """Under pytest-xdist, a test that opens a browser runs while it holds a browser slot. With
    CLOUDHELP_TEST_CPU_LOG set, the CPU its process tree used is logged (tests/cpukit.py; the
    wait for a slot not counted)."""
    slot = "PYTEST_XDIST_TESTRUNUID" in os.environ and _opens_browser(item)
    with _browser_slot() if slot else nullcontext():
        if cpukit.LOG_VARIABLE not in os.environ:
            yield
            return
        meter, wall = cpukit.TreeMeter(), time.monotonic()
        meter.start()
        yield
        cpukit.record(item.nodeid, meter.stop(), time.monotonic() - wall)


def _rename(item: pytest.Item, nodeid: str) -> None:
    item._nodeid = nodeid
    if hasattr(item, "_id"):  # pytest >= 9
        from _pytest.nodes import coerce_node_id

        item._id = coerce_node_id(nodeid)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that open a browser run in the session event loop (a Chromium launch per worker and
    set of flags instead of one per test: each cost up to a second of CPU). Under pytest-xdist:
    one worker for the tests of a module that share a module-scoped fixture or are marked
    ``one_worker`` (``--dist loadgroup``), handed out first, and the page tests spread out."""
    for item in items:
        if _opens_browser(item):
            item.add_marker(pytest.mark.asyncio(loop_scope="session"), append=False)
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # the workers collect; the controller not
        return
    # xdist hands tests out by node id: items sharing one (schemathesis gives each operation of
    # test_openapi's nobody test the same id) would run once only. Number them.
    # A module whose tests share a module-scoped fixture runs whole, in its order, on one worker:
    # its node ids get xdist's "@group" suffix here (pytest 9 derives nodeid from Node._id, so
    # xdist's own suffixing of _nodeid no longer takes).
    counts = Counter(item.nodeid for item in items)
    numbered: Counter[str] = Counter()
    shared = {
        item.nodeid.split("::", 1)[0]
        for item in items
        if _shares_module_fixture(item) or item.get_closest_marker("one_worker")
    }
    for item in items:
        nodeid = item.nodeid
        module = nodeid.split("::", 1)[0]
        if counts[nodeid] > 1:
            numbered[nodeid] += 1
            nodeid = f"{nodeid}[{numbered[nodeid]}]"
        if module in shared:
            item.add_marker(pytest.mark.xdist_group(module))
            nodeid = f"{nodeid}@{module}"
        if nodeid != item.nodeid:
            _rename(item, nodeid)
    items[:] = _spread_browser_tests(items)


def _spread_browser_tests(items: list[pytest.Item]) -> list[pytest.Item]:
    """The order xdist hands tests out in: the grouped modules first (the longest units), then
    the page tests spread evenly among the others (those with slow helpers first), none in the
    last tenth. Only BROWSER_SLOTS page tests run at once, and a worker that takes one while
    they are busy waits: bunched together (the files' order) they left a worker waiting for a
    minute at a time (2.4 tests running at once of 3 for three minutes of a run)."""
    grouped: list[pytest.Item] = []
    pages: list[pytest.Item] = []
    others: list[pytest.Item] = []
    for item in items:
        if item.get_closest_marker("xdist_group"):
            grouped.append(item)
        elif _opens_browser(item):
            pages.append(item)
        else:
            others.append(item)
    others.sort(key=lambda item: not _uses_slow_helpers(item))  # a short tail
    placed = [(0.9 * (n + 0.5) / len(pages), item) for n, item in enumerate(pages)]
    placed += [((n + 0.5) / len(others), item) for n, item in enumerate(others)]
    return grouped + [item for _position, item in sorted(placed, key=lambda pair: pair[0])]


@pytest.fixture(scope="session", autouse=True)
def _run_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    """What the workers of a run make once and share (helpers.made_once_per_run) lives in the
    run's temporary folder: a worker's own is a folder in it."""
    base = tmp_path_factory.getbasetemp()
    helpers.RUN_FOLDER = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest_asyncio.fixture(scope="session", loop_scope="session", autouse=True)
async def _worker_browsers() -> AsyncIterator[None]:
    """The browsers of the tests run in the session loop: launched on first use, closed at the
    end of the session (browserkit.worker_browsers)."""
    async with browserkit.worker_browsers():
        yield


def _from_playwright(task: asyncio.Task[object]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and f"{os.sep}playwright{os.sep}" in code.co_filename


@pytest.fixture(autouse=True)
def _session_loop_tidied(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test run in the session loop leaves no task of its own behind, as a test in a loop of
    its own does when that loop closes (a timed-out test's own task among them): what it
    started is cancelled and awaited after it. Playwright's tasks stay (its driver serves the
    next test)."""
    marker = request.node.get_closest_marker("asyncio")
    loop = browserkit.session_loop()
    if loop is None or marker is None or marker.kwargs.get("loop_scope") != "session":
        yield
        return
    before = asyncio.all_tasks(loop)
    yield
    left = [task for task in asyncio.all_tasks(loop) - before if not _from_playwright(task)]
    for task in left:
        task.cancel()
    if left:
        loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))


def pg_admin_url() -> str:
    url = os.environ.get("CLOUDHELP_TEST_PG_URL")
    if not url:
        pytest.fail(
            "CLOUDHELP_TEST_PG_URL is not set: run the suite with `bash scripts/test.sh`, "
            "which starts a throwaway PostgreSQL server."
        )
    return url


async def _create_pg_database() -> tuple[str, str]:
    admin = pg_admin_url()
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return str(make_url(admin).set(database=name).render_as_string(hide_password=False)), name


async def _drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(pg_admin_url())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file, or a new database on the test PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cloudhelp.db'}"
        return
    url, name = await _create_pg_database()
    yield url
    await _drop_pg_database(name)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database shared by a module's tests (a server they all talk to), on SQLite and
    on PostgreSQL: pytest runs the module's tests on one, then on the other."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('module-db') / 'cloudhelp.db'}"
        return
    url, name = asyncio.run(_create_pg_database())
    yield url
    asyncio.run(_drop_pg_database(name))


# Migrating a database from nothing (every migration, then the sample catalog and network) was
# most of a test's set-up. Each worker migrates one database per kind once — empty, and with the
# samples — and copies it for every test that asks: SQLite through its backup API, PostgreSQL by
# CREATE DATABASE … TEMPLATE. The migration tests (test_storage, test_migrations, test_cli's
# `db upgrade`) still migrate from nothing.
_templates: dict[tuple[str, bool], str] = {}


async def _build_template(backend: str, samples: bool) -> str:
    """A migrated database (with the samples if asked): its SQLite path or PostgreSQL name."""
    if backend == "sqlite":
        path = Path(tempfile.mkdtemp(prefix="cloudhelp-template-")) / "template.db"
        url, name = f"sqlite:///{path}", str(path)
    else:
        url, name = await _create_pg_database()
    eng = db.create_engine(url)
    await db.upgrade(eng)
    if samples:
        await load_sample_data(db.session_factory(eng))
    await eng.dispose()
    return name


async def _copy_of_template(url: str, samples: bool) -> None:
    """Make the empty database at ``url`` a copy of this worker's migrated template."""
    parsed = make_url(url)
    backend = "sqlite" if parsed.get_backend_name() == "sqlite" else "postgresql"
    key = (backend, samples)
    if key not in _templates:
        _templates[key] = await _build_template(backend, samples)
    template = _templates[key]
    if backend == "sqlite":
        source, target = sqlite3.connect(template), sqlite3.connect(str(parsed.database))
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        return
    conn = await asyncpg.connect(pg_admin_url())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{parsed.database}" TEMPLATE "{template}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session", autouse=True)
def _drop_templates() -> Iterator[None]:
    yield
    for (backend, _samples), name in _templates.items():
        if backend == "postgresql":
            asyncio.run(_drop_pg_database(name))
        else:  # the template's own folder (tempfile.mkdtemp in _build_template)
            shutil.rmtree(Path(name).parent, ignore_errors=True)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a migrated, empty database."""
    await _copy_of_template(database_url, samples=False)
    eng = db.create_engine(database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return db.session_factory(engine)


async def load_sample_data(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await demo.load_samples(session)


@pytest.fixture
async def demo_engine(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> AsyncEngine:
    """A migrated database holding the sample catalog and network."""
    await load_sample_data(sessions)
    return engine


@pytest.fixture
async def http(demo_engine: AsyncEngine, database_url: str) -> AsyncIterator[ClientSession]:
    """An HTTP client bound to a real CloudHelp server on a loopback port, over demo data."""
    app = create_app(Settings(database_url=database_url, warning_check_seconds=0))
    server = AppServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    jar = CookieJar(unsafe=True)  # accept cookies from 127.0.0.1, as a browser does
    async with ClientSession(base_url=str(server.make_url("/")), cookie_jar=jar) as client:
        yield client
    await server.close()


async def _prepare_demo_database(url: str) -> None:
    """The empty database at ``url`` migrated, with the sample catalog and network."""
    await _copy_of_template(url, samples=True)


@pytest.fixture
async def demo_url(database_url: str) -> str:
    """A database URL (SQLite and PostgreSQL) holding the sample catalog and network."""
    await _prepare_demo_database(database_url)
    return database_url


@pytest.fixture
async def sqlite_demo_url(tmp_path: Path) -> str:
    """A SQLite database URL holding the sample catalog and network."""
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    await _prepare_demo_database(url)
    return url


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice leaves 127.0.0.1 out of its host candidates; tests talk over loopback only."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
