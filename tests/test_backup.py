"""`cloudhelp backup` and `cloudhelp restore` on SQLite and PostgreSQL: a backup taken while the
server runs and writes, restored into an empty data folder and database, holds every case, file
(bytes identical) and audit row; damaged, cut and mismatched backups are refused."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from sqlalchemy import text

from cloudhelp.devtools import demo_items
from cloudhelp.domain import audit
from cloudhelp.domain.accounts import STAFF_COOKIE
from cloudhelp.store import backup, db
from cloudhelp.store.filestore import store_bytes
from tests.callkit import running_server
from tests.conftest import _create_pg_database, _drop_pg_database, pg_admin_url
from tests.helpers import ROOT, run_cli, serve_and_read_url, start_cli

DEMO_PASSWORD = "cloudhelp-demo"  # what `cloudhelp demo` sets for every staff account
# Files a resident and staff sent in calls: a JPEG, a PNG and a PDF (the JPEG kept twice).
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x01png" * 500
PDF = b"%PDF-1.4\n" + "一次性告知书".encode() * 300 + b"\n%%EOF\n"


@pytest.fixture
async def restore_url(database_url: str, tmp_path: Path) -> AsyncIterator[str | None]:
    """Where to restore: None for SQLite (the data folder's own cloudhelp.db, not there yet), a
    new empty database on the test PostgreSQL server."""
    if database_url.startswith("sqlite"):
        yield None
        return
    url, name = await _create_pg_database()
    yield url
    await _drop_pg_database(name)


def _env(data_dir: Path) -> dict[str, str]:
    return {"CLOUDHELP_DATA_DIR": str(data_dir)}


def _db(url: str | None) -> list[str]:
    return ["--db", url] if url else []


async def _contents(url: str) -> dict[str, Any]:
    """What the database holds that a restore must bring back."""
    engine = db.create_engine(url)
    queries = {
        "cases": "SELECT number, status, applicant_name, applicant_id_number, created_at "
        "FROM cases ORDER BY number",
        "case_events": "SELECT case_id, to_state, actor, at FROM case_events ORDER BY id",
        "tickets": "SELECT id, number, status, staff_id, case_id FROM tickets ORDER BY id",
        "files": "SELECT id, ticket_id, sha256, name, size FROM ticket_files ORDER BY id",
        "audit": "SELECT seq, action, actor_name, row_hash FROM audit_events ORDER BY seq",
    }
    try:
        async with engine.connect() as conn:
            return {
                key: [tuple(row) for row in (await conn.execute(text(query))).all()]
                for key, query in queries.items()
            }
    finally:
        await engine.dispose()


async def _upload(http: ClientSession, cookie: str, ticket: int, data: bytes, kind: str,
                  name: str) -> dict[str, Any]:  # fmt: skip
    headers = {"Content-Type": kind, "X-File-SHA256": hashlib.sha256(data).hexdigest(),
               "X-File-Name": name, "X-File-Sender": "staff"}  # fmt: skip
    async with http.post(f"/api/v1/tickets/{ticket}/files", data=data, headers=headers,
                         cookies={STAFF_COOKIE: cookie}) as response:  # fmt: skip
        assert response.status in (200, 201), await response.text()
        return dict((await response.json())["file"])


async def _sign_in(http: ClientSession) -> str:
    body = {"username": "zhaogang", "password": DEMO_PASSWORD}
    async with http.post("/api/v1/auth/login", json=body) as response:
        assert response.status == 200, await response.text()
        return response.cookies[STAFF_COOKIE].value


def _manifest(path: Path) -> dict[str, Any]:
    with tarfile.open(path) as tar:
        handle = tar.extractfile(backup.MANIFEST)
        assert handle is not None
        return dict(json.loads(handle.read()))


def _the_backup(folder: Path) -> Path:
    found = list(folder.glob("cloudhelp-backup-*.tar"))
    assert len(found) == 1, found
    assert not list(folder.glob("*.partial")) and not list(folder.glob(".cloudhelp-backup-*"))
    return found[0]


async def test_a_backup_taken_while_serving_restores_every_case_file_and_audit_row(
    database_url: str, restore_url: str | None, tmp_path: Path
) -> None:
    source, target, folder = tmp_path / "source", tmp_path / "target", tmp_path / "backups"
    folder.mkdir()
    loaded = run_cli("demo", "--db", database_url, env=_env(source))
    assert loaded.returncode == 0, loaded.stderr
    server = start_cli("serve", "--port", "0", "--db", database_url, env=_env(source))
    try:
        base = serve_and_read_url(server)
        async with ClientSession(base_url=base) as http:
            cookie = await _sign_in(http)
            engine = db.create_engine(database_url)
            async with engine.connect() as conn:
                found = await conn.execute(text(
                    "SELECT t.id FROM tickets t JOIN staff s ON s.id = t.staff_id "
                    "WHERE s.username = 'zhaogang' ORDER BY t.id LIMIT 2"))  # fmt: skip
                tickets = found.scalars().all()
            await engine.dispose()
            sent = [
                await _upload(http, cookie, tickets[0], JPEG, "image/jpeg", "身份证正面.jpg"),
                await _upload(http, cookie, tickets[0], PDF, "application/pdf", "申请表.pdf"),
                await _upload(http, cookie, tickets[1], PNG, "image/png", "户口本.png"),
                await _upload(http, cookie, tickets[1], JPEG, "image/jpeg", "身份证正面.jpg"),
            ]
            before = await _contents(database_url)

            # Staff keep signing in (each sign-in is an audit row) while the backup runs, ten
            # times a second: back to back, the server and the database took the CPU the
            # backup needed (a full run's backup outlasted the test's two minutes so).
            stop = asyncio.Event()

            async def keep_signing_in() -> int:
                count = 0
                while not stop.is_set():
                    await _sign_in(http)
                    count += 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.1)
                return count

            writer = asyncio.create_task(keep_signing_in())
            made = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cloudhelp", "backup", str(folder), "--db", database_url,
                env={**os.environ, **_env(source)}, cwd=ROOT,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await made.communicate()
            stop.set()
            sign_ins = await writer
            assert made.returncode == 0, err.decode()
            assert sign_ins >= 1
    finally:
        server.terminate()
        server.wait(timeout=10)
        assert server.stdout is not None and server.stderr is not None
        server.stdout.close()
        server.stderr.close()
    path = _the_backup(folder)
    assert path.stat().st_mode & 0o777 == 0o600
    assert f"Backup written to {path}" in out.decode()
    manifest = _manifest(path)
    assert manifest["alembic_revision"] == backup.head_revision()
    assert manifest["database"]["kind"] == database_url.split(":")[0]
    # The files sent in calls, and the signature kept with the demo's certificate picked up.
    signature = demo_items.signature_png()
    stored = {hashlib.sha256(data).hexdigest(): data for data in (JPEG, PNG, PDF, signature)}
    assert {item["sha256"] for item in manifest["files"]["items"]} == set(stored)
    assert manifest["files"]["bytes"] == sum(map(len, stored.values()))

    checked = run_cli("restore", "--verify-only", str(path))
    assert checked.returncode == 0 and "every part matches its manifest" in checked.stdout

    assert not target.exists()
    restored = run_cli("restore", str(path), *_db(restore_url), env=_env(target))
    assert restored.returncode == 0, restored.stderr
    assert "4 files added" in restored.stdout and "The audit trail holds" in restored.stdout
    restored_url = restore_url or f"sqlite:///{target / 'cloudhelp.db'}"
    after = await _contents(restored_url)
    for key in ("cases", "case_events", "files"):
        assert after[key] == before[key], key
    assert before["cases"] and len(before["files"]) == 4
    assert set(before["tickets"]) <= set(after["tickets"])
    # Every audit row made before the backup, the sign-ins it caught, then the restore's own row.
    assert after["audit"][: len(before["audit"])] == before["audit"]
    assert after["audit"][-1][1] == "backup.restored"
    assert (target / "secret_key").read_text() == (source / "secret_key").read_text()
    for sha256, data in stored.items():
        assert (target / "files" / sha256[:2] / sha256).read_bytes() == data
    engine = db.create_engine(restored_url)
    async with db.Database(engine).read() as session:
        verdict = await audit.verify(session)
    await engine.dispose()
    assert verdict.problem is None and verdict.rows == len(after["audit"])

    # A server on the restored data hands out the very bytes that were sent.
    async with running_server(restored_url, data_dir=target) as again:
        staff = {STAFF_COOKIE: await again.staff_token("zhaogang")}
        for row in sent:
            async with again.http.get(row["url"], cookies=staff) as response:
                assert response.status == 200
                assert await response.read() == stored[row["sha256"]]

    # The backup was recorded in the source's audit trail after the copy was taken.
    source_rows = (await _contents(database_url))["audit"]
    assert [row[1] for row in source_rows].count("backup.created") == 1


def _flip(path: Path, member: str) -> None:
    """Change one byte of ``member``'s content inside the tar file."""
    with tarfile.open(path) as tar:
        offset = tar.getmember(member).offset_data
    with path.open("r+b") as handle:
        handle.seek(offset + 7)
        byte = handle.read(1)
        handle.seek(offset + 7)
        handle.write(bytes([byte[0] ^ 0xFF]))


async def _refusal(src: Path, target: Path, **kwargs: Any) -> str:
    """Why restoring ``src`` into the data folder ``target`` was refused (it must be)."""
    url = f"sqlite:///{target / 'cloudhelp.db'}"
    with pytest.raises(backup.BackupRefused) as caught:
        await backup.restore(backup.Target(url, target), src, **kwargs)
    assert not (target / "cloudhelp.db").exists() and not (target / "files").exists()
    return caught.value.message


async def test_a_damaged_or_cut_backup_is_refused_and_nothing_changes(
    sqlite_demo_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    for data in (JPEG, PNG):
        store_bytes(source, data)
    good = tmp_path / "good.tar"
    await backup.make(backup.Target(sqlite_demo_url, source), good)
    jpeg = hashlib.sha256(JPEG).hexdigest()

    cases = {
        "a stored file": (f"files/{jpeg[:2]}/{jpeg}", "is damaged and was not restored: files/"),
        "the database": ("database.sqlite3", "is damaged and was not restored: database.sqlite3"),
        "the manifest": (backup.MANIFEST, "its manifest is not readable JSON"),
    }
    for what, (member, message) in cases.items():
        bad = tmp_path / f"bad-{what.replace(' ', '-')}.tar"
        bad.write_bytes(good.read_bytes())
        _flip(bad, member)
        assert message in await _refusal(bad, tmp_path / f"target-{what}"), what
        with pytest.raises(backup.BackupRefused, match=message):
            await backup.check(bad)

    # As the operator sees it: one sentence, exit status 1, nothing restored.
    told = run_cli("restore", str(bad), env=_env(tmp_path / "target-cli"))
    assert told.returncode == 1
    assert told.stderr == (f"cloudhelp: {bad} is damaged and was not restored: its manifest is "
                           "not readable JSON.\n")  # fmt: skip
    assert not (tmp_path / "target-cli" / "cloudhelp.db").exists()

    # Cut short (a copy interrupted part way): no manifest at the end.
    cut = tmp_path / "cut.tar"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "is not a complete CloudHelp backup" in await _refusal(cut, tmp_path / "target-cut")

    # A member left out of an otherwise intact backup.
    partial = tmp_path / "partial.tar"
    with tarfile.open(good) as old, tarfile.open(partial, "w") as new:
        for member in old.getmembers():
            if member.name != f"files/{jpeg[:2]}/{jpeg}":
                new.addfile(member, old.extractfile(member))
    assert f"not a complete CloudHelp backup: files/{jpeg[:2]}/{jpeg} is missing" in (
        await _refusal(partial, tmp_path / "target-partial")
    )

    # A SQLite backup is not restored into PostgreSQL.
    with pytest.raises(backup.BackupRefused, match="holds a sqlite database"):
        await backup.restore(backup.Target(pg_admin_url(), tmp_path / "target-pg"), good)


def test_a_folder_named_with_a_slash_is_made_and_holds_a_dated_backup(
    sqlite_demo_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "backups" / "nightly"  # neither exists yet
    made = run_cli("backup", f"{folder}/", "--db", sqlite_demo_url, env=_env(tmp_path / "data"))
    assert made.returncode == 0, made.stderr
    (written,) = folder.iterdir()
    assert written.name.startswith("cloudhelp-backup-") and written.suffix == ".tar"
    assert f"Backup written to {written}" in made.stdout


async def test_a_stored_file_damaged_on_disk_is_left_out_and_named(
    sqlite_demo_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    sound, rotten = store_bytes(source, PNG), store_bytes(source, JPEG)
    path = source / "files" / rotten[:2] / rotten
    path.write_bytes(b"\xff\xd8\xff\xe1" + JPEG[4:])  # bit rot: no longer its SHA-256
    made = run_cli("backup", str(tmp_path / "b.tar"), "--db", sqlite_demo_url, env=_env(source))
    assert made.returncode == 1
    assert "1 stored file(s) are damaged" in made.stderr and f"  - {rotten}" in made.stderr
    manifest = _manifest(tmp_path / "b.tar")
    assert manifest["damaged_files"] == [rotten]
    assert [item["sha256"] for item in manifest["files"]["items"]] == [sound]
    await backup.check(tmp_path / "b.tar")  # the rest is a sound backup


async def test_restoring_over_a_database_that_is_not_empty_needs_force(
    demo_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    made = run_cli("backup", str(tmp_path / "b.tar"), "--db", demo_url, env=_env(data_dir))
    assert made.returncode == 0, made.stderr
    before = await _contents(demo_url)
    engine = db.create_engine(demo_url)
    postgresql = demo_url.startswith("postgresql")
    async with engine.begin() as conn:  # a change after the backup
        await conn.execute(text("UPDATE stations SET name = 'after the backup'"))
        if postgresql:  # as a newer release's migration would: an enum and a table using it
            await conn.execute(text("CREATE TYPE newer_state AS ENUM ('a', 'b')"))
            await conn.execute(text("CREATE TABLE newer_rows (state newer_state)"))
    await engine.dispose()

    refused = run_cli("restore", str(tmp_path / "b.tar"), "--db", demo_url, env=_env(data_dir))
    assert refused.returncode == 1
    assert "is not empty" in refused.stderr and "--force" in refused.stderr
    engine = db.create_engine(demo_url)
    async with engine.connect() as conn:
        names = set((await conn.execute(text("SELECT name FROM stations"))).scalars())
    assert names == {"after the backup"}

    forced = run_cli("restore", str(tmp_path / "b.tar"), "--force", "--db", demo_url,
                     env=_env(data_dir))  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    async with engine.connect() as conn:
        names = set((await conn.execute(text("SELECT name FROM stations"))).scalars())
        if postgresql:  # the newer release's type went with its table: it could migrate again
            left = await conn.scalar(
                text("SELECT count(*) FROM pg_type WHERE typname LIKE 'newer_%'")
            )
            assert left == 0
    await engine.dispose()
    assert "after the backup" not in names and names
    after = await _contents(demo_url)
    assert after["audit"][:-1] == before["audit"][:-1]  # the backup's own row was made after it
    assert after["audit"][-1][1] == "backup.restored"


async def test_a_backup_of_an_older_revision_restores_and_is_upgraded(
    database_url: str, restore_url: str | None, tmp_path: Path
) -> None:
    older = "0013"
    engine = db.create_engine(database_url)
    await db.upgrade(engine, older)
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO departments (code, name) VALUES ('OLD', '旧部门')"))
    await engine.dispose()
    source, target = tmp_path / "source", tmp_path / "target"
    made = run_cli("backup", str(tmp_path / "old.tar"), "--db", database_url, env=_env(source))
    assert made.returncode == 0, made.stderr
    assert "revision 0013" in made.stdout and "Not recorded in the audit trail" in made.stdout
    assert _manifest(tmp_path / "old.tar")["alembic_revision"] == older

    restored = run_cli("restore", str(tmp_path / "old.tar"), *_db(restore_url), env=_env(target))
    assert restored.returncode == 0, restored.stderr
    head = backup.head_revision()
    assert f"database now at revision {head}" in restored.stdout
    url = restore_url or f"sqlite:///{target / 'cloudhelp.db'}"
    engine = db.create_engine(url)
    try:
        assert await db.current_revision(engine) == head
        async with engine.connect() as conn:
            names = (await conn.execute(text("SELECT name FROM departments"))).scalars().all()
        assert names == ["旧部门"]
    finally:
        await engine.dispose()


def test_missing_postgresql_tools_are_one_sentence(tmp_path: Path) -> None:
    done = run_cli("backup", str(tmp_path / "x.tar"), "--db", pg_admin_url(),
                   "--pg-bindir", str(tmp_path))  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == f"cloudhelp: There is no pg_dump in {tmp_path}."
    assert not (tmp_path / "x.tar").exists()
