"""Hosts behind NAT for multi-host tests: network namespaces, veth links, nftables, tbf, delay.

Everything is created inside the test run's own network namespace (scripts/test.sh runs the
suite in one that has only loopback) and deleted afterwards; traffic flows only between the
namespaces made here. The topology::

    kiosk 10.1.0.2 ── lan|natk|wan 198.51.100.11 ─┐
                                                   ├─ br0 198.51.100.1 (pub: CloudHelp, coturn)
    staff 10.2.0.2 ── lan|nats|wan 198.51.100.12 ─┘

natk and nats masquerade their LAN behind their WAN address. Impairments are nftables rules
(direct peer traffic blocked, UDP blocked, random loss with ``numgen random``), a tbf qdisc (a
bottleneck; this kernel has no netem) and :class:`DelayRelay`, a userspace UDP/TCP relay that
holds every packet or chunk for a fixed time, placed in natk's path by an nftables redirect.

Run as ``python -m tests.netkit relay DELAY PROTO:PORT:HOST:PORT…`` it is that relay.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from tests.browserkit import chromium_path
from tests.callkit import CallServer, running_server

PUBLIC = "198.51.100.1"  # the public side: CloudHelp and coturn
NAT_WAN = {"kiosk": "198.51.100.11", "staff": "198.51.100.12"}
LAN = {"kiosk": "10.1.0", "staff": "10.2.0"}
SERVER_PORT = 8000  # CloudHelp's port on the public address
CLONE_NEWNET = 0x40000000
ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def sh(*argv: str, input_text: str | None = None, check: bool = True) -> str:
    """Run one command (ip, nft, tc…) and return its output; a failure says what failed."""
    done = subprocess.run(argv, input=input_text, capture_output=True, text=True, timeout=20)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout}")
    return done.stdout


@dataclass
class Host:
    """One network namespace."""

    name: str

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def ip(self, *args: str, check: bool = True) -> str:
        return sh("ip", "-n", self.name, *args, check=check)

    def run(self, *argv: str, input_text: str | None = None, check: bool = True) -> str:
        return sh("ip", "netns", "exec", self.name, *argv, input_text=input_text, check=check)

    def nft(self, script: str) -> None:
        self.run("nft", "-f", "-", input_text=script)

    def drop_table(self, family: str, table: str) -> None:
        self.run("nft", "delete", "table", family, table, check=False)

    def command(self, *argv: str) -> list[str]:
        """``argv`` as a command line that runs in this namespace (for a child process)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def in_namespace(self, make: Callable[[], T]) -> T:
        """Call ``make`` in this namespace (on a short-lived thread that enters it with setns):
        a socket made there stays there, whichever thread uses it afterwards."""
        result: list[T] = []
        errors: list[BaseException] = []

        def enter() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            try:
                with open(self.path) as ns:
                    if libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns into {self.name}")
                result.append(make())
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=enter)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]
        return result[0]

    def listen(self, host: str, port: int) -> socket.socket:
        """A listening TCP socket on ``host:port`` in this namespace."""

        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
            sock.setblocking(False)
            return sock

        return self.in_namespace(make)

    def can_connect(self, host: str, port: int) -> bool:
        def attempt() -> bool:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                return sock.connect_ex((host, port)) == 0

        return self.in_namespace(attempt)


class Network:
    """The five namespaces above, their links, addresses, routes and NAT."""

    def __init__(self, prefix: str | None = None) -> None:
        # Names in /run/netns are shared by every run on the machine (each in its own PID
        # namespace, where PIDs repeat): a random prefix keeps concurrent runs apart.
        prefix = prefix or f"ch{secrets.token_hex(4)}"
        self.pub = Host(f"{prefix}-pub")
        self.nat = {side: Host(f"{prefix}-nat{side[0]}") for side in LAN}
        self.host = {side: Host(f"{prefix}-{side}") for side in LAN}

    @property
    def all(self) -> list[Host]:
        return [self.pub, *self.nat.values(), *self.host.values()]

    def up(self) -> None:
        for host in self.all:
            sh("ip", "netns", "add", host.name)
            host.ip("link", "set", "lo", "up")
        pub = self.pub
        pub.ip("link", "add", "br0", "type", "bridge")
        pub.ip("addr", "add", f"{PUBLIC}/24", "dev", "br0")
        pub.ip("link", "set", "br0", "up")
        for side, lan in LAN.items():
            nat, host = self.nat[side], self.host[side]
            port = f"to{side}"
            pub.ip("link", "add", port, "type", "veth", "peer", "name", "wan", "netns", nat.name)
            pub.ip("link", "set", port, "master", "br0", "up")
            nat.ip("addr", "add", f"{NAT_WAN[side]}/24", "dev", "wan")
            nat.ip("link", "set", "wan", "up")
            nat.ip("link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", host.name)
            nat.ip("addr", "add", f"{lan}.1/24", "dev", "lan")
            nat.ip("link", "set", "lan", "up")
            nat.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
            # Masquerade, and a stateful firewall: nothing unasked-for from outside reaches the
            # NAT itself (so a peer's early check leaves no conntrack entry that would make the
            # NAT map this host's own later packets to another port).
            nat.nft(
                "table ip nat {\n"
                " chain postrouting { type nat hook postrouting priority 100; "
                'oifname "wan" masquerade; }\n'
                ' chain input { type filter hook input priority 0; iifname "wan" '
                "ct state new drop; }\n"
                "}\n"
            )
            host.ip("addr", "add", f"{lan}.2/24", "dev", "eth0")
            host.ip("link", "set", "eth0", "up")
            host.ip("route", "add", "default", "via", f"{lan}.1")

    def down(self) -> None:
        for host in self.all:
            sh("ip", "netns", "del", host.name, check=False)

    # ---------------------------------------------------------------- firewalls and impairments

    def only_to_public(self) -> None:
        """Each NAT lets its LAN reach the public server only, and lets in only its replies:
        host and server-reflexive paths between the peers fail; TURN is the only way through."""
        for nat in self.nat.values():
            nat.nft(
                "table inet only_public {\n"
                " chain forward { type filter hook forward priority 0;\n"
                f'  iifname "lan" ip daddr != {PUBLIC} drop;\n'
                f'  iifname "wan" ip saddr != {PUBLIC} drop; }}\n'
                "}\n"
            )

    def only_ports(self, side: str, tcp: list[int], udp: list[int]) -> None:
        """``side``'s NAT lets its LAN out to these ports only (a firewall that allows web and
        TURN): that side must then reach the other through its own TURN allocation."""
        tcp_ports, udp_ports = ", ".join(map(str, tcp)), ", ".join(map(str, udp))
        self.nat[side].nft(
            "table inet only_ports {\n"
            " chain forward { type filter hook forward priority 0;\n"
            f'  iifname "lan" tcp dport != {{ {tcp_ports} }} drop;\n'
            f'  iifname "lan" udp dport != {{ {udp_ports} }} drop; }}\n'
            "}\n"
        )

    def block_udp(self) -> None:
        """Each NAT drops all UDP from and to its LAN (a network that lets only TCP out)."""
        for nat in self.nat.values():
            nat.nft(
                "table inet no_udp {\n"
                " chain forward { type filter hook forward priority 0; meta l4proto udp drop; }\n"
                ' chain input { type filter hook input priority 0; iifname "lan" '
                "meta l4proto udp drop; }\n"
                "}\n"
            )

    def lossy(self, side: str, percent: int) -> None:
        """Drop ``percent`` % of packets at random each way on ``side``'s link (nftables
        ``numgen random``; ingress hooks, so no local sender sees an error)."""
        rule = f"numgen random mod 100 < {percent} drop"
        self.host[side].nft(
            "table inet loss {\n"
            f" chain prerouting {{ type filter hook prerouting priority -300; {rule}; }}\n"
            "}\n"
        )
        self.nat[side].nft(
            "table inet loss {\n"
            " chain prerouting { type filter hook prerouting priority -300;"
            f' iifname "lan" {rule}; }}\n'
            "}\n"
        )

    def bottleneck(self, side: str, rate: str = "2mbit") -> None:
        """A tbf bottleneck of ``rate`` each way on ``side``'s link."""
        for host, dev in ((self.host[side], "eth0"), (self.nat[side], "lan")):
            host.run("tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate,
                     "burst", "32kbit", "latency", "400ms")  # fmt: skip

    def redirect_to_relay(self, side: str, ports: list[tuple[str, int, int]]) -> None:
        """Send ``side``'s LAN traffic for the public server (proto, port) to the relay's
        (local) port on its NAT: the relay forwards it, late, to the real port."""
        rules = "".join(
            f'  iifname "lan" ip daddr {PUBLIC} {proto} dport {port} redirect to :{local};\n'
            for proto, port, local in ports
        )
        self.nat[side].nft(
            "table ip relay {\n"
            f" chain prerouting {{ type nat hook prerouting priority -100;\n{rules} }}\n"
            "}\n"
        )

    @contextmanager
    def relay(self, side: str, delay: float, ports: list[tuple[str, int]]) -> Iterator[None]:
        """A :class:`DelayRelay` on ``side``'s NAT holding everything for ``delay`` seconds
        each way, for the public server's ``(proto, port)`` listed."""
        nat = self.nat[side]
        routes = [(proto, port, 20000 + port) for proto, port in ports]
        specs = [f"{proto}:{local}:{PUBLIC}:{port}" for proto, port, local in routes]
        argv = nat.command(sys.executable, "-m", "tests.netkit", "relay", str(delay), *specs)
        process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"the delay relay did not start: {line!r}")
            self.redirect_to_relay(side, routes)
            yield
        finally:
            nat.drop_table("ip", "relay")
            process.terminate()
            process.wait(5)

    async def set_link(self, side: str, up: bool) -> None:
        """Bring ``side``'s link (its NAT's LAN port) up or down; the event loop keeps running."""
        await asyncio.to_thread(self.nat[side].ip, "link", "set", "lan", "up" if up else "down")

    async def cut(self, side: str, seconds: float) -> float:
        """Take ``side``'s link down for ``seconds``, then up again; returns when (monotonic
        clock) it was up again."""
        await self.set_link(side, False)
        await asyncio.sleep(seconds)
        await self.set_link(side, True)
        return time.monotonic()

    def chromium_wrapper(self, side: str, folder: Path) -> str:
        """An executable that starts Chromium in ``side``'s host namespace (for
        tests/browserkit.chromium: Playwright speaks to it over pipes, which cross namespaces).
        The full browser: its pages are plain HTTP on a public address, which only it lets
        count as a secure context (--unsafely-treat-insecure-origin-as-secure)."""
        wrapper = folder / f"chromium-{side}"
        command = f"exec ip netns exec {self.host[side].name} {chromium_path(full=True)}"
        wrapper.write_text(f'#!/bin/sh\n{command} "$@"\n')
        wrapper.chmod(0o755)
        return str(wrapper)


# -------------------------------------------------------------------- coturn, server, peers


def test_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the public address (coturn's ``turns:``); the peers trust
    it through SSL_CERT_FILE."""
    cert, key = folder / "turn-cert.pem", folder / "turn-key.pem"
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-days", "2", "-subj", "/CN=turn.cloudhelp.test", "-keyout", str(key),
       "-addext", f"subjectAltName=IP:{PUBLIC}", "-out", str(cert))  # fmt: skip
    return cert, key


@contextmanager
def coturn(network: Network, folder: Path, secret: str) -> Iterator[Path]:
    """coturn on the public address: STUN and TURN on 3478 (UDP, TCP), TURN over TLS on 443,
    short-lived credentials from ``secret`` (use-auth-secret, as deploy/ configures it).
    Yields the certificate the peers must trust."""
    cert, key = test_certificate(folder)
    config = folder / "turnserver.conf"
    config.write_text(
        "\n".join(
            [
                f"listening-ip={PUBLIC}",
                f"relay-ip={PUBLIC}",
                "listening-port=3478",
                "tls-listening-port=443",
                "min-port=49160",
                "max-port=49400",
                "use-auth-secret",
                f"static-auth-secret={secret}",
                "realm=turn.cloudhelp.test",
                "fingerprint",
                f"cert={cert}",
                f"pkey={key}",
                "no-tlsv1",
                "no-tlsv1_1",
                "no-dtls",
                "no-cli",
                "no-multicast-peers",
                "denied-peer-ip=10.0.0.0-10.255.255.255",
                f"log-file={folder / 'turn.log'}",
                "simple-log",
            ]
        )
        + "\n"
    )
    process = subprocess.Popen(
        network.pub.command("turnserver", "-c", str(config)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not network.pub.can_connect(PUBLIC, 443):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"coturn did not start; see {folder / 'turn.log'}")
            time.sleep(0.05)
        yield cert
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class PeerProcess:
    """A ``tests.netpeer`` process in one namespace, and the events it printed."""

    def __init__(self, process: asyncio.subprocess.Process, role: str) -> None:
        self.process, self.role = process, role
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Condition()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, host: Host, role: str, url: str, auth: dict[str, Any], env: dict[str, str]
    ) -> PeerProcess:
        argv = host.command(sys.executable, "-m", "tests.netpeer", role, url, json.dumps(auth))
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process, role)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            event = json.loads(line)
            async with self.changed:
                self.events.append(event)
                self.changed.notify_all()
        async with self.changed:
            self.events.append({"event": "exited", "t": time.monotonic()})
            self.changed.notify_all()

    def first(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["event"] == name), None)

    async def wait_for(
        self, what: str, test: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        """The first event (already printed or to come) that passes ``test``."""

        def found() -> dict[str, Any] | None:
            for event in self.events:
                if event["event"] in ("failed", "exited"):
                    raise AssertionError(f"{self.role} peer stopped: {event}; {self.events[-5:]}")
                if test(event):
                    return event
            return None

        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(found), timeout)
            except TimeoutError:
                raise AssertionError(
                    f"{self.role}: no {what} within {timeout} s; last: {self.events[-3:]}"
                ) from None
        event = found()
        assert event is not None
        return event

    async def event(self, name: str, timeout: float) -> dict[str, Any]:
        return await self.wait_for(name, lambda e: e["event"] == name, timeout)

    async def stop(self) -> None:
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.reader.cancel()


@dataclass
class CallTimes:
    """When a call came up, seen from each side (seconds from the ``joined`` it received)."""

    connected: float
    first_frame: float


def times_of(peer: PeerProcess) -> CallTimes:
    joined, connected = peer.first("joined"), peer.first("connected")
    first_frame = peer.first("first_frame")
    assert joined and connected and first_frame, peer.events[-5:]
    return CallTimes(connected["t"] - joined["t"], first_frame["t"] - joined["t"])


@asynccontextmanager
async def district(
    network: Network, database_url: str, **settings: Any
) -> AsyncIterator[tuple[CallServer, str]]:
    """A real CloudHelp server reachable on the public address (port 8000 in the public
    namespace) and, for the test's own set-up calls, on 127.0.0.1. Yields it and its
    public URL."""
    # A 1 s heartbeat (the tests' default is the service's 5 s): these tests cut links, and the
    # server is to notice a silent socket soon, as they were written for.
    settings = {"grace_seconds": 20.0, "heartbeat_seconds": 1.0, **settings}
    async with running_server(database_url, **settings) as server:
        runner = server.server.runner
        assert runner is not None
        site = web.SockSite(runner, network.pub.listen(PUBLIC, SERVER_PORT))
        await site.start()
        yield server, f"http://{PUBLIC}:{SERVER_PORT}"


@asynccontextmanager
async def call(
    network: Network, server: CallServer, url: str, env: dict[str, str], timeout: float = 30
) -> AsyncIterator[tuple[PeerProcess, PeerProcess]]:
    """A staff member (behind nats) answers a kiosk (behind natk): both aiortc peers run in
    their namespaces. Yields (kiosk, staff) once both have joined the call."""
    staff_auth = {"kind": "staff", "token": await server.staff_token("zhaogang")}
    kiosk_auth = {"kind": "kiosk", "credential": await server.kiosk_credential("QG-01")}
    peers: list[PeerProcess] = []
    try:
        staff = await PeerProcess.start(network.host["staff"], "staff", url, staff_auth, env)
        peers.append(staff)
        await staff.event("available", timeout)
        kiosk = await PeerProcess.start(network.host["kiosk"], "kiosk", url, kiosk_auth, env)
        peers.append(kiosk)
        for peer in peers:
            await peer.event("joined", timeout)
        yield kiosk, staff
    finally:
        for peer in peers:
            await peer.stop()


# -------------------------------------------------------------------- the delaying relay


class DelayLine:
    """Delivers what is put in, in order, ``delay`` seconds later."""

    def __init__(self, delay: float, deliver: Callable[[Any], None]) -> None:
        self.delay, self.deliver = delay, deliver
        self.items: deque[tuple[float, Any]] = deque()
        self.arrived = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    def put(self, item: Any) -> None:
        self.items.append((time.monotonic() + self.delay, item))
        self.arrived.set()

    async def _run(self) -> None:
        while True:
            if not self.items:
                self.arrived.clear()
                await self.arrived.wait()
                continue
            due, item = self.items[0]
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self.items.popleft()
            try:
                self.deliver(item)
            except OSError:  # a datagram the network refused is lost, as on a real link
                pass

    def close(self) -> None:
        self.task.cancel()


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors: the datagram was lost


class DelayRelay:
    """A UDP and TCP relay that holds everything for ``delay`` seconds each way."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.closers: list[Callable[[], None]] = []
        self.tasks: set[asyncio.Future[None]] = set()

    async def udp(self, port: int, upstream: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        flows: dict[tuple[str, int], DelayLine] = {}

        async def open_flow(client: tuple[str, int], line: DelayLine, early: list[bytes]) -> None:
            # One upstream socket per client, as a NAT gives each flow its own port.
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(lambda data, _addr: back.put((data, client))),
                remote_addr=upstream,
            )
            for data in early:
                transport.sendto(data)
            line.deliver = transport.sendto
            self.closers.append(transport.close)

        def on_client(data: bytes, client: tuple[str, int]) -> None:
            line = flows.get(client)
            if line is None:
                early: list[bytes] = []  # due before the upstream socket is open
                line = flows[client] = DelayLine(self.delay, early.append)
                self.tasks.add(asyncio.ensure_future(open_flow(client, line, early)))
            line.put(data)

        listener, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(on_client), local_addr=("0.0.0.0", port)
        )
        back = DelayLine(self.delay, lambda item: listener.sendto(item[0], item[1]))
        self.closers.append(listener.close)

    async def tcp(self, port: int, upstream: tuple[str, int]) -> None:
        async def pump(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, done: asyncio.Event
        ) -> None:
            def deliver(chunk: bytes) -> None:
                if not chunk:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    done.set()
                elif not writer.is_closing():
                    writer.write(chunk)

            line = DelayLine(self.delay, deliver)
            try:
                while chunk := await reader.read(65536):
                    line.put(chunk)
            except OSError:
                pass
            line.put(b"")
            await done.wait()
            line.close()

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection(*upstream)
            except OSError:
                writer.close()
                return
            there, back = asyncio.Event(), asyncio.Event()
            await asyncio.gather(
                pump(reader, up_writer, there), pump(up_reader, writer, back),
                return_exceptions=True,
            )  # fmt: skip
            for w in (writer, up_writer):
                w.close()

        server = await asyncio.start_server(on_client, "0.0.0.0", port)
        self.closers.append(server.close)


async def _relay_main(delay: float, specs: list[str]) -> None:
    relay = DelayRelay(delay)
    for spec in specs:
        proto, port, host, upstream_port = spec.split(":")
        await getattr(relay, proto)(int(port), (host, int(upstream_port)))
    print("ready", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.netkit")
    commands = parser.add_subparsers(dest="command", required=True)
    relay = commands.add_parser("relay", help="hold UDP/TCP traffic for DELAY seconds each way")
    relay.add_argument("delay", type=float)
    relay.add_argument("routes", nargs="+", help="udp|tcp:LISTEN_PORT:UPSTREAM_HOST:PORT")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_relay_main(args.delay, args.routes))


if __name__ == "__main__":
    main()
