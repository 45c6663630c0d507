"""Webhook latency under concurrent simulated calls, against a bare aiohttp baseline.

The server runs as its own process (``ivr serve``, SQLite, ``IVR_PROVIDER=twilio`` pointed
at a standalone simulator in this process); the simulator places N concurrent inbound calls
to the order-status line, each pressing 1, typing 4207#, hearing the looked-up status and
pressing 2 to leave. The baseline is a bare aiohttp process answering the same sequence of
webhooks with fixed TwiML, driven by the same simulator with the same personas.

    .venv/bin/python bench/webhooks.py [--calls 100] [--pace 1.0]

Calls start spread over ``--ramp`` seconds (default 10; with 20-second calls, all 100 are
live at once at the peak). Prints calls/s and p50/p95/p99 latency of the webhooks that need
no recognition (voice, gather, redirect), and the ratio to the baseline. ``--pace 1`` plays
calls in real time (a caller listens to each prompt before answering: the load live calls
put on a server); ``--pace 0`` fires each webhook as soon as the last was answered (a burst).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from ivr.simulation.scenario import Turn
from ivr.telephony.simulator import CallRecord, Persona, Simulator, SimulatorSettings

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "AC" + "b" * 32
TOKEN = secrets.token_hex(16)
SHOP_LINE = "+15550100"
WEBHOOK_PURPOSES = ("voice", "action", "redirect")

BARE_APP = """
import sys
from aiohttp import web

def gather(action, digits):
    return ('<?xml version="1.0" encoding="UTF-8"?><Response><Gather input="dtmf" '
            f'numDigits="{digits}" finishOnKey="#" action="{action}" timeout="5">'
            '<Say>Prompt.</Say></Gather></Response>')

FLOW = {"/voice": gather("/g1", 1), "/g1": gather("/g2", 10), "/g2": gather("/g3", 1),
        "/g3": '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>'}

async def answer(request):
    await request.post()
    return web.Response(text=FLOW[request.path], content_type="application/xml")

app = web.Application()
for path in FLOW:
    app.router.add_post(path, answer)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the server exited with {process.returncode}")
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def persona() -> Persona:
    return Persona.person(Turn(press="1"), Turn(press="4207#"), Turn(press="2"))


async def drive(
    simulator: Simulator, voice_url: str, calls: int, ramp: float = 0.0
) -> tuple[float, list[float]]:
    """Run ``calls`` inbound calls, their starts spread evenly over ``ramp`` seconds."""

    async def one(n: int) -> CallRecord:
        await asyncio.sleep(ramp * n / calls)
        return await simulator.incoming_call(
            f"+1202555{1000 + n:04d}", SHOP_LINE, persona(), voice_url
        )

    started = time.perf_counter()
    records = await asyncio.gather(*(one(n) for n in range(calls)))
    elapsed = time.perf_counter() - started
    errors = [error for record in records for error in record.errors]
    if errors:
        raise RuntimeError(f"{len(errors)} call errors, first: {errors[0]}")
    latencies = [w.elapsed for w in simulator.webhooks if w.purpose in WEBHOOK_PURPOSES]
    return elapsed, latencies


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def row(name: str, calls: int, elapsed: float, latencies: list[float]) -> dict[str, float]:
    stats = {
        "calls/s": calls / elapsed,
        "webhooks": len(latencies),
        "p50 ms": 1000 * percentile(latencies, 50),
        "p95 ms": 1000 * percentile(latencies, 95),
        "p99 ms": 1000 * percentile(latencies, 99),
    }
    cells = "  ".join(f"{key} {value:8.1f}" for key, value in stats.items())
    print(f"{name:<12} {cells}")
    return stats


async def orders_api() -> tuple[web.AppRunner, str]:
    async def order(_: web.Request) -> web.Response:
        return web.json_response({"status": "out for delivery"})

    app = web.Application()
    app.router.add_get("/orders/{number}", order)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def measure_server(calls: int, pace: float, ramp: float, workdir: Path) -> dict[str, float]:
    simulator = Simulator(ACCOUNT, TOKEN, settings=SimulatorSettings(pace=pace))
    api_base = await simulator.start()
    orders, orders_url = await orders_api()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "IVR_PROVIDER": "twilio",
        "IVR_PUBLIC_URL": url,
        "IVR_DATABASE_URL": f"sqlite:///{workdir}/bench.db",
        "IVR_VAR_DIR": str(workdir / "var"),
        "IVR_TWILIO_ACCOUNT_SID": ACCOUNT,
        "IVR_TWILIO_AUTH_TOKEN": TOKEN,
        "IVR_TWILIO_FROM": "+12025550100",
        "IVR_TWILIO_API_BASE": api_base,
        "IVR_PLAN_VARIABLES": json.dumps({"order_status_line": {"orders_api": orders_url}}),
    }
    command = [sys.executable, "-m", "ivr", "serve", "--port", str(port)]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        await wait_until_up(f"{url}/readyz", server)  # 503 until warmed up
        # One call first so that every prompt is synthesized and cached before measuring.
        await drive(simulator, f"{url}/twilio/voice", 1)
        simulator.client.exchanges.clear()
        elapsed, latencies = await drive(simulator, f"{url}/twilio/voice", calls, ramp)
        return row("ivr serve", calls, elapsed, latencies)
    finally:
        server.terminate()
        server.wait(timeout=30)
        await simulator.close()
        await orders.cleanup()


async def measure_bare(calls: int, pace: float, ramp: float) -> dict[str, float]:
    simulator = Simulator(ACCOUNT, TOKEN, settings=SimulatorSettings(pace=pace))
    await simulator.start()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", BARE_APP, str(port)])
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_until_up(f"{url}/missing", server)
        elapsed, latencies = await drive(simulator, f"{url}/voice", calls, ramp)
        return row("bare aiohttp", calls, elapsed, latencies)
    finally:
        server.terminate()
        server.wait(timeout=30)
        await simulator.close()


async def main(calls: int, pace: float, ramp: float) -> None:
    flow = "4 webhooks each (voice + 3 gathers)"
    print(f"{calls} inbound calls started over {ramp:g} s, {flow}, SQLite, pace {pace:g}")
    with tempfile.TemporaryDirectory() as workdir:
        bare = await measure_bare(calls, pace, ramp)
        ours = await measure_server(calls, pace, ramp, Path(workdir))
    print(
        f"ratio ivr/bare: p50 {ours['p50 ms'] / bare['p50 ms']:.1f}x, "
        f"p99 {ours['p99 ms'] / bare['p99 ms']:.1f}x, "
        f"calls/s {ours['calls/s'] / bare['calls/s']:.2f}x"
    )
    verdict = "met" if ours["p99 ms"] < 50 else "NOT met"
    print(f"target p99 < 50 ms at {calls} concurrent calls: {verdict}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--pace", type=float, default=1.0, help="real seconds per simulated second")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which calls start")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.calls, arguments.pace, arguments.ramp))
