"""ICE server configuration, with short-lived TURN credentials (coturn's use-auth-secret)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class IceSettings:
    stun_urls: list[str] = field(default_factory=list)
    turn_urls: list[str] = field(default_factory=list)
    turn_secret: str | None = None
    turn_ttl_seconds: int = 3600
    # "relay" makes clients use TURN only (networks that need it, or to hide addresses).
    transport_policy: str = "all"


def turn_credentials(
    secret: str, name: str, ttl_seconds: int, now: float | None = None
) -> tuple[str, str]:
    """coturn REST scheme: user ``"<expiry>:<name>"``, password base64(HMAC-SHA1(secret, user))."""
    expiry = int((time.time() if now is None else now) + ttl_seconds)
    username = f"{expiry}:{name}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(settings: IceSettings, name: str) -> list[dict[str, Any]]:
    """The ``iceServers`` list handed to one client in ``welcome``."""
    servers: list[dict[str, Any]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    if settings.turn_urls:
        entry: dict[str, Any] = {"urls": list(settings.turn_urls)}
        if settings.turn_secret:
            username, credential = turn_credentials(
                settings.turn_secret, name, settings.turn_ttl_seconds
            )
            entry |= {"username": username, "credential": credential}
        servers.append(entry)
    return servers
