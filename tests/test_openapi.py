"""The OpenAPI document (``GET /api/v1/openapi.json``) and schemathesis against it (issue 11).

- The document names every ``/api/v1`` route of the router and no other; its request bodies are
  the pydantic models the routes validate with.
- Schemathesis generates requests for every operation from the document the server serves
  (valid and invalid parameters and bodies, and the coverage phase's boundary values) and sends
  them to ``cloudhelp serve`` over the demo data, as nobody, a kiosk, a staff member of another
  department (王丽, 市场监管) and a supervisor. Path parameters are often real case numbers,
  ticket ids, follow-up ids and kiosk codes, so that refusals are tried on real rows. Every
  answer: no 5xx, no traceback, errors in the documented ``{"error": {"code", "message"}}``
  form, status and body as documented; an operation that needs credentials refuses the same
  request without them or with made-up ones. After every request the database is compared with the
  state before it: nobody, the kiosk and the other department's staff member changed nothing
  they may not (a failed sign-in's audit row, a kiosk's files of its own tickets and the staff
  member's own department's cases are theirs to write). Afterwards the server still answers,
  logged no unhandled error, and its memory grew by a bounded amount.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from aiohttp import ClientSession
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.meta import TestPhase
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.transport.serialization import serialize_binary

from cloudhelp.app import create_app
from cloudhelp.core.config import Settings
from cloudhelp.domain.accounts import STAFF_COOKIE
from cloudhelp.http import openapi
from cloudhelp.store.models import Base
from tests.journeykit import DEMO_PASSWORD, DemoServer, demo_server

ROLES = ("nobody", "kiosk", "other_department", "supervisor")  # the order each request is sent in
OTHER_DEPARTMENT = ("wangli", "SCJG")  # 王丽 serves 市场监管 only
SUPERVISOR = "sunhua"
# Audit rows that record a refused attempt: anyone may cause them.
ATTEMPTS = frozenset({"auth.sign_in_failed"})
# Tables no HTTP route writes and that are large: left out of the per-request comparison.
STATIC = frozenset({"calendar_days", "calendar_years", "materials", "service_items"})
# Tables with rows some caller may write (see _theirs).
MAYBE_THEIRS = frozenset(
    {"audit_events", "tickets", "ticket_files", "ticket_events", "cases", "case_events",
     "material_checks", "correction_notices", "timeout_warnings", "case_counters"}
)  # fmt: skip
# Settings of the fuzzed server: no background writers (warning check, file purge), so that
# every change in the database comes from a request.
QUIET = {"CLOUDHELP_WARNING_CHECK_SECONDS": "0", "CLOUDHELP_FILE_PURGE_CHECK_SECONDS": "0"}
MAX_RSS_GROWTH_KIB = 64 * 1024  # a run grows it by about 25 MiB (first use of openpyxl …)
ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
UPLOAD = "/api/v1/tickets/{ticket}/files"
AUDIENCE = {(op.method, op.path): op for op in openapi.OPERATIONS}


# ------------------------------------------------------------------------- the document itself


def _api_routes(app: Any) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/v1/")
        and route.method != "HEAD"  # aiohttp adds HEAD beside every GET
    }


def test_every_api_route_is_in_the_document_and_every_documented_route_exists(
    tmp_path: Path,
) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", data_dir=tmp_path))
    documented = {
        (method.upper(), path)
        for path, methods in openapi.document()["paths"].items()
        for method in methods
    }
    routes = _api_routes(app)
    assert routes - documented == set(), "routes missing from cloudhelp/http/openapi.py OPERATIONS"
    assert documented - routes == set(), "documented operations the router does not have"


def test_request_bodies_are_the_route_models() -> None:
    """Each body schema (and the schemas it refers to) is what pydantic makes of the model the
    route validates with, plus the values a string field takes (``FIELD_VALUES``)."""
    document = openapi.document()
    served = document["components"]["schemas"]
    for op in openapi.OPERATIONS:
        if op.body is None:
            continue
        entry = document["paths"][op.path][op.method.lower()]
        ref = entry["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{op.body.__name__}"
        generated = op.body.model_json_schema(ref_template=openapi.REF)
        expected = {op.body.__name__: generated, **generated.pop("$defs", {})}
        for (model, name), values in openapi.FIELD_VALUES.items():
            if model in expected:
                expected[model]["properties"][name]["enum"] = list(values)
        for model, schema in expected.items():
            assert served[model] == schema, model


async def test_the_document_is_served_and_loads_as_openapi_3_1(http: ClientSession) -> None:
    async with http.get("/api/v1/openapi.json") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        document = await response.json()
    assert document["openapi"] == "3.1.0"
    assert document == json.loads(json.dumps(openapi.document()))
    schema = schemathesis.openapi.from_dict(document)
    schema.validate()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(openapi.OPERATIONS)
    schemes = document["components"]["securitySchemes"]
    assert schemes["session"] == {**schemes["session"], "in": "cookie", "name": STAFF_COOKIE}
    assert schemes["kiosk"]["scheme"] == "Kiosk"
    error = document["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["error"]


# ------------------------------------------------------------------------- schemathesis


@dataclass
class Caller:
    """Who sends the requests, and which rows of the database are theirs to change."""

    role: str
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    kiosk_id: int | None = None
    staff_id: int | None = None
    staff_role: str = ""
    department: str | None = None

    @property
    def may_write_anything(self) -> bool:
        return self.role == "supervisor"

    def may_call(self, method: str, path: str) -> bool:
        """Whether a guarded operation is meant for callers like this one: the kiosk's for the
        kiosk, those of a staff member's role for them."""
        op = AUDIENCE[method.upper(), path]
        if self.kiosk_id is not None:
            return "kiosk" in op.auth
        if self.staff_id is not None:
            return "session" in op.auth and (not op.roles or self.staff_role in op.roles)
        return False


class Database:
    """The served SQLite file, read beside the server: ``data_version`` tells whether anyone
    committed since the last look; then the rows are compared."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.connection.row_factory = sqlite3.Row
        self.version = self._version()

    def _version(self) -> int:
        return self.connection.execute("PRAGMA data_version").fetchone()[0]

    def changed(self) -> bool:
        """Whether another connection (the server) committed since the last call."""
        version = self._version()
        changed, self.version = version != self.version, version
        return changed

    def rows(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return self.connection.execute(sql, args).fetchall()

    def snapshot(self, caller: Caller) -> dict[str, set[tuple[Any, ...]]]:
        """Every row of every watched table, less those ``caller`` may write."""
        mine = self._theirs(caller)
        found: dict[str, set[tuple[Any, ...]]] = {}
        for table in Base.metadata.sorted_tables:
            if table.name in STATIC or table.name == "audit_head":  # the head follows the rows
                continue
            rows = self.rows(f'SELECT * FROM "{table.name}"')
            if table.name in MAYBE_THEIRS:
                rows = [r for r in rows if not _theirs(table.name, r, caller, mine)]
            found[table.name] = set(map(tuple, rows))
        return found

    def _theirs(self, caller: Caller) -> dict[str, set[Any]]:
        """Ids of the rows the caller may change: its own tickets and, for staff, the cases in
        their scope (docs/security.md: the items of their departments, the cases they reviewed
        and those of sessions they answered)."""
        if caller.kiosk_id is not None:
            tickets = {r[0] for r in self.rows("SELECT id FROM tickets WHERE kiosk_id = ?",
                                               caller.kiosk_id)}  # fmt: skip
            return {"tickets": tickets, "cases": set(), "numbers": set()}
        if caller.staff_id is None:
            return {"tickets": set(), "cases": set(), "numbers": set()}
        tickets = {r[0] for r in self.rows("SELECT id FROM tickets WHERE staff_id = ?",
                                           caller.staff_id)}  # fmt: skip
        cases = self.rows(
            "SELECT cases.id, cases.number FROM cases"
            " JOIN service_items ON service_items.id = cases.item_id"
            " JOIN departments ON departments.id = service_items.department_id"
            " WHERE departments.code = ? OR cases.staff_id = ? OR cases.id IN"
            " (SELECT case_id FROM tickets WHERE staff_id = ?)",
            caller.department,
            caller.staff_id,
            caller.staff_id,
        )
        return {"tickets": tickets, "cases": {c[0] for c in cases},
                "numbers": {c[1] for c in cases}}  # fmt: skip


def _theirs(table: str, row: sqlite3.Row, caller: Caller, mine: dict[str, set[Any]]) -> bool:
    """Whether ``row`` is one ``caller`` may have written."""
    if table == "audit_events":
        if row["action"] in ATTEMPTS:
            return True
        by_them = row["actor_kind"] == "staff" and row["actor_id"] == caller.staff_id
        if caller.staff_id is None or not by_them:
            return False
        # Their own doing on a case in scope, or on a session of theirs (a file downloaded).
        ticket = json.loads(row["detail"]).get("ticket")
        return row["case_number"] in mine["numbers"] or (
            row["case_number"] is None and ticket in mine["tickets"]
        )
    if table == "tickets":
        return caller.staff_id is not None and row["id"] in mine["tickets"]
    if table in ("ticket_files", "ticket_events"):
        return row["ticket_id"] in mine["tickets"]
    if caller.staff_id is None:
        return False
    if table == "cases":
        return row["id"] in mine["cases"]
    if table in ("case_events", "material_checks", "correction_notices"):
        return row["case_id"] in mine["cases"]
    if table == "timeout_warnings":
        return row["staff_id"] == caller.staff_id
    return table == "case_counters"  # a case opened in scope takes the next number


@dataclass
class Site:
    server: DemoServer
    database: Database
    callers: dict[str, Caller]
    known: dict[str, list[Any]]  # path parameter → real values to try
    rss_kib: int = 0
    # Commits seen so far (``Database.changed`` after each request, anyone's).
    commits: int = 0
    # Per role: the rows it may not change, as they were, and ``commits`` then. A role's rows
    # are read again only when someone committed since (a supervisor's write, the kiosk's own
    # ticket …); a request that changed any of them fails the test.
    baselines: dict[str, tuple[int, dict[str, set[tuple[Any, ...]]]]] = field(default_factory=dict)

    def _baseline(self, caller: Caller) -> dict[str, set[tuple[Any, ...]]] | None:
        if caller.may_write_anything:
            return None
        if self.database.changed():
            self.commits += 1
        kept = self.baselines.get(caller.role)
        if kept is None or kept[0] != self.commits:
            kept = self.baselines[caller.role] = (self.commits, self.database.snapshot(caller))
        return kept[1]

    def send(self, case: schemathesis.Case, caller: Caller) -> None:
        """Send the case as ``caller``, check the answer, then that nothing the caller may not
        change was changed."""
        before = self._baseline(caller)
        response = case.call(
            base_url=self.server.base_url, headers=caller.headers, cookies=caller.cookies,
            timeout=60,
        )  # fmt: skip
        case.validate_response(response, checks=CHECKS)
        if not self.database.changed():
            return
        self.commits += 1
        if before is not None:
            after = self.database.snapshot(caller)
            changed = {
                table: {"gone": sorted(before[table] - rows)[:3],
                        "new": sorted(rows - before[table])[:3]}
                for table, rows in after.items()
                if rows != before[table]
            }  # fmt: skip
            assert not changed, f"{caller.role} changed what it may not: {changed}"
            self.baselines[caller.role] = (self.commits, after)


def _rss_kib(server: DemoServer) -> int:
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]


def _sign_in(server: DemoServer, username: str) -> str:
    response = requests.post(
        f"{server.base_url}/api/v1/auth/login",
        json={"username": username, "password": DEMO_PASSWORD},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.cookies[STAFF_COOKIE]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with demo_server(tmp_path_factory.mktemp("openapi-demo"), settings=QUIET) as server:
        database = Database(Path(server.env["CLOUDHELP_DATABASE_URL"].removeprefix("sqlite:///")))
        enrolled = requests.post(
            f"{server.base_url}/api/v1/kiosk/enrol",
            json={"code": server.unused_codes.pop(sorted(server.unused_codes)[0])},
            timeout=30,
        ).json()
        kiosk_code = enrolled["kiosk"]["code"]
        staff_ids = {r[0]: r[1] for r in database.rows("SELECT username, id FROM staff")}
        callers = {
            "nobody": Caller("nobody"),
            "kiosk": Caller(
                "kiosk",
                headers={"Authorization": f"Kiosk {enrolled['credential']}"},
                kiosk_id=database.rows("SELECT id FROM kiosks WHERE code = ?", kiosk_code)[0][0],
            ),
            "other_department": Caller(
                "other_department",
                cookies={STAFF_COOKIE: _sign_in(server, OTHER_DEPARTMENT[0])},
                staff_id=staff_ids[OTHER_DEPARTMENT[0]],
                staff_role="staff",
                department=OTHER_DEPARTMENT[1],
            ),
            "supervisor": Caller(
                "supervisor",
                cookies={STAFF_COOKIE: _sign_in(server, SUPERVISOR)},
                staff_id=staff_ids[SUPERVISOR],
                staff_role="supervisor",
            ),
        }
        known = {
            "number": [r[0] for r in database.rows("SELECT number FROM cases ORDER BY id")][:24],
            "ticket": [r[0] for r in database.rows("SELECT id FROM tickets ORDER BY id")][:24],
            "id": [r[0] for r in database.rows("SELECT id FROM follow_ups ORDER BY id")][:8],
            "code": [kiosk_code, "QG-01", "NYNC-002", "SCJG-001"],
            "file": [1, 2],
        }
        KNOWN.update(known)
        site = Site(server, database, callers, known)
        site.rss_kib = _rss_kib(server)
        yield site


def no_traceback(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """No answer shows a Python traceback or source line."""
    text = response.content.decode("utf-8", errors="replace")
    assert "Traceback (most recent call last)" not in text, text[:500]
    assert not re.search(r'File "[^"]+\.py", line \d+', text), text[:500]


def documented_error(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every 4xx and 5xx is JSON: ``{"error": {"code": "a_code", "message": "…"}}``."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), (response.status_code, content_type)
    error = json.loads(response.content)["error"]
    assert isinstance(error["code"], str) and ERROR_CODE.match(error["code"]), error
    assert isinstance(error["message"], str) and error["message"].strip(), error


CHECKS = [
    not_a_server_error,
    no_traceback,
    documented_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    ignored_auth,  # an answered request with credentials is sent again without, and with bad ones
]
# A PDF body is sent as generated, as the image types are.
schemathesis.serializer.alias("application/pdf", "application/octet-stream")
# Real values for path parameters (case numbers, ticket ids …), read from the demo by ``site``.
KNOWN: dict[str, list[Any]] = {}
# The document the server serves (test_the_document_is_served… checks they are the same),
# loaded when the module is collected so that each operation becomes a test of its own.
schema = schemathesis.openapi.from_dict(
    openapi.document(),
    config=schemathesis.Config.from_dict(
        {
            "seed": 11,
            "generation": {
                "mode": "all",  # valid and invalid requests
                "deterministic": True,
                "database": "none",
                "with-security-parameters": False,  # the caller's own credentials only
            },
            "phases": {"stateful": {"enabled": False}},
        }
    ),
)


@schema.hook
def flatmap_case(
    context: schemathesis.HookContext, case: schemathesis.Case
) -> st.SearchStrategy[schemathesis.Case]:
    """An upload often carries its body's true SHA-256, so that it is kept (or refused because
    of who sends it) rather than always failing the checksum."""
    if case.operation.path != UPLOAD or case.method != "POST" or case.headers is None:
        return st.just(case)

    def with_digest(honest: bool) -> schemathesis.Case:
        if honest:
            digest = hashlib.sha256(serialize_binary(case.body)).hexdigest()
            case.headers = {**case.headers, "X-File-SHA256": digest}
        return case

    return st.booleans().map(with_digest)


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any]]:
    """Often a real case number, ticket id, follow-up id or code instead of a made-up one."""
    return st.fixed_dictionaries(
        {
            name: st.sampled_from([value, *KNOWN[name]]) if KNOWN.get(name) else st.just(value)
            for name, value in (path_parameters or {}).items()
        }
    )


FUZZ = hypothesis.settings(
    max_examples=15,  # per operation and caller, beside the coverage phase's cases
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
PUBLIC = {(op.method, op.path) for op in openapi.OPERATIONS if not op.auth}


def _public(ctx: Any) -> bool:
    return (ctx.operation.method.upper(), ctx.operation.path) in PUBLIC


@schema.include(_public).parametrize()
@FUZZ
def test_public_operations_as_nobody(case: schemathesis.Case, site: Site) -> None:
    """The catalog, sign-in, enrolment …: they read no credential, so they answer everyone
    alike and are fuzzed once, as nobody, with the coverage phase's boundary values too."""
    site.send(case, site.callers["nobody"])


@schema.exclude(_public).parametrize()
@FUZZ
def test_every_guarded_operation_as_every_caller(case: schemathesis.Case, site: Site) -> None:
    """Operations that need a session or a kiosk credential: each request generated is sent as
    each caller in turn (the supervisor, whose writes are not checked, last), so it is
    generated once, not once per caller. The coverage phase's boundary values go to the
    operation's own callers (the kiosk's to the kiosk, a role's to staff of that role);
    everyone gets the fuzzing phase's requests."""
    coverage = case.meta is not None and case.meta.phase.name == TestPhase.COVERAGE
    for role in ROLES:
        caller = site.callers[role]
        if coverage and not caller.may_call(case.operation.method, case.operation.path):
            continue
        site.send(case.derive(), caller)


def test_the_server_is_still_well_after_the_fuzzing(site: Site) -> None:
    """Runs after the fuzzing (file order): it answers, logged no unhandled error, and its
    memory grew by a bounded amount."""
    answer = requests.get(f"{site.server.base_url}/api/v1/health", timeout=30)
    assert answer.status_code == 200
    log = site.server.log_path.read_text(errors="replace")
    assert "http.unhandled_error" not in log and "Traceback" not in log, site.server.log_tail()
    growth = _rss_kib(site.server) - site.rss_kib
    assert growth < MAX_RSS_GROWTH_KIB, f"the server grew by {growth} KiB"
