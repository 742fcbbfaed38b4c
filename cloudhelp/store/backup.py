"""Backups: the database and the file store in one tar file with a manifest, and their restore.

A backup is one uncompressed tar file holding

- ``database.sqlite3`` (a copy made with SQLite's online backup API, consistent while the server
  writes) or ``database.pgdump`` (``pg_dump --format=custom``, itself compressed);
- ``files/<2 hex>/<sha256>``: every file of the file store, checked against its name on the way;
- ``secret_key``: the key that signed the notice links, when the data folder holds one;
- ``manifest.json``, last: format version, when, app version, Alembic revision, database kind,
  and the size and SHA-256 of every other member.

The manifest is written last, so a backup cut short has none and is refused as incomplete; the
tar is written under ``<name>.partial`` and renamed when complete. Restoring checks every member
against the manifest before it changes anything, then replaces the database, adds the files and
migrates the database to this version's head. docs/backups.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import text

from cloudhelp import __version__
from cloudhelp.core.errors import CodedError
from cloudhelp.store import db
from cloudhelp.store.filestore import storage_path

FORMAT = "cloudhelp-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PARTS = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
SECRET_PART = "secret_key"
CHUNK = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FILE_MEMBER = re.compile(r"files/([0-9a-f]{2})/([0-9a-f]{64})")


class BackupRefused(CodedError):
    """A backup or restore that cannot be done; the message is one sentence for a person."""


@dataclass(frozen=True)
class Target:
    """Where the data lives: the database URL and the data folder (file store, secret key), and
    the folder of the PostgreSQL client programs (None: found on PATH)."""

    database_url: str
    data_dir: Path
    pg_bindir: Path | None = None

    @property
    def kind(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return db.normalise_url(self.database_url).get_backend_name()


@dataclass
class Made:
    """A backup written: its path, its manifest, and stored files left out because their
    bytes no longer match their SHA-256 (damaged on disk)."""

    path: Path
    manifest: dict[str, Any]
    damaged: list[str] = field(default_factory=list)


@dataclass
class Restored:
    """A restore done: the backup's manifest and the revision the database was migrated to."""

    manifest: dict[str, Any]
    revision: str | None
    files_added: int


def head_revision() -> str | None:
    """The newest migration this version of CloudHelp knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(db.MIGRATIONS_DIR)).get_current_head()


# ------------------------------------------------------------------------------ PostgreSQL tools


def _pg_program(target: Target, name: str) -> str:
    """The path of ``pg_dump`` or ``pg_restore``; refused with a clear sentence when absent."""
    if target.pg_bindir is not None:
        path = target.pg_bindir / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        raise BackupRefused("pg_tool_missing", f"There is no {name} in {target.pg_bindir}.")
    found = shutil.which(name)
    if found is None:
        raise BackupRefused(
            "pg_tool_missing",
            f"{name} was not found on PATH: install the PostgreSQL client (Debian: apt-get "
            f"install postgresql-client) or name its folder with --pg-bindir.",
        )
    return found


def _pg_major(program: str) -> int:
    """The major version of a PostgreSQL client program (``pg_dump (PostgreSQL) 15.8`` → 15)."""
    done = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30)
    found = re.search(r"\)\s+(\d+)", done.stdout)
    if done.returncode != 0 or found is None:
        raise BackupRefused(
            "pg_tool_missing", f"{program} --version did not say its version: {done.stdout!r}."
        )
    return int(found.group(1))


def _pg_env(target: Target) -> dict[str, str]:
    """libpq's environment for the target database (the password never on a command line)."""
    url = db.normalise_url(target.database_url)
    env = {**os.environ}
    host = url.query.get("host") or url.host
    values = {
        "PGHOST": host if isinstance(host, str) else None,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password if isinstance(url.password, str) else None,
        "PGDATABASE": url.database,
    }
    for key, value in values.items():
        if value:
            env[key] = value
    return env


async def _server_major(engine: db.AsyncEngine) -> int:
    async with engine.connect() as conn:
        number = (await conn.execute(text("SHOW server_version_num"))).scalar_one()
    return int(number) // 10000


def _run_pg(args: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise BackupRefused("pg_tool_failed", f"{what} failed: {reason}")


# ------------------------------------------------------------------------------ making a backup


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _sqlite_path(target: Target) -> Path:
    database = db.normalise_url(target.database_url).database
    if not database or database == ":memory:":
        raise BackupRefused("backup_unsupported", "An in-memory database cannot be backed up.")
    return Path(database).expanduser()


def _sqlite_copy(source: Path, copy: Path) -> None:
    """Copy a live SQLite database with the online backup API (one step: one read snapshot)."""
    if not source.is_file():
        raise BackupRefused("backup_no_database", f"There is no database at {source}.")
    src = sqlite3.connect(source, timeout=db.SQLITE_BUSY_TIMEOUT_MS / 1000)
    dst = sqlite3.connect(copy)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # the copy is one self-contained file
    finally:
        dst.close()
        src.close()


def _sqlite_revision(path: Path) -> str | None:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()
    return str(row[0]) if row else None


def _stored_files(data_dir: Path) -> Iterator[tuple[str, Path]]:
    """Every file of the file store as (SHA-256 its name says, path), in name order."""
    root = data_dir / "files"
    if not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if _SHA256.fullmatch(path.name) and path.name[:2] == folder.name:
                yield path.name, path


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> dict[str, Any]:
    info = tarfile.TarInfo(name)
    info.size = path.stat().st_size
    info.mtime = int(path.stat().st_mtime)
    info.mode = 0o600
    with path.open("rb") as handle:
        tar.addfile(info, handle)
    return {"name": name, "bytes": info.size, "sha256": _sha256_of(path)}


def _write_tar(
    partial: Path, target: Target, part: Path, manifest: dict[str, Any], damaged: list[str]
) -> None:
    """The tar: database part, secret key, stored files (each checked), manifest last."""
    # Readable by its owner only: it holds residents' data and the signing key.
    raw = os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
    with raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        manifest["database"].update(_add_file(tar, PARTS[target.kind], part))
        secret = target.data_dir / SECRET_PART
        if secret.is_file():
            manifest["secret_key"] = _add_file(tar, SECRET_PART, secret)
        items: list[dict[str, Any]] = []
        for sha256, path in _stored_files(target.data_dir):
            try:
                data = path.read_bytes()  # at most 25 MiB (file_routes.MAX_FILE_BYTES)
            except FileNotFoundError:  # purged since the listing: the database says so too
                continue
            if hashlib.sha256(data).hexdigest() != sha256:
                damaged.append(sha256)
                continue
            _add_bytes(tar, f"files/{sha256[:2]}/{sha256}", data)
            items.append({"sha256": sha256, "bytes": len(data)})
        manifest["files"] = {
            "count": len(items),
            "bytes": sum(item["bytes"] for item in items),
            "items": items,
        }
        manifest["damaged_files"] = damaged
        _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=1).encode())
        tar.close()  # writes the end-of-archive blocks before the sync
        raw.flush()
        os.fsync(raw.fileno())


def _destination(dest: Path, now: datetime) -> Path:
    """``dest``, or a dated name inside it when it is a folder; refused if it exists."""
    if dest.is_dir():
        dest = dest / f"cloudhelp-backup-{now.strftime('%Y%m%d-%H%M%S')}.tar"
    if dest.exists():
        raise BackupRefused("backup_exists", f"{dest} exists already: choose another name.")
    if not dest.parent.is_dir():
        raise BackupRefused("backup_no_folder", f"The folder {dest.parent} does not exist.")
    return dest


async def make(target: Target, dest: Path) -> Made:
    """Back up the database and the file store into one tar file at ``dest`` (a new file, or
    a dated file inside the folder ``dest``), safe while the server runs. The database is copied
    first, then the files: a file is written before the row that names it, so every file the
    copied database names is in the backup (unless purged meanwhile)."""
    now = datetime.now(UTC)
    path = _destination(dest, now)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": now.isoformat(timespec="seconds"),
        "app_version": __version__,
        "alembic_revision": None,
        "database": {"kind": target.kind},
        "secret_key": None,
    }
    partial = path.with_name(path.name + ".partial")
    damaged: list[str] = []
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".cloudhelp-backup-") as staging:
        part = Path(staging) / PARTS[target.kind]
        if target.kind == "sqlite":
            await asyncio.to_thread(_sqlite_copy, _sqlite_path(target), part)
            manifest["alembic_revision"] = await asyncio.to_thread(_sqlite_revision, part)
        else:
            revision, major = await _pg_dump(target, part)
            manifest["alembic_revision"] = revision
            manifest["database"]["pg_dump_major"] = major
        try:
            await asyncio.to_thread(_write_tar, partial, target, part, manifest, damaged)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
    return Made(path, manifest, damaged)


async def _pg_dump(target: Target, part: Path) -> tuple[str | None, int]:
    """Dump the database with pg_dump (custom format); the revision and pg_dump's version."""
    program = _pg_program(target, "pg_dump")
    major = await asyncio.to_thread(_pg_major, program)
    engine = db.create_engine(target.database_url)
    try:
        await db.check_connection(engine)
        server = await _server_major(engine)
        if major < server:
            raise BackupRefused(
                "pg_tool_too_old",
                f"{program} is version {major} but the server runs PostgreSQL {server}: "
                f"install the version {server} client or name its folder with --pg-bindir.",
            )
        before = await db.current_revision(engine)
        args = [program, "--format=custom", "--no-password", f"--file={part}"]
        await asyncio.to_thread(_run_pg, args, _pg_env(target), "pg_dump")
        if await db.current_revision(engine) != before:
            raise BackupRefused(
                "backup_migrated", "The database was migrated during the backup: run it again."
            )
    finally:
        await engine.dispose()
    return before, major


# ------------------------------------------------------------------------------ checking a backup


def _incomplete(src: Path, why: str) -> BackupRefused:
    return BackupRefused("backup_incomplete", f"{src} is not a complete CloudHelp backup: {why}.")


def _corrupt(src: Path, why: str) -> BackupRefused:
    return BackupRefused("backup_corrupt", f"{src} is damaged and was not restored: {why}.")


def _open(src: Path) -> tuple[tarfile.TarFile, dict[str, tarfile.TarInfo]]:
    if not src.is_file():
        raise BackupRefused("backup_missing", f"There is no backup file at {src}.")
    try:
        tar = tarfile.open(src, "r:")
        members = {m.name: m for m in tar.getmembers()}
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise _incomplete(src, f"it cannot be read as a tar file ({exc})") from None
    return tar, members


def _manifest(src: Path, tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo]) -> Any:
    if MANIFEST not in members:
        raise _incomplete(src, "it has no manifest (interrupted or cut short)")
    handle = tar.extractfile(members[MANIFEST])
    try:
        manifest = json.loads(handle.read()) if handle else None
    except (ValueError, tarfile.TarError, OSError):
        raise _corrupt(src, "its manifest is not readable JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _corrupt(src, "its manifest is not a CloudHelp backup manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupRefused(
            "backup_format",
            f"{src} is backup format version {manifest.get('format_version')}; this CloudHelp "
            f"reads version {FORMAT_VERSION}.",
        )
    return manifest


def _expected(src: Path, manifest: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """Each member the manifest lists: name → (bytes, SHA-256)."""
    try:
        database = manifest["database"]
        expected = {PARTS[database["kind"]]: (int(database["bytes"]), str(database["sha256"]))}
        if manifest.get("secret_key"):
            secret = manifest["secret_key"]
            expected[SECRET_PART] = (int(secret["bytes"]), str(secret["sha256"]))
        for item in manifest["files"]["items"]:
            sha256 = str(item["sha256"])
            if not _SHA256.fullmatch(sha256):
                raise ValueError(sha256)
            expected[f"files/{sha256[:2]}/{sha256}"] = (int(item["bytes"]), sha256)
    except (KeyError, TypeError, ValueError):
        raise _corrupt(src, "its manifest lacks the parts' sizes and hashes") from None
    return expected


def _copy_checked(handle: IO[bytes], out: IO[bytes] | None) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if out is not None:
            out.write(chunk)
    return size, digest.hexdigest()


def _check(src: Path, into: Path | None) -> dict[str, Any]:
    """Check every member of the backup against its manifest (and copy each into ``into``
    when given); the manifest, or BackupRefused naming the first thing wrong."""
    tar, members = _open(src)
    with tar:
        manifest = _manifest(src, tar, members)
        expected = _expected(src, manifest)
        extra = sorted(set(members) - set(expected) - {MANIFEST})
        if extra:
            raise _corrupt(src, f"it holds {extra[0]}, which its manifest does not list")
        missing = sorted(set(expected) - set(members))
        if missing:
            raise _incomplete(src, f"{missing[0]} is missing")
        for name, (size, sha256) in expected.items():
            member = members[name]
            if not member.isfile():
                raise _corrupt(src, f"{name} is not a regular file")
            handle = tar.extractfile(member)
            if handle is None:
                raise _corrupt(src, f"{name} cannot be read")
            out_path = None if into is None else into / name
            try:
                if out_path is None:
                    got = _copy_checked(handle, None)
                else:
                    out_path.parent.mkdir(parents=True, exist_ok=True)
                    with out_path.open("wb") as out:
                        got = _copy_checked(handle, out)
            except (tarfile.TarError, EOFError) as exc:
                raise _incomplete(src, f"{name} is cut short ({exc})") from None
            if got != (size, sha256):
                raise _corrupt(src, f"{name} does not match the SHA-256 its manifest records")
    return dict(manifest)


async def check(src: Path) -> dict[str, Any]:
    """Read the whole backup and check every part against its manifest; the manifest."""
    return await asyncio.to_thread(_check, src, None)


# ------------------------------------------------------------------------------ restoring


async def _tables(target: Target) -> int:
    """How many tables the target database holds (0: empty or not there yet)."""
    if target.kind == "sqlite":
        path = _sqlite_path(target)
        if not path.exists():
            return 0
        query = "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
    else:
        query = (
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S')"
        )
    engine = db.create_engine(target.database_url)
    try:
        await db.check_connection(engine)
        async with engine.connect() as conn:
            return int((await conn.execute(text(query))).scalar_one())
    finally:
        await engine.dispose()


def _sqlite_restore(copy: Path, dest: Path) -> None:
    """Replace the database at ``dest`` with ``copy`` through the backup API: a server's open
    connections see the new content, and its WAL stays consistent."""
    checked = sqlite3.connect(copy)
    try:
        verdict = checked.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise BackupRefused("backup_corrupt", f"The backed-up database is damaged: {verdict}.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        target = sqlite3.connect(dest, timeout=db.SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            checked.backup(target)
        finally:
            target.close()
    finally:
        checked.close()


async def _pg_clear(target: Target) -> None:
    """Drop every table, view, sequence and type of the database's schema (restore --force)."""
    engine = db.create_engine(target.database_url)
    kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}
    try:
        async with engine.begin() as conn:
            rows = await conn.execute(
                text(
                    "SELECT c.relkind::text, quote_ident(c.relname) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind IN ('r','p','v','m','S')"
                )
            )
            for kind, name in rows.all():
                await conn.execute(text(f"DROP {kinds[kind]} IF EXISTS {name} CASCADE"))
            # Types a migration made (enums, domains, composites) outlive their tables: a
            # newer release's enum left here would stop that release's migration next time.
            types = await conn.execute(
                text(
                    "SELECT quote_ident(t.typname) FROM pg_type t "
                    "JOIN pg_namespace n ON n.oid = t.typnamespace "
                    "WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'd') "
                    "OR (n.nspname = current_schema() AND t.typtype = 'c' AND NOT EXISTS "
                    "(SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c'))"
                )
            )
            for (name,) in types.all():
                await conn.execute(text(f"DROP TYPE IF EXISTS {name} CASCADE"))
    finally:
        await engine.dispose()


async def _pg_restore(target: Target, manifest: dict[str, Any], part: Path) -> None:
    program = _pg_program(target, "pg_restore")
    major = await asyncio.to_thread(_pg_major, program)
    written_by = int(manifest["database"].get("pg_dump_major") or 0)
    if major < written_by:
        raise BackupRefused(
            "pg_tool_too_old",
            f"The backup was written by pg_dump {written_by} and {program} is version {major}: "
            f"install the version {written_by} client or name its folder with --pg-bindir.",
        )
    env = _pg_env(target)
    if not env.get("PGDATABASE"):
        raise BackupRefused("backup_unsupported", "The database URL names no database.")
    args = [program, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
            "--no-password", f"--dbname={env['PGDATABASE']}", str(part)]  # fmt: skip
    await asyncio.to_thread(_run_pg, args, env, "pg_restore")


def _place_files(staged: Path, data_dir: Path) -> int:
    """Move the checked files into the file store; how many were not there already."""
    added = 0
    for member in sorted((staged / "files").glob("*/*")):
        found = _FILE_MEMBER.fullmatch(member.relative_to(staged).as_posix())
        if found is None:
            continue
        path = storage_path(data_dir, found.group(2))
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(member, path)
        added += 1
    return added


def _place_secret(staged: Path, data_dir: Path) -> None:
    secret = staged / SECRET_PART
    if secret.is_file():
        secret.chmod(0o600)
        os.replace(secret, data_dir / SECRET_PART)


async def restore(target: Target, src: Path, *, force: bool = False) -> Restored:
    """Restore a backup into ``target``: every part is checked first; the database must be
    empty unless ``force``; then the database is replaced, the files added, the secret key
    put back, and the database migrated to this version's head."""
    await asyncio.to_thread(target.data_dir.mkdir, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.data_dir, prefix=".restore-") as staging:
        staged = Path(staging)
        manifest = await asyncio.to_thread(_check, src, staged)
        kind = manifest["database"]["kind"]
        if kind != target.kind:
            raise BackupRefused(
                "backup_kind",
                f"This backup holds a {kind} database and the target is {target.kind}: restore "
                f"it into a {kind} database.",
            )
        tables = await _tables(target)
        if tables and not force:
            raise BackupRefused(
                "database_not_empty",
                f"The database at {db.display_url(target.database_url)} is not empty ({tables} "
                "tables): restoring replaces everything in it; pass --force to do so.",
            )
        part = staged / PARTS[kind]
        if kind == "sqlite":
            await asyncio.to_thread(_sqlite_restore, part, _sqlite_path(target))
        else:
            if tables:
                await _pg_clear(target)
            await _pg_restore(target, manifest, part)
        added = await asyncio.to_thread(_place_files, staged, target.data_dir)
        await asyncio.to_thread(_place_secret, staged, target.data_dir)
    engine = db.create_engine(target.database_url)
    try:
        await db.upgrade(engine)
        revision = await db.current_revision(engine)
    finally:
        await engine.dispose()
    return Restored(manifest, revision, added)


def describe(manifest: dict[str, Any]) -> str:
    """One line about a backup: when, which version and revision, what it holds."""
    files = manifest["files"]
    return (
        f"made {manifest['created_at']} by CloudHelp {manifest['app_version']}, "
        f"{manifest['database']['kind']} database at revision {manifest['alembic_revision']}, "
        f"{files['count']} files ({files['bytes']} bytes)"
    )
