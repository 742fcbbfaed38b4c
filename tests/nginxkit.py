"""nginx for the tests: deploy/nginx/cloudhelp.conf itself, its names, ports and paths templated
to the test's (each replaced text must be found, so the tests follow the file), run by Debian's
nginx as a foreground process on loopback in front of one or several CloudHelp servers, and
stopped by its PID; and an HTTPS client on another loopback address that trusts the test CA."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.tlskit import HOSTNAME, TestCA, free_port, wait_for_port
from web import STATIC_DIR

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "nginx" / "cloudhelp.conf"
# A client on another loopback address than the proxy's (127.0.0.1): never a trusted proxy.
CLIENT_ADDRESS = "127.0.0.2"


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found:
        pytest.fail("nginx is missing: run the suite with `bash scripts/test.sh`.")
    return found


def templated_site(
    app_ports: Sequence[int],
    http_port: int,
    https_port: int,
    folder: Path,
    ca: TestCA,
    backup_ports: Sequence[int] = (),
) -> str:
    """deploy/nginx/cloudhelp.conf with the test's ports (one upstream server per app port, with
    the site's advice for several nodes; ``backup_ports`` are used only while every other one
    fails), name, certificate and paths."""
    cert, key, _ = ca.issue("nginx")
    site = SITE.read_text()
    upstream = "\n    ".join(
        [f"server 127.0.0.1:{port} max_fails=0;" for port in app_ports]
        + [f"server 127.0.0.1:{port} backup;" for port in backup_ports]
    )
    replacements = {
        "server 127.0.0.1:8080;": upstream,
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "/etc/letsencrypt/live/hall.example.gov.cn/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/hall.example.gov.cn/privkey.pem": str(key),
        "hall.example.gov.cn": HOSTNAME,
        "/opt/cloudhelp/venv/lib/python3.11/site-packages/web/static/": f"{STATIC_DIR}/",
        "/var/www/letsencrypt": str(folder / "acme"),
    }
    for old, new in replacements.items():
        assert old in site, f"{old!r} is no longer in {SITE}: update this test"
        site = site.replace(old, new)
    # The IPv6 listeners: the test's namespace listens on 127.0.0.1 only.
    ipv6 = [line for line in site.splitlines() if "listen [::]:" in line]
    assert len(ipv6) == 2, ipv6
    return "\n".join(line for line in site.splitlines() if "listen [::]:" not in line)


@dataclass
class Nginx:
    http_port: int
    https_port: int

    @property
    def base_url(self) -> str:
        return f"https://{HOSTNAME}:{self.https_port}"


@asynccontextmanager
async def nginx_in_front(
    app_ports: int | Sequence[int], folder: Path, ca: TestCA, backup_ports: Sequence[int] = ()
) -> AsyncIterator[Nginx]:
    """nginx (not a daemon, one worker) with the deploy/ site in front of 127.0.0.1's
    ``app_ports`` (one server, or several nodes), and ``backup_ports`` behind them."""
    ports = [app_ports] if isinstance(app_ports, int) else list(app_ports)
    http_port, https_port = free_port(), free_port()
    site = templated_site(ports, http_port, https_port, folder, ca, backup_ports)
    _write_config(folder, site)
    command = [nginx_binary(), "-p", str(folder), "-c", str(folder / "nginx.conf"),
               "-e", str(folder / "error.log")]  # fmt: skip
    check = await asyncio.create_subprocess_exec(
        *command, "-t", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    said = (await check.communicate())[0].decode()
    assert check.returncode == 0, said
    assert "[warn]" not in said, said
    process = await asyncio.create_subprocess_exec(*command)
    try:
        await wait_for_port(https_port, what="nginx")
        await wait_for_port(http_port, what="nginx")
        yield Nginx(http_port, https_port)
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise


def _write_config(folder: Path, site: str) -> None:
    """The test's nginx.conf (foreground, files in ``folder``) including the templated site."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "site.conf").write_text(site)
    (folder / "nginx.conf").write_text(
        f"""
daemon off;
worker_processes 1;
{"user root root;" if os.geteuid() == 0 else ""}
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/site.conf;
}}
"""
    )


def https_client(ca: TestCA) -> aiohttp.ClientSession:
    """An HTTP client on 127.0.0.2 trusting the test CA, resolving cloudhelp.test locally, with
    no limit on its connections (benchmarks/scaleout.py holds a hundred WebSockets)."""
    connector = aiohttp.TCPConnector(
        limit=0,
        ssl=ca.client_context(),
        local_addr=(CLIENT_ADDRESS, 0),
        resolver=_LoopbackResolver(),
    )
    return aiohttp.ClientSession(connector=connector)


class _LoopbackResolver(aiohttp.abc.AbstractResolver):
    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[dict[str, Any]]:
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET,
                 "proto": 0, "flags": socket.AI_NUMERICHOST}]  # fmt: skip

    async def close(self) -> None:
        return None
