"""The file store: one copy per content, written whole, whoever writes it at the same time."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cloudhelp.store.filestore import storage_path, store_bytes


def test_the_same_file_stored_at_once_by_many_is_kept_whole_once(tmp_path: Path) -> None:
    """A file sent twice at the same moment (both sides of a call, or a retry racing the first
    try) is written by two threads at once: each must succeed (a CI run's upload answered 500
    when both wrote one partial file and the second found it already renamed)."""
    writers, contents = 8, [bytes([n]) * (512 * 1024) for n in range(12)]
    start = threading.Barrier(writers)

    def store(data: bytes) -> str:
        start.wait()  # every writer of this content begins together
        return store_bytes(tmp_path, data)

    with ThreadPoolExecutor(writers) as pool:
        for data in contents:
            sha256 = hashlib.sha256(data).hexdigest()
            assert list(pool.map(store, [data] * writers)) == [sha256] * writers
            assert storage_path(tmp_path, sha256).read_bytes() == data
    left = sorted(p.name for p in (tmp_path / "files").rglob("*") if p.is_file())
    assert len(left) == len(contents), left  # no partial file left behind
