"""The correction notice's PDF: rendered once per notice round, off the event loop, kept in the
file store and served from there.

Drawing the PDF costs seconds of CPU (a CJK font is embedded), and its link reaches kiosks, so
rendering per request would be a cheap denial of service (issue 11 row 14). Invariant: at most
one rendering of a notice runs in a process at a time (later requests await it); across
processes the first to record its hash wins and the others serve the winner's file. A PDF whose
stored bytes are gone (purged with an identical file, or a lost disk) is drawn again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select, update

from cloudhelp.core import workers
from cloudhelp.domain import notice_pdf
from cloudhelp.domain.notice_text import NoticeText
from cloudhelp.store import filestore
from cloudhelp.store.db import Database
from cloudhelp.store.models import Case, CorrectionNotice

_Key = tuple[str, int]


class NoticePdfs:
    """Stored notice PDFs of one server process."""

    def __init__(self, database: Database, data_dir: Path) -> None:
        self._db = database
        self._data_dir = data_dir
        self._rendering: dict[_Key, asyncio.Task[bytes]] = {}
        self.renders = 0  # how many PDFs this process drew (tests and logs read it)

    async def pdf(self, text: NoticeText) -> bytes:
        """The notice's PDF bytes; raises notice_pdf.FontMissing when none can be drawn."""
        key = (text.number, text.round)
        recorded = await self._stored_hash(key)
        stored = await self._read(recorded)
        if stored is not None:
            return stored
        task = self._rendering.get(key)
        if task is None:
            task = asyncio.create_task(self._render_and_keep(key, text, recorded))
            self._rendering[key] = task
            task.add_done_callback(lambda _t: self._rendering.pop(key, None))
        return await asyncio.shield(task)

    async def _stored_hash(self, key: _Key) -> str | None:
        async with self._db.read() as session:
            return await session.scalar(
                select(CorrectionNotice.pdf_sha256)
                .join(Case, Case.id == CorrectionNotice.case_id)
                .where(Case.number == key[0], CorrectionNotice.round == key[1])
            )

    async def _read(self, sha256: str | None) -> bytes | None:
        if sha256 is None:
            return None
        path = filestore.storage_path(self._data_dir, sha256)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def _render_and_keep(self, key: _Key, text: NoticeText, missing: str | None) -> bytes:
        """Draw, store, and record the hash unless another process recorded one first
        (``missing``: the hash recorded before whose bytes are gone, if any)."""
        data = await workers.in_process(notice_pdf.render, text)
        self.renders += 1
        sha256 = await asyncio.to_thread(filestore.store_bytes, self._data_dir, data)
        notice_id = (
            select(CorrectionNotice.id)
            .join(Case, Case.id == CorrectionNotice.case_id)
            .where(Case.number == key[0], CorrectionNotice.round == key[1])
            .scalar_subquery()
        )
        recorded = (
            CorrectionNotice.pdf_sha256.is_(None)
            if missing is None
            else CorrectionNotice.pdf_sha256 == missing
        )
        async with self._db.write() as session:
            claimed = await session.execute(
                update(CorrectionNotice)
                .where(CorrectionNotice.id == notice_id, recorded)
                .values(pdf_sha256=sha256)
                .execution_options(synchronize_session=False)
            )
        if claimed.rowcount == 1:
            return data
        kept = await self._read(await self._stored_hash(key))  # another process was first
        return kept if kept is not None else data
