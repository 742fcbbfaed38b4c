"""Settings: command-line flags > environment (CLOUDHELP_*) > config file (TOML) > defaults."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, HttpUrl, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# A trusted proxy: one address or a network.
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str], setting: str = "trusted_proxies") -> tuple[Network, ...]:
    """``["10.0.0.5", "172.16.0.0/12"]`` as networks; a bad entry raises ValueError naming it
    (and the ``setting`` it came from)."""
    networks: list[Network] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{setting}: {value!r} is not an address or network") from None
    return tuple(networks)


def default_data_dir() -> Path:
    """Where the embedded database and stored files live unless configured otherwise."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cloudhelp"


def default_node_id() -> str:
    """This process's name among several nodes: host name and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _config_file() -> Path | None:
    value = os.environ.get("CLOUDHELP_CONFIG")
    return Path(value) if value else None


class Settings(BaseSettings):
    """All CloudHelp settings; see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="CLOUDHELP_", extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    log_level: str = "INFO"
    # District code used in case numbers (Ganjingzi District, Dalian: 210211).
    district_code: str = "210211"
    # Signaling: how long a dropped session waits to be resumed, and the WebSocket heartbeat.
    grace_seconds: float = Field(default=30.0, gt=0)
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    # Per-connection message rate limit (messages per second, and the burst allowed).
    rate_per_second: float = Field(default=40.0, gt=0)
    rate_burst: float = Field(default=80.0, gt=0)
    # ICE servers handed to clients; with turn_secret, short-lived TURN credentials per client.
    stun_urls: list[str] = []
    turn_urls: list[str] = []
    turn_secret: str | None = None
    turn_ttl_seconds: int = Field(default=3600, gt=0)
    ice_transport_policy: Literal["all", "relay"] = "all"
    # Pre-call network checks (docs/protocol.md, netcheck.offer): echo peers at once (more are
    # refused with netcheck_busy), and how long one may live at most, in seconds.
    netcheck_max_peers: int = Field(default=4, ge=1, le=100)
    netcheck_seconds: float = Field(default=10.0, ge=2, le=60)
    # A correction session rings the staff member who did the pre-review first, for this long.
    prefer_reviewer_seconds: float = Field(default=120.0, ge=0)
    # A bad rating's follow-up is due this many working days later.
    follow_up_working_days: int = Field(default=5, ge=1, le=60)
    # Kiosk: with nobody touching it this long (seconds) away from the home screen, it asks
    # "还在吗？" and counts down kiosk_idle_warning_seconds, then goes home and forgets the visit.
    # Waiting in the queue and calls are never interrupted.
    kiosk_idle_seconds: float = Field(default=90.0, ge=5)
    kiosk_idle_warning_seconds: float = Field(default=20.0, ge=1)
    # How often time-out warnings (超时预警) are checked, in seconds; 0 turns the background check
    # off (tests call check_warnings with the moment they want, never racing the loop).
    warning_check_seconds: float = Field(default=5.0, ge=0)
    # Metrics: abandons quicker than this are mistaken taps, kept apart; answers within this
    # count towards the service level.
    short_abandon_seconds: float = Field(default=10.0, ge=0)
    service_level_seconds: float = Field(default=60.0, gt=0)
    # Sign-in throttling: failed sign-ins per account from one address, and per account from
    # any address, within the window; never per address alone (a hall shares one NAT address).
    login_failures_per_address: int = Field(default=5, ge=1)
    login_failures_per_account: int = Field(default=20, ge=1)
    login_window_seconds: float = Field(default=300.0, gt=0)
    # Kiosk case lookup (a correction session): failed lookups (wrong number or last four digits)
    # per case number from any kiosks, and per kiosk for any numbers, within the window, before
    # lookups are refused (429 lookup_throttled). A found case comes with a grant that
    # `ticket.take {case}` must show, valid this long and only at that kiosk. docs/security.md.
    lookup_failures_per_case: int = Field(default=5, ge=1)
    lookup_failures_per_kiosk: int = Field(default=20, ge=1)
    lookup_window_seconds: float = Field(default=900.0, gt=0)
    case_grant_seconds: float = Field(default=600.0, ge=10, le=86400)
    # Public booking (/book, no staff signed in): attempts from one address within the window
    # (refused ones too: a script must not try its way through) before further ones are refused
    # (429 booking_throttled); a phone number holds one appointment to come per item (409
    # already_booked). Staff booking for residents are not limited. docs/appointments.md.
    bookings_per_address: int = Field(default=20, ge=1)
    booking_window_seconds: float = Field(default=3600.0, gt=0)
    # A correction notice's signed link (for kiosks, without signing in) works this many days
    # after it was handed out; then it answers 410 notice_link_expired.
    notice_link_days: int = Field(default=30, ge=1, le=3650)
    # Retention of files sent in calls (ID-card and document photos): kept this many days after
    # the case ends (concluded or not accepted; a session without a case: after it closed), then
    # purged by a check every file_purge_check_seconds (0 turns the server's check off;
    # `cloudhelp files purge` runs it by hand). docs/security.md.
    file_retention_days: int = Field(default=180, ge=1, le=36500)
    file_purge_check_seconds: float = Field(default=3600.0, ge=0)
    # Origins (scheme://host[:port]) besides the request's own host whose pages may send
    # state-changing requests and open the WebSocket; docs/security.md#headers-and-origins.
    allowed_origins: list[str] = []
    # The address residents reach the service at (e.g. https://ybb.example.gov.cn/): appointment
    # slips print its /book page, where a booking is moved or cancelled. Unset: the address the
    # slip was asked at. docs/appointments.md.
    public_url: HttpUrl | None = None
    # Reverse proxies (addresses or networks, e.g. "127.0.0.1" or "10.0.0.0/8") whose
    # X-Forwarded-For and X-Forwarded-Proto are believed; from anyone else they are ignored.
    # docs/security.md#behind-a-proxy.
    trusted_proxies: list[str] = []
    # The garbage collector's full pass (300-400 ms with 5,000 sessions open) runs when no call
    # is in progress, at least a minute apart, and at the latest this many seconds after the
    # last one whatever the load (core/gcpolicy.py; `cloudhelp serve` only).
    gc_full_pass_max_seconds: float = Field(default=600.0, ge=1, le=86400)
    # Clients (addresses or networks) that may read /metrics; anyone else gets 403, and so does
    # a request forwarded by a proxy not in trusted_proxies. docs/operations.md.
    metrics_networks: list[str] = ["127.0.0.0/8", "::1/128"]
    # Signs links such as a correction notice's; generated once into data_dir when not set.
    secret_key: str | None = None
    # HTTPS served by CloudHelp itself (both files PEM; reloaded on SIGHUP), and a plain-HTTP
    # port answering 308 to the https URL. docs/deployment.md.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    http_redirect_port: int | None = Field(default=None, ge=1, le=65535)
    # Several server processes ("nodes") on one Redis (redis://host:port/db): sessions on one
    # node are reached from the others (signaling/redis_broker.py). None: one process, the
    # in-process broker. Needs PostgreSQL. Each node's name, unique among them (host-pid by
    # default). docs/scaling.md.
    redis_url: str | None = None
    node_id: str = Field(
        default_factory=default_node_id, min_length=1, max_length=100, pattern=r"^[^\s]+$"
    )
    # With redis_url: relayed call messages go straight to the node holding their receiver,
    # on a TCP link each node listens for at node_link_host:node_link_port (0: any free port);
    # the host must be an address the other nodes reach this node at (its private address
    # when the nodes run on several machines). Authenticated with secret_key. Off: through
    # Redis only. docs/scaling.md.
    node_links: bool = True
    node_link_host: str = "127.0.0.1"
    node_link_port: int = Field(default=0, ge=0, le=65535)
    # With redis_url, on SIGTERM: how long a node keeps its sessions for their clients to
    # resume on other nodes after it closed their sockets with 1001 (docs/scaling.md).
    drain_seconds: float = Field(default=10.0, ge=0)

    @model_validator(mode="after")
    def _nodes_share_postgresql(self) -> Settings:
        if self.redis_url is not None and self.effective_database_url.startswith("sqlite"):
            raise ValueError(
                "redis_url runs several server processes, which must share one PostgreSQL "
                "database: set database_url to a postgresql:// URL (SQLite serves one process)"
            )
        return self

    @model_validator(mode="after")
    def _tls_complete(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both files or neither")
        if self.http_redirect_port is not None and self.tls_cert is None:
            raise ValueError("http_redirect_port redirects to HTTPS: it needs tls_cert and tls_key")
        if self.http_redirect_port is not None and self.http_redirect_port == self.port:
            raise ValueError("http_redirect_port must differ from port")
        return self

    @field_validator("public_url")
    @classmethod
    def _address_alone(cls, value: HttpUrl | None) -> HttpUrl | None:
        if value is not None and value.path not in (None, "", "/"):
            raise ValueError("give the service's address alone (https://host[:port]/), no path")
        return value

    @field_validator("trusted_proxies", "metrics_networks")
    @classmethod
    def _valid_networks(cls, value: list[str], info: ValidationInfo) -> list[str]:
        parse_networks(value, str(info.field_name))  # raises ValueError naming the bad entry
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def effective_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def node_link_key(self) -> bytes:
        """The key the nodes' links are authenticated with, derived from ``secret_key`` (the
        same on every node), so that it signs nothing else."""
        secret = self.effective_secret_key.encode()
        return hmac.new(secret, b"cloudhelp node link", hashlib.sha256).digest()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'cloudhelp.db'}"


def load_settings(**overrides: Any) -> Settings:
    """Settings with the given flag values on top (None means 'not given')."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**given)
