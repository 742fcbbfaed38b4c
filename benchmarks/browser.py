"""Browser benchmark: file transfer through the pages' own code vs a bare data channel, and
call set-up, in headless Chromium against a real server.

    python -m benchmarks.browser [--quick]

Prints one JSON object: ``file_mib_s`` (kiosk → staff through FileChannel, including the
receiver's SHA-256 check and acknowledgement), ``raw_dc_mib_s`` (the baseline, in the same run and
during the same call: the same bytes from the kiosk page to the staff page over a bare second
data channel of the call's own connection, with no header, hash or acknowledgement), both after
one uncounted warm-up transfer (a fresh SCTP association starts slowly);
``raw_dc_one_page_in_call_mib_s`` and ``raw_dc_idle_mib_s`` are a bare channel between two peer
connections inside one page, during the call and with no call, and ``call_setup_ms`` (from pressing 开始呼叫 on the kiosk to the
first decoded remote video frame on the staff page, with the staff page answering by itself).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.signaling import free_port, process
from tests.browserkit import chromium, new_page

RAW_DC = """async ({size, chunk}) => {
  const a = new RTCPeerConnection(), b = new RTCPeerConnection();
  a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
  const send = a.createDataChannel("raw", {negotiated: true, id: 0});
  const recv = b.createDataChannel("raw", {negotiated: true, id: 0});
  send.binaryType = recv.binaryType = "arraybuffer";
  await a.setLocalDescription(); await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(); await a.setRemoteDescription(b.localDescription);
  await new Promise((r) => send.readyState === "open" ? r() : (send.onopen = r));
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(data.subarray(i, Math.min(size, i + 65536)));
  let got = 0;
  const done = new Promise((r) => { recv.onmessage = (e) => { got += e.data.byteLength; if (got >= size) r(); }; });
  send.bufferedAmountLowThreshold = 1 << 20;
  const start = performance.now();
  for (let off = 0; off < size; off += chunk) {
    if (send.bufferedAmount > 4 << 20) await new Promise((r) => send.addEventListener("bufferedamountlow", r, {once: true}));
    send.send(data.subarray(off, Math.min(size, off + chunk)));
  }
  await done;
  const seconds = (performance.now() - start) / 1000;
  a.close(); b.close();
  return size / (1 << 20) / seconds;
}"""

PAGE_FILE = """async ({size}) => {
  const data = new Uint8Array(size);
  data.set([0xff, 0xd8, 0xff, 0xe0]);
  for (let i = 4; i < size; i += 65536) crypto.getRandomValues(data.subarray(i, Math.min(size, i + 65536)));
  const blob = new Blob([data], {type: "image/jpeg"});
  const start = performance.now();
  const result = await window.cloudhelp.visit.files.send(blob, "bench.jpg");
  if (!result.ok) throw new Error("checksum failed");
  return size / (1 << 20) / ((performance.now() - start) / 1000);
}"""

# The baseline between the two pages, over the call's own connection: a second negotiated data
# channel (id 1) carrying the same bytes with no header, hash or acknowledgement.
RAW_RECEIVER = """() => {
  const call = window.cloudhelp.call;
  const channel = call.pc.createDataChannel("raw", {negotiated: true, id: 1});
  channel.binaryType = "arraybuffer";
  window.__raw = {got: 0, done: null};
  window.__rawDone = new Promise((resolve) => { window.__raw.done = resolve; });
  channel.onmessage = (e) => {
    if (typeof e.data === "string") { window.__raw.size = Number(e.data); return; }
    window.__raw.got += e.data.byteLength;
    if (window.__raw.got >= window.__raw.size) { channel.send("done"); window.__raw.done(); }
  };
}"""

RAW_SENDER = """async ({size, chunk}) => {
  const call = window.cloudhelp.visit.call;
  const channel = call.pc.createDataChannel("raw", {negotiated: true, id: 1});
  channel.binaryType = "arraybuffer";
  await new Promise((r) => channel.readyState === "open" ? r() : (channel.onopen = r));
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(data.subarray(i, Math.min(size, i + 65536)));
  const finished = new Promise((r) => { channel.onmessage = () => r(); });
  channel.bufferedAmountLowThreshold = 1 << 20;
  const start = performance.now();
  channel.send(String(size));
  for (let off = 0; off < size; off += chunk) {
    if (channel.bufferedAmount > 4 << 20) await new Promise((r) => channel.addEventListener("bufferedamountlow", r, {once: true}));
    channel.send(new Uint8Array(data.buffer, off, Math.min(chunk, size - off)));
  }
  await finished;
  channel.close();
  return size / (1 << 20) / ((performance.now() - start) / 1000);
}"""

AUTO_ANSWER = """() => {
  window.__firstFrame = new Promise((resolve) => {
    const video = document.querySelector("#remote-main");
    const watch = () => video.requestVideoFrameCallback(() => resolve(Date.now()));
    new MutationObserver(watch).observe(video, {attributes: true});
    video.addEventListener("loadeddata", watch);
  });
  new MutationObserver(() => {
    const ring = document.querySelector("#ring");
    if (!ring.hidden) document.querySelector("#ring-accept").click();
  }).observe(document.querySelector("#ring"), {attributes: true});
}"""


async def run(quick: bool) -> dict[str, object]:
    size = int(os.environ.get("BENCH_MIB", 8 if quick else 20)) * 1024 * 1024
    calls = 2 if quick else 5
    work = Path(tempfile.mkdtemp(prefix="cloudhelp-browser-bench-"))
    db = f"sqlite:///{work / 'b.db'}"
    cli = [sys.executable, "-m", "cloudhelp"]
    env = {"CLOUDHELP_DATA_DIR": str(work), "CLOUDHELP_LOG_LEVEL": "WARNING"}
    demo = await asyncio.create_subprocess_exec(
        *cli,
        "demo",
        "--db",
        db,
        stdout=asyncio.subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    await demo.wait()
    setup_ms: list[float] = []
    file_rates: list[float] = []
    port = free_port()
    with process([*cli, "serve", "--db", db, "--port", str(port)], env) as server:
        assert server.stdout is not None
        server.stdout.readline()
        base = f"http://127.0.0.1:{port}"
        async with chromium() as browser:
            raw_page = await new_page(browser, base)
            await raw_page.goto("/static/css/app.css")
            raw_idle = max(
                [
                    await raw_page.evaluate(RAW_DC, {"size": size, "chunk": c})
                    for c in (65536, 262144)
                ]
            )
            for n in range(calls):
                kiosk = await new_page(browser, base)
                staff = await new_page(browser, base)
                code = await _enrol(cli, db, f"BENCH-{n}")
                await kiosk.goto(f"/kiosk?enrol={code}")
                await kiosk.wait_for_selector("[data-screen=home]:not([hidden]) .tile")
                await staff.goto("/staff")
                await staff.fill("#username", "zhaogang")
                await staff.fill("#password", "cloudhelp-demo")
                await staff.click("#login-form button")
                await staff.wait_for_selector("#toggle-state:not([hidden])")
                await staff.click("#toggle-state")
                await staff.wait_for_function(
                    "document.querySelector('#state').dataset.state === 'available'"
                )
                await staff.evaluate(AUTO_ANSWER)
                await kiosk.click("#hot [data-item=NYNC-002]")
                await kiosk.click("#call-button")
                await kiosk.wait_for_function("document.querySelector('#preview').videoWidth > 0")
                started = await kiosk.evaluate(
                    "() => { const t = Date.now(); document.querySelector('#start-call').click(); return t; }"
                )
                first = await staff.evaluate("() => window.__firstFrame")
                setup_ms.append(first - started)
                if n == 0:
                    await kiosk.wait_for_function("window.cloudhelp.visit.files !== null")
                    # Baseline and page transfer under the same load: during this call,
                    # kiosk page to staff page over the call's own connection.
                    # A fresh SCTP association starts slow (congestion window): warm it up
                    # with one transfer that is not counted, then measure both ways.
                    await kiosk.evaluate(PAGE_FILE, {"size": size})
                    await staff.evaluate(RAW_RECEIVER)
                    raw_in_call = await kiosk.evaluate(RAW_SENDER, {"size": size, "chunk": 262144})
                    raw_one_page = max(
                        [
                            await kiosk.evaluate(RAW_DC, {"size": size, "chunk": c})
                            for c in (65536, 262144)
                        ]
                    )
                    file_rates.append(await kiosk.evaluate(PAGE_FILE, {"size": size}))
                state = await kiosk.evaluate("document.body.dataset.current")
                if state != "call":
                    reason = await kiosk.inner_text("#done-reason")
                    raise RuntimeError(f"the call ended during the benchmark: {state} {reason}")
                await kiosk.click("#hangup")
                await staff.wait_for_selector("#wrapup:not([hidden])")
                await staff.click("#wrapup button")
                await kiosk.context.close()
                await staff.context.close()
    return {
        "quick": quick,
        "file_mib": size // (1024 * 1024),
        "file_mib_s": round(file_rates[0], 2),
        "raw_dc_mib_s": round(raw_in_call, 2),
        "file_vs_raw": round(file_rates[0] / raw_in_call, 2),
        "raw_dc_one_page_in_call_mib_s": round(raw_one_page, 2),
        "raw_dc_idle_mib_s": round(raw_idle, 2),
        "call_setup_ms": round(statistics.median(setup_ms), 1),
        "call_setup_runs": len(setup_ms),
    }


async def _enrol(cli: list[str], db: str, code: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *cli, "kiosk", "enrol", "DLW-QG", "--code", code, "--db", db, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return out.decode().split("one-time enrolment code ")[1].split()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller file, fewer calls")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.quick)), indent=1))


if __name__ == "__main__":
    main()
