"""Files sent during a call, kept on the server against the ticket.

The receiving page uploads each file after it arrives over the data channel; the server checks
its SHA-256, size, type (by its first bytes, not only its name) and stores it once by content
hash under ``<data_dir>/files``. Nothing a resident sent is lost when a browser closes.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web
from sqlalchemy import select

from cloudhelp.callcenter import STAFF_COOKIE
from cloudhelp.core.errors import ApiError, bad_request, not_found
from cloudhelp.core.inputs import path_id
from cloudhelp.domain import accounts, audit, queue
from cloudhelp.http.state import AppState
from cloudhelp.store.models import Case, Staff, Ticket, TicketFile

MAX_FILE_BYTES = 25 * 1024 * 1024
SIGNATURES = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/pdf": (b"%PDF-",),
    "image/webp": (b"RIFF",),
}
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')
_INVISIBLE = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"})


def _visible(name: str) -> str:
    """``name`` without invisible format and control characters: bidi overrides and isolates
    (U+202A–U+202E, U+2066–U+2069) that make ``gpj.exe`` read as ``exe.jpg``, zero-width
    characters, and private-use or unassigned code points."""
    return "".join(c for c in name if unicodedata.category(c) not in _INVISIBLE)


def sanitise_name(name: str) -> str:
    """A file name safe to show and to offer for download: no path, no control, bidi or other
    invisible characters."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = _visible(_UNSAFE.sub("_", name)).strip(" .")
    name = re.sub(r"\s+", " ", name)
    if len(name) > 100:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 100 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else name[:100]
    return name or "file"


def type_matches(content_type: str, head: bytes) -> bool:
    if content_type == "image/webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    return any(head.startswith(sig) for sig in SIGNATURES.get(content_type, ()))


def storage_path(data_dir: Path, sha256: str) -> Path:
    return data_dir / "files" / sha256[:2] / sha256


def _write(path: Path, data: bytes) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(path)


def store_bytes(data_dir: Path, data: bytes) -> str:
    """Keep ``data`` in the file store (one copy per content); its SHA-256. Blocking: call it
    in a thread."""
    sha256 = hashlib.sha256(data).hexdigest()
    _write(storage_path(data_dir, sha256), data)
    return sha256


async def _caller(request: web.Request, ticket: Ticket) -> str:
    """'kiosk' or 'staff' if the caller may touch this ticket's files; 401/403 otherwise."""
    state = AppState.of(request.app)
    header = request.headers.get("Authorization", "")
    async with state.db.read() as session:
        try:
            if header.startswith("Kiosk "):
                kiosk = await accounts.kiosk_by_credential(session, header.removeprefix("Kiosk "))
                if kiosk.id != ticket.kiosk_id:
                    raise ApiError(403, "forbidden", "This ticket belongs to another kiosk.")
                return "kiosk"
            token = request.cookies.get(STAFF_COOKIE)
            if not token:
                raise ApiError(401, "not_signed_in", "Please sign in first.")
            staff: Staff = await accounts.staff_by_token(session, token)
        except accounts.AccountError as exc:
            raise ApiError(401, exc.code, exc.message) from None
    if staff.role == "staff" and staff.id != ticket.staff_id:
        raise ApiError(403, "forbidden", "Only the staff member who handles this ticket may.")
    return "staff"


async def _ticket(request: web.Request) -> Ticket:
    ticket_id = path_id(request, "ticket", "ticket")
    async with AppState.of(request.app).db.read() as session:
        ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise not_found("There is no such ticket.")
    return ticket


async def _staff_copy(request: web.Request, ticket: Ticket, sha256: str) -> TicketFile:
    """The copy staff stored of a file a kiosk says came from staff; 403 if there is none."""
    async with AppState.of(request.app).db.read() as session:
        row = await session.scalar(
            select(TicketFile)
            .where(
                TicketFile.ticket_id == ticket.id,
                TicketFile.sha256 == sha256,
                TicketFile.sender == "staff",
                TicketFile.uploaded_by == "staff",
            )
            .limit(1)
        )
    if row is None:
        raise ApiError(
            403, "forbidden", "A kiosk may keep only the files it sent itself (X-File-Sender)."
        )
    return row


def file_json(row: TicketFile) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "sha256": row.sha256,
        "size": row.size,
        "content_type": row.content_type,
        "sender": row.sender,
        "created_at": row.created_at.isoformat(),
        "purged_at": row.purged_at.isoformat() if row.purged_at else None,
        "url": f"/api/v1/tickets/{row.ticket_id}/files/{row.id}",
    }


async def upload(request: web.Request) -> web.Response:
    ticket = await _ticket(request)
    uploader = await _caller(request, ticket)
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type not in SIGNATURES:
        raise ApiError(
            415, "unsupported_type", "Only photos (JPEG, PNG, WebP) and PDF files can be kept."
        )
    expected = request.headers.get("X-File-SHA256", "").lower()
    if not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise bad_request("Header X-File-SHA256 must hold the file's SHA-256 in hex.")
    sender = request.headers.get("X-File-Sender", uploader)
    if sender not in ("kiosk", "staff"):
        raise bad_request("Header X-File-Sender must be kiosk or staff.")
    if uploader == "kiosk" and sender != "kiosk":
        # A kiosk cannot vouch for what staff sent: it could put a forged "official" document in
        # the record. Staff keep the files they send; the kiosk's copy is only matched to those.
        copy = await _staff_copy(request, ticket, expected)
        return web.json_response({"file": file_json(copy)}, dumps=AppState.of(request.app).dumps)
    if (request.content_length or 0) > MAX_FILE_BYTES:
        raise ApiError(413, "too_large", f"A file may be at most {MAX_FILE_BYTES // 2**20} MiB.")
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise ApiError(
                413, "too_large", f"A file may be at most {MAX_FILE_BYTES // 2**20} MiB."
            )
        digest.update(chunk)
        chunks.append(chunk)
    data = b"".join(chunks)
    if digest.hexdigest() != expected:
        raise ApiError(
            422,
            "checksum_mismatch",
            "The file changed on the way (SHA-256 differs); send it again.",
        )
    if not type_matches(content_type, data[:16]):
        raise ApiError(415, "type_mismatch", f"The file's content is not {content_type}.")
    name = sanitise_name(unquote(request.headers.get("X-File-Name", "file")))
    state = AppState.of(request.app)
    await asyncio.to_thread(_write, storage_path(state.settings.data_dir, expected), data)
    async with state.db.write() as session:
        row = await session.scalar(
            select(TicketFile).where(
                TicketFile.ticket_id == ticket.id,
                TicketFile.sha256 == expected,
                TicketFile.name == name,
            )
        )
        created = row is None
        if row is None:
            row = TicketFile(
                ticket_id=ticket.id,
                sha256=expected,
                name=name,
                content_type=content_type,
                size=size,
                sender=sender,
                uploaded_by=uploader,
            )
            session.add(row)
            await session.flush()
            await queue.record(
                session, ticket.id, "file", None, sha256=expected, size=size, sender=sender
            )
        body = file_json(row)
    return web.json_response({"file": body}, status=201 if created else 200, dumps=state.dumps)


async def list_files(request: web.Request) -> web.Response:
    ticket = await _ticket(request)
    await _caller(request, ticket)
    state = AppState.of(request.app)
    async with state.db.read() as session:
        rows = (
            await session.scalars(
                select(TicketFile).where(TicketFile.ticket_id == ticket.id).order_by(TicketFile.id)
            )
        ).all()
    return web.json_response({"files": [file_json(r) for r in rows]}, dumps=state.dumps)


async def download(request: web.Request) -> web.StreamResponse:
    ticket = await _ticket(request)
    caller = await _caller(request, ticket)
    state = AppState.of(request.app)
    async with state.db.read() as session:
        row = await session.get(TicketFile, path_id(request, "file", "file"))
    if row is None or row.ticket_id != ticket.id:
        raise not_found("There is no such file for this ticket.")
    if row.purged_at is not None:
        raise ApiError(410, "file_purged", "This file was purged after its retention period.")
    if caller == "staff":  # recorded before the file goes out
        async with state.db.write() as session:
            staff = await accounts.staff_by_token(session, request.cookies[STAFF_COOKIE])
            number = await session.scalar(select(Case.number).where(Case.id == ticket.case_id))
            await audit.append(session, audit.staff_actor(staff), "file.downloaded",
                               subject_kind="file", subject=str(row.id), case_number=number,
                               sha256=row.sha256, name=row.name, ticket=ticket.id)  # fmt: skip
    path = storage_path(state.settings.data_dir, row.sha256)
    response = web.FileResponse(path)
    response.content_type = row.content_type
    response.headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(row.name, safe='')}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/tickets/{ticket}/files", upload)
    app.router.add_get("/api/v1/tickets/{ticket}/files", list_files)
    app.router.add_get(r"/api/v1/tickets/{ticket}/files/{file:\d+}", download)
