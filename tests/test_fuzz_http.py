"""Property-based fuzzing of the HTTP API's inputs against a real server (issue 11, hostile
input): JSON bodies, path segments and query parameters, sent as nobody, a kiosk, a staff
member and a supervisor. Whatever is sent: no 5xx, no traceback, errors in the documented
``{"error": {"code", "message"}}`` form, and the server still answers. On SQLite, then on
PostgreSQL (``module_database_url``). The same routes as described by the OpenAPI document are
fuzzed by schemathesis in tests/test_openapi.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import ClientSession, CookieJar
from hypothesis import given
from hypothesis import strategies as st

from cloudhelp.domain.accounts import STAFF_COOKIE
from tests.callkit import CallServer, running_server
from tests.conftest import _prepare_demo_database
from tests.test_fuzz_protocol import FUZZ, HOSTILE_INTS, JSON_VALUES, PLAUSIBLE, SPLICED, Background

# (method, path template) of every route that reads a body, a path segment or a query.
ROUTES = [
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/kiosk/enrol"),
    ("POST", "/api/v1/admin/kiosks"),
    ("POST", "/api/v1/admin/kiosks/{s}/revoke"),
    ("POST", "/api/v1/cases"),
    ("GET", "/api/v1/cases"),
    ("GET", "/api/v1/cases/{s}"),
    ("POST", "/api/v1/cases/{s}/transitions"),
    ("GET", "/api/v1/cases/{s}/checklist"),
    ("PUT", "/api/v1/cases/{s}/checklist"),
    ("POST", "/api/v1/cases/{s}/verdict"),
    ("POST", "/api/v1/kiosk/cases/lookup"),
    ("GET", "/api/v1/follow-ups"),
    ("POST", "/api/v1/follow-ups/{n}/close"),
    ("GET", "/api/v1/warnings"),
    ("POST", "/api/v1/warnings/{s}/ack"),
    ("GET", "/api/v1/warning-thresholds"),
    ("PUT", "/api/v1/warning-thresholds"),
    ("GET", "/api/v1/reports"),
    ("GET", "/api/v1/items"),
    ("GET", "/api/v1/items/{s}"),
    ("GET", "/api/v1/tickets/{s}/files"),
    ("GET", "/api/v1/tickets/{s}/files/{n}"),
    ("GET", "/notices/{s}/{n}"),
    ("GET", "/cases/{s}"),
]
QUERY_KEYS = (
    "from to ticket status item number phone by table format state limit q reveal t".split()
)
BODY_KEYS = (
    "username password code station name item ticket applicant to reason materials verdict note "
    "number phone kind value department"
).split()
SEGMENTS = st.one_of(
    HOSTILE_INTS.map(str),
    PLAUSIBLE,
    st.text(alphabet=st.characters(blacklist_characters="/?#%"), min_size=1, max_size=30),
)
QUERY_VALUES = st.one_of(
    SEGMENTS,
    st.sampled_from(["0001-01-01", "9999-12-31", "2026-02-30", "2026-11-27", "1", "-1", "csv"]),
)
BODIES = st.one_of(
    JSON_VALUES.map(json.dumps),
    st.dictionaries(
        st.sampled_from(BODY_KEYS),
        JSON_VALUES,
        max_size=5,
    ).map(json.dumps),
    st.integers(1, 5000).map(lambda n: "[" * n + "]" * n),
    SPLICED.map(lambda v: f'{{"ticket": {v}, "value": {v}, "code": {v}}}'),
    st.binary(max_size=100),
)


@dataclass
class Site:
    background: Background
    server: CallServer
    callers: dict[str, ClientSession]


@pytest.fixture(scope="module")
def site(module_database_url: str) -> Iterator[Site]:
    """A server over the demo catalog and network, on SQLite and then on PostgreSQL."""
    background = Background()
    stack = AsyncExitStack()
    url = module_database_url

    async def start() -> Site:
        await _prepare_demo_database(url)
        server = await stack.enter_async_context(running_server(url))
        callers: dict[str, ClientSession] = {}
        for role, username in (("staff", "wangli"), ("supervisor", "sunhua")):
            jar = CookieJar(unsafe=True)
            jar.update_cookies({STAFF_COOKIE: await server.staff_token(username)})
            callers[role] = await stack.enter_async_context(
                ClientSession(base_url=server.base_url, cookie_jar=jar)
            )
        credential = await server.kiosk_credential("QG-05")
        callers["kiosk"] = await stack.enter_async_context(
            ClientSession(
                base_url=server.base_url, headers={"Authorization": f"Kiosk {credential}"}
            )
        )
        callers["nobody"] = await stack.enter_async_context(ClientSession(base_url=server.base_url))
        return Site(background, server, callers)

    try:
        yield background.run(start())
    finally:
        background.run(stack.aclose())
        background.stop()


async def _request(
    client: ClientSession, method: str, path: str, query: dict[str, str], body: str | bytes
) -> tuple[int, str, str]:
    kwargs: dict[str, Any] = {"params": query}
    if method != "GET":
        kwargs["data"] = body
        kwargs["headers"] = {"Content-Type": "application/json"}
    async with client.request(method, path, **kwargs) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    role=st.sampled_from(["nobody", "kiosk", "staff", "supervisor"]),
    segments=st.lists(SEGMENTS, min_size=2, max_size=2),
    query=st.dictionaries(st.sampled_from(QUERY_KEYS), QUERY_VALUES, max_size=4),
    body=BODIES,
)
def test_every_route_with_hostile_input(
    site: Site,
    route: tuple[str, str],
    role: str,
    segments: list[str],
    query: dict[str, str],
    body: str | bytes,
) -> None:
    method, template = route
    # A lone surrogate has no UTF-8: it goes as the bytes a careless client would send (what
    # "surrogatepass" makes of it), invalid UTF-8 in the address.
    first, second = (quote(s, safe="", errors="surrogatepass") for s in segments)
    path = template.replace("{s}", first).replace("{n}", second)
    status, content_type, text = site.background.run(
        _request(site.callers[role], method, path, query, body)
    )
    assert status < 500, (method, path, query, str(body)[:200], status, text[:300])
    assert "Traceback" not in text
    if status >= 400 and path.startswith("/api/"):
        assert content_type.startswith("application/json"), (path, status, text[:200])
        error = json.loads(text)["error"]
        assert error["code"] and error["message"]


def test_the_site_still_answers_after_the_fuzzing(site: Site) -> None:
    async def health() -> int:
        async with site.callers["nobody"].get("/api/v1/health") as response:
            return response.status

    assert site.background.run(health()) == 200
