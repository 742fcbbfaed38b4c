"""Signed, expiring tokens: ``<expiry>.<HMAC-SHA256>`` over a purpose, the values the token
binds and its expiry (Unix seconds), keyed with the server's ``secret_key``.

Used for correction-notice links (bound to a case number and round) and for the grant a kiosk's
case lookup hands out (bound to a case number and the kiosk). A token made for one purpose or
one set of values never checks for another.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time

NOTICE = "notice"
CASE_GRANT = "case-grant"
_TOKEN = re.compile(r"^([0-9]{1,12})\.([0-9a-f]{32})$")


class TokenRefused(Exception):
    """A token that does not check: ``expired`` (signed by us, past its expiry) or ``invalid``
    (missing, malformed, or not signed by us for these values)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _mac(key: bytes, purpose: str, values: tuple[str | int, ...], expires: int) -> str:
    message = json.dumps([purpose, *values, expires], ensure_ascii=False).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def sign(
    key: bytes,
    purpose: str,
    values: tuple[str | int, ...],
    lifetime: float,
    now: float | None = None,
) -> str:
    """A token for ``purpose`` and ``values``, good for ``lifetime`` seconds from ``now``
    (Unix seconds; default: the present)."""
    until = int((time.time() if now is None else now) + lifetime)
    return f"{until}.{_mac(key, purpose, values, until)}"


def check(
    key: bytes,
    token: str | None,
    purpose: str,
    values: tuple[str | int, ...],
    now: float | None = None,
) -> int:
    """The token's expiry if it was signed for ``purpose`` and ``values`` and has not expired;
    raises ``TokenRefused`` otherwise (the signature is checked before the expiry, so only a
    genuine token is ever called expired)."""
    found = _TOKEN.match(token or "")
    if found is None:
        raise TokenRefused("invalid")
    expires = int(found[1])
    if not hmac.compare_digest(found[2], _mac(key, purpose, values, expires)):
        raise TokenRefused("invalid")
    if expires <= (time.time() if now is None else now):
        raise TokenRefused("expired")
    return expires
