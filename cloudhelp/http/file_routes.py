"""Files sent during a call, kept on the server against the ticket: upload, list, download.

The receiving page uploads each file after it arrives over the data channel; the server checks
its SHA-256, size, type (by its first bytes, not only its name) and keeps it once by content
hash in the file store (:mod:`cloudhelp.store.filestore`). Nothing a resident sent is lost when
a browser closes. A photo or PDF is served inline; any other file is kept as
``application/octet-stream`` and only ever served as an attachment of that type, so no page
ever renders what a peer sent (HTML, SVG …) on this origin.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

from cloudhelp.domain import ticket_files
from cloudhelp.http.auth import current_kiosk, current_staff, kiosk_credential
from cloudhelp.http.bodies import path_id
from cloudhelp.http.errors import ApiError, bad_request, not_found
from cloudhelp.http.state import AppState
from cloudhelp.store.filestore import (
    KEPT_TYPES,
    OTHER_TYPE,
    SIGNATURES,
    sanitise_name,
    storage_path,
    type_matches,
    write_once,
)
from cloudhelp.store.models import Kiosk, Staff, Ticket, TicketFile

MAX_FILE_BYTES = 25 * 1024 * 1024


async def _caller(request: web.Request, ticket: Ticket) -> Kiosk | Staff:
    """The kiosk or staff member who may touch this ticket's files; 401/403 otherwise."""
    if kiosk_credential(request) is not None:
        kiosk = await current_kiosk(request)
        if kiosk.id != ticket.kiosk_id:
            raise ApiError(403, "forbidden", "This ticket belongs to another kiosk.")
        return kiosk
    staff = await current_staff(request)
    if staff.role == "staff" and staff.id != ticket.staff_id:
        raise ApiError(403, "forbidden", "Only the staff member who handles this ticket may.")
    return staff


def _kind(caller: Kiosk | Staff) -> str:
    return "kiosk" if isinstance(caller, Kiosk) else "staff"


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
        row = await ticket_files.staff_copy(session, ticket.id, sha256)
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


def _too_large() -> ApiError:
    return ApiError(413, "too_large", f"A file may be at most {MAX_FILE_BYTES // 2**20} MiB.")


def _declared(request: web.Request, uploader: str) -> tuple[str, str, str]:
    """What the headers say of the file: its type, SHA-256 and sender; 415/400 otherwise."""
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type not in KEPT_TYPES:
        raise ApiError(
            415,
            "unsupported_type",
            "Photos (JPEG, PNG, WebP) and PDF files are kept under their type, any other file "
            f"as {OTHER_TYPE}.",
        )
    expected = request.headers.get("X-File-SHA256", "").lower()
    if not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise bad_request("Header X-File-SHA256 must hold the file's SHA-256 in hex.")
    sender = request.headers.get("X-File-Sender", uploader)
    if sender not in ("kiosk", "staff"):
        raise bad_request("Header X-File-Sender must be kiosk or staff.")
    return content_type, expected, sender


async def _received(request: web.Request, content_type: str, expected: str) -> bytes:
    """The body, at most MAX_FILE_BYTES, checked against its SHA-256 and (a photo or PDF) its
    type's first bytes; 413, 422 or 415 otherwise."""
    if (request.content_length or 0) > MAX_FILE_BYTES:
        raise _too_large()
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise _too_large()
        digest.update(chunk)
        chunks.append(chunk)
    if digest.hexdigest() != expected:
        raise ApiError(
            422,
            "checksum_mismatch",
            "The file changed on the way (SHA-256 differs); send it again.",
        )
    data = b"".join(chunks)
    if content_type in SIGNATURES and not type_matches(content_type, data[:16]):
        raise ApiError(415, "type_mismatch", f"The file's content is not {content_type}.")
    return data


async def upload(request: web.Request) -> web.Response:
    ticket = await _ticket(request)
    uploader = _kind(await _caller(request, ticket))
    content_type, expected, sender = _declared(request, uploader)
    state = AppState.of(request.app)
    if uploader == "kiosk" and sender != "kiosk":
        # A kiosk cannot vouch for what staff sent: it could put a forged "official" document in
        # the record. Staff keep the files they send; the kiosk's copy is only matched to those.
        copy = await _staff_copy(request, ticket, expected)
        return web.json_response({"file": file_json(copy)}, dumps=state.dumps)
    data = await _received(request, content_type, expected)
    name = sanitise_name(unquote(request.headers.get("X-File-Name", "file")))
    await asyncio.to_thread(write_once, storage_path(state.settings.data_dir, expected), data)
    sent = ticket_files.Sent(expected, name, content_type, len(data), sender, uploader)
    async with state.db.write() as session:
        row, created = await ticket_files.keep(session, ticket.id, sent)
        body = file_json(row)
    return web.json_response({"file": body}, status=201 if created else 200, dumps=state.dumps)


async def list_files(request: web.Request) -> web.Response:
    ticket = await _ticket(request)
    await _caller(request, ticket)
    state = AppState.of(request.app)
    async with state.db.read() as session:
        rows = await ticket_files.files_of(session, ticket.id)
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
    if isinstance(caller, Staff):  # recorded before the file goes out
        async with state.db.write() as session:
            await ticket_files.audit_download(session, caller, row, ticket)
    path = storage_path(state.settings.data_dir, row.sha256)
    response = web.FileResponse(path)
    # A photo or PDF (its first bytes checked when it was kept) may be shown; anything else is
    # only ever a download of bytes, whatever its name says.
    inline = row.content_type in SIGNATURES
    response.content_type = row.content_type if inline else OTHER_TYPE
    disposition = "inline" if inline else "attachment"
    response.headers["Content-Disposition"] = (
        f"{disposition}; filename*=UTF-8''{quote(row.name, safe='')}"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/tickets/{ticket}/files", upload)
    app.router.add_get("/api/v1/tickets/{ticket}/files", list_files)
    app.router.add_get(r"/api/v1/tickets/{ticket}/files/{file:\d+}", download)
