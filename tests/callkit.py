"""Test helpers for the call core: a real server, real kiosks and staff over real sockets."""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner

from cloudhelp.app import create_app
from cloudhelp.core.config import Settings
from cloudhelp.domain import accounts
from cloudhelp.domain.accounts import STAFF_COOKIE
from cloudhelp.http.state import AppState
from cloudhelp.media.peer import SignalingClient
from signaling.broker import Broker
from signaling.hub import Hub


class AppServer(TestServer):
    """aiohttp's test server running the app as ``cloudhelp serve`` does: a request handler
    is not cancelled when its client's connection drops. (TestServer cancels it; then a message
    the hub had counted received, and told the client so in the resumed ``welcome``, could be
    cut short and never handled: a rating sent as the page gave up its socket was lost.)"""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return await super()._make_runner(**{**kwargs, "handler_cancellation": False})


async def until(
    condition: Callable[[], Any], timeout: float = 30.0, what: str = "", every: float = 0.05
) -> Any:
    """Poll ``condition`` (a function, or a coroutine function: a database or Redis read) until
    it returns something true, and return that; fail after ``timeout`` s, saying ``what``
    (or the condition's docstring) was waited for."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what or condition.__doc__ or condition}")
        await asyncio.sleep(every)


DEMO_PASSWORD = "test-password-1"
# For a server whose pages reload mid-call: a grace time a loaded machine's reload fits in (the
# tests' default, 2 s, once ended a console's call during a slow reload).
RELOAD_GRACE_SECONDS = 15.0
_demo_password_hash: list[str] = []  # made once per test process


async def demo_password_hash() -> str:
    """A real argon2 hash of DEMO_PASSWORD, made once per test process: the suite gives a staff
    member this password about 270 times (with argon2's default parameters a hash costs
    ~0.16 s of CPU; the test command's cheap ones, passwords.py, next to nothing)."""
    if not _demo_password_hash:
        _demo_password_hash.append(await accounts.new_password_hash(DEMO_PASSWORD))
    return _demo_password_hash[0]


def turn_server() -> tuple[str, str]:
    """The test coturn's URL and REST secret, which scripts/test.sh starts."""
    url, secret = (
        os.environ.get("CLOUDHELP_TEST_TURN_URL"),
        os.environ.get("CLOUDHELP_TEST_TURN_SECRET"),
    )
    if not url or not secret:
        pytest.fail("CLOUDHELP_TEST_TURN_URL/SECRET are not set: run `bash scripts/test.sh`.")
    return url, secret


class CallServer:
    """One running CloudHelp server, with helpers to sign kiosks and staff in."""

    def __init__(self, server: TestServer, http: ClientSession) -> None:
        self.server = server
        self.http = http
        self.base_url = str(server.make_url("/")).rstrip("/")
        self.clients: list[SignalingClient] = []

    @property
    def state(self) -> AppState:
        return AppState.of(self.server.app)

    async def kiosk_credential(self, code: str, station: str = "DLW-QG") -> str:
        async with self.state.db.write() as session:
            enrol_code = await accounts.enrol_kiosk(session, station, code)
        async with self.http.post("/api/v1/kiosk/enrol", json={"code": enrol_code}) as response:
            assert response.status == 200, await response.text()
            return (await response.json())["credential"]

    async def set_demo_password(self, username: str) -> None:
        """Give staff member ``username`` the password DEMO_PASSWORD."""
        password_hash = await demo_password_hash()
        async with self.state.db.write() as session:
            await accounts.set_password_hash(session, username, password_hash)

    async def staff_token(self, username: str) -> str:
        await self.set_demo_password(username)
        async with ClientSession(
            base_url=self.base_url, cookie_jar=CookieJar(unsafe=True)
        ) as browser:
            body = {"username": username, "password": DEMO_PASSWORD}
            async with browser.post("/api/v1/auth/login", json=body) as response:
                assert response.status == 200, await response.text()
                return response.cookies[STAFF_COOKIE].value

    async def connect(self, auth: dict[str, Any], base_url: str | None = None) -> SignalingClient:
        """A session opened here, or through ``base_url`` (another node, a proxy)."""
        client = SignalingClient(base_url or self.base_url, self.http)
        await client.connect(auth)
        self.clients.append(client)
        return client

    async def kiosk(self, code: str = "QG-01", station: str = "DLW-QG") -> SignalingClient:
        credential = await self.kiosk_credential(code, station)
        return await self.connect({"kind": "kiosk", "credential": credential})

    async def look_up_case(self, credential: str, number: str, last4: str) -> dict[str, Any]:
        """A kiosk's case lookup (number and last four digits of phone or ID) that must find
        the case; its ``grant`` is what ``ticket.take {case}`` shows."""
        headers = {"Authorization": f"Kiosk {credential}"}
        body = {"number": number, "last4": last4}
        async with self.http.post("/api/v1/kiosk/cases/lookup", json=body, headers=headers) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["case"]

    async def correction_kiosk(
        self, number: str, last4: str, code: str = "QG-01", station: str = "DLW-QG"
    ) -> tuple[SignalingClient, dict[str, Any]]:
        """A kiosk signed in after looking the case up, and the frame to take a ticket for it."""
        credential = await self.kiosk_credential(code, station)
        found = await self.look_up_case(credential, number, last4)
        client = await self.connect({"kind": "kiosk", "credential": credential})
        return client, {"type": "ticket.take", "case": number, "grant": found["grant"]}

    async def staff(
        self, username: str, available: bool = True, base_url: str | None = None
    ) -> SignalingClient:
        token = await self.staff_token(username)
        client = await self.connect({"kind": "staff", "token": token}, base_url)
        await client.expect("presence", state="away")
        if available:
            await client.send({"type": "staff.status", "status": "available"})
            await client.expect("presence", state="available")
        return client

    async def close_clients(self) -> None:
        for client in self.clients:
            await client.drop()


@asynccontextmanager
async def running_server(
    database_url: str, broker: Broker | None = None, port: int = 0, **settings: Any
) -> AsyncIterator[CallServer]:
    """A server on ``port`` (a free one by default; a restarted server takes its old one)."""
    # No background warning check unless a test asks for one: tests that need warnings call
    # check_warnings(now) themselves and must not race the server's own loop.
    # The heartbeat as in service (5 s): a pong later than half of it closes a socket, and with
    # 1 s a loaded machine closed pages' sockets mid-test (a console resumed past the 2 s grace
    # and lost its call). Tests that need a silent death noticed sooner set their own.
    options = {
        "grace_seconds": 2.0,
        "heartbeat_seconds": 5.0,
        "warning_check_seconds": 0,
        **settings,
    }
    app = create_app(Settings(database_url=database_url, **options), broker=broker)
    server = AppServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    async with ClientSession(base_url=str(server.make_url("/"))) as http:
        call_server = CallServer(server, http)
        try:
            yield call_server
        finally:
            await call_server.close_clients()
            await server.close()


async def scraped_metrics(server: CallServer) -> dict[str, float]:
    """The server's /metrics samples without labels (name → value)."""
    async with server.http.get("/metrics") as r:
        assert r.status == 200
        text = await r.text()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


@contextmanager
def first_send_held(
    hub: Hub, session_id: str, accepts: Callable[[Any], bool] = lambda message: True
) -> Iterator[tuple[asyncio.Event, asyncio.Event]]:
    """Hold the hub's first send to ``session_id`` (of a message ``accepts`` takes) until
    ``release`` is set; ``held`` is set once it is reached. Yields (held, release); the hub's
    own send is back on exit."""
    held, release = asyncio.Event(), asyncio.Event()
    real_send = hub.send

    async def slow_send(to: str, message: Any) -> bool:
        if to == session_id and not held.is_set() and accepts(message):
            held.set()
            await release.wait()
        return await real_send(to, message)

    hub.send = slow_send  # type: ignore[method-assign]
    try:
        yield held, release
    finally:
        hub.send = real_send  # type: ignore[method-assign]


async def picked_at_once(staff: list[SignalingClient], ticket_id: int) -> list[str]:
    """Every one of ``staff`` picks the ticket at the same moment; what each got, in order:
    "joined", or the error (the losers' ``ticket_taken``). 15 s each: a loaded CI machine had
    neither frame for the loser within 5."""
    await asyncio.gather(*(s.send({"type": "ticket.pick", "ticket": ticket_id}) for s in staff))
    results = []
    for each in staff:
        try:
            await each.expect("joined")
            results.append("joined")
        except Exception as exc:  # the loser gets an error frame
            results.append(str(exc))
    return results
