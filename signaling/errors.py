"""Stable error codes of the signaling protocol (docs/protocol.md lists them all)."""

from __future__ import annotations


class SignalingError(Exception):
    """An error answered with an ``error`` frame; the connection stays up unless ``close``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# WebSocket close codes (4000–4999 are for applications).
CLOSE_FLOOD = 4008
CLOSE_AUTH_FAILED = 4001
CLOSE_REVOKED = 4003
CLOSE_HELLO_TIMEOUT = 4002
CLOSE_REPLACED = 4009
CLOSE_SESSION_ENDED = 4000
