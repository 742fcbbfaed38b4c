"""The file store: files sent in calls and drawn notice PDFs, kept once by content hash under
``<data_dir>/files/<first two hex digits>/<sha256>``.

Also what decides how bytes are kept: the types the store accepts (photos and PDF, checked by
the file's first bytes, not only its name; anything else as ``application/octet-stream``), and
names made safe to show and offer for download.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path

# The types kept, with the first bytes each must start with.
SIGNATURES = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/pdf": (b"%PDF-",),
    "image/webp": (b"RIFF",),
}
# Any other file sent in a call (a Word document, a HEIC photo, a text file …) is kept as it
# came under this type: never shown in a page, only ever served as a download.
OTHER_TYPE = "application/octet-stream"
# The types a file may be kept under: the photos and PDF above (checked by their first bytes,
# shown inline) and OTHER_TYPE.
KEPT_TYPES = (*SIGNATURES, OTHER_TYPE)
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
    """Whether a file's first bytes are those of ``content_type`` (one of SIGNATURES)."""
    if content_type == "image/webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    return any(head.startswith(sig) for sig in SIGNATURES.get(content_type, ()))


def storage_path(data_dir: Path, sha256: str) -> Path:
    """Where the file with this SHA-256 is kept (whether or not it is there)."""
    return data_dir / "files" / sha256[:2] / sha256


def write_once(path: Path, data: bytes) -> None:
    """Write ``data`` at ``path`` unless a file is there already (same hash, same bytes),
    through a partial file of this writer's own renamed into place: writers of the same
    content at once each rename a whole copy, and the last one stays. Blocking: call it in a
    thread."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as partial:
            partial.write(data)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def store_bytes(data_dir: Path, data: bytes) -> str:
    """Keep ``data`` in the file store (one copy per content); its SHA-256. Blocking: call it
    in a thread."""
    sha256 = hashlib.sha256(data).hexdigest()
    write_once(storage_path(data_dir, sha256), data)
    return sha256
