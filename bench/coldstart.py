"""Cold start and bursts: the first call after start-up, 60 callers at once, spoken answers.

Each measurement starts ``ivr serve`` as its own process on a fresh SQLite database and a
fresh prompt cache (``IVR_PROVIDER=twilio`` pointed at a standalone simulator in this
process), calling the order-status line:

1. **before ready**: the first call is placed as soon as ``/healthz`` answers, while the
   warm-up is still running (what a provider pointed at a server too early gets);
2. **after ready**: a new server, ``/readyz`` awaited; the first call's first webhook, then
   the first recognized answer (the caller says "order"), against the same webhooks of
   the calls that follow (warm, same run);
3. **60 at once**: 60 callers arriving in the same instant, in real time (keys only);
   baseline: a bare aiohttp process answering the same webhooks with fixed TwiML;
4. **spoken answers**: calls that say "order" and then "four two oh seven" (1-2 s each):
   latency of the recording webhooks, fetch, decoding and the next prompt included.

    .venv/bin/python bench/coldstart.py [--burst 60] [--spoken 12]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from webhooks import (
    ACCOUNT,
    ROOT,
    SHOP_LINE,
    TOKEN,
    WEBHOOK_PURPOSES,
    free_port,
    measure_bare,
    orders_api,
    percentile,
)

from ivr.simulation.scenario import Turn
from ivr.telephony.simulator import Persona, Simulator, SimulatorSettings
from ivr.telephony.simulator.state import WebhookExchange

POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    simulator: Simulator
    started: float

    @property
    def voice_url(self) -> str:
        return f"{self.url}/twilio/voice"


async def start(
    workdir: Path, pace: float, database: str | None = None
) -> tuple[Server, aiohttp.web.AppRunner]:
    simulator = Simulator(ACCOUNT, TOKEN, settings=SimulatorSettings(pace=pace))
    api_base = await simulator.start()
    orders, orders_url = await orders_api()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "IVR_PROVIDER": "twilio",
        "IVR_PUBLIC_URL": url,
        "IVR_DATABASE_URL": database or f"sqlite:///{workdir}/bench.db",
        "IVR_VAR_DIR": str(workdir / "var"),
        "IVR_AUDIO_DIR": str(workdir / "audio"),  # a cold prompt cache
        "IVR_TWILIO_ACCOUNT_SID": ACCOUNT,
        "IVR_TWILIO_AUTH_TOKEN": TOKEN,
        "IVR_TWILIO_FROM": "+12025550100",
        "IVR_TWILIO_API_BASE": api_base,
        "IVR_PLAN_VARIABLES": json.dumps({"order_status_line": {"orders_api": orders_url}}),
    }
    command = [sys.executable, "-m", "ivr", "serve", "--port", str(port)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    return Server(url, process, simulator, started), orders


async def wait_for(url: str, server: Server) -> float:
    """Seconds from the server's spawn until ``url`` answers 200."""
    async with aiohttp.ClientSession() as session:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"the server exited with {server.process.returncode}")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return time.perf_counter() - server.started
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)


async def stop(server: Server, orders: aiohttp.web.AppRunner) -> None:
    server.process.terminate()
    server.process.wait(timeout=30)
    await server.simulator.close()
    await orders.cleanup()


def keys_persona() -> Persona:
    return Persona.person(Turn(press="1"), Turn(press="4207#"), Turn(press="2"))


def spoken_persona() -> Persona:
    return Persona.person(Turn(say="order"), Turn(say="four two oh seven"), Turn(press="2"))


async def call(server: Server, n: int, persona: Persona) -> list[WebhookExchange]:
    before = len(server.simulator.webhooks)
    record = await server.simulator.incoming_call(
        f"+1202555{1000 + n:04d}", SHOP_LINE, persona, server.voice_url
    )
    if record.errors:
        raise RuntimeError(f"call errors: {record.errors}")
    return [w for w in server.simulator.webhooks[before:] if w.sid == record.sid]


def is_recording(exchange: WebhookExchange) -> bool:
    return "RecordingUrl" in exchange.params


def ms(seconds: float) -> str:
    return f"{1000 * seconds:7.1f} ms"


async def before_ready(workdir: Path) -> float:
    server, orders = await start(workdir, pace=0.0)
    try:
        live = await wait_for(f"{server.url}/healthz", server)
        hooks = await call(server, 0, keys_persona())
        first = hooks[0].elapsed
        ready = await wait_for(f"{server.url}/readyz", server)
        print(f"before ready  live after {live:.2f} s, ready after {ready:.2f} s")
        print(f"before ready  first webhook of the first call: {ms(first)}")
        return first
    finally:
        await stop(server, orders)


async def after_ready(workdir: Path, warm_calls: int) -> dict[str, float]:
    server, orders = await start(workdir, pace=0.0)
    try:
        ready = await wait_for(f"{server.url}/readyz", server)
        first_call = await call(server, 0, spoken_persona())
        first_webhook = first_call[0].elapsed
        first_answer = next(w.elapsed for w in first_call if is_recording(w))
        warm_webhooks, warm_answers = [], []
        for n in range(1, warm_calls + 1):
            hooks = await call(server, n, spoken_persona())
            warm_webhooks.append(hooks[0].elapsed)
            warm_answers.append(next(w.elapsed for w in hooks if is_recording(w)))
        warm_webhook = statistics.median(warm_webhooks)
        warm_answer = statistics.median(warm_answers)
        print(f"after ready   ready after {ready:.2f} s (warm-up included)")
        print(
            f"after ready   first webhook of the first call: {ms(first_webhook)}"
            f"  (warm calls' median {ms(warm_webhook)}, ratio {first_webhook / warm_webhook:.2f})"
        )
        print(
            f"after ready   first recognized answer: {ms(first_answer)}"
            f"  (warm median {ms(warm_answer)}, ratio {first_answer / warm_answer:.2f})"
        )
        return {
            "ready s": ready,
            "first webhook": first_webhook,
            "warm webhook": warm_webhook,
            "first answer": first_answer,
            "warm answer": warm_answer,
        }
    finally:
        await stop(server, orders)


async def loop_lag(lags: list[float], stop: asyncio.Event) -> None:
    """How late this process's event loop wakes up (the simulator's own delay: it measures
    every webhook, so a busy bench process adds to the latencies it reports)."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - before - 0.01)


async def burst(
    workdir: Path, callers: int, persona: Persona, what: str, database: str | None = None
) -> list[WebhookExchange]:
    """``callers`` calls arriving at once, in real time; returns every webhook exchange."""
    server, orders = await start(workdir, pace=1.0, database=database)
    try:
        await wait_for(f"{server.url}/readyz", server)
        lags: list[float] = []
        stop_lag = asyncio.Event()
        monitor = asyncio.create_task(loop_lag(lags, stop_lag))
        started = time.perf_counter()
        hooks = await asyncio.gather(*(call(server, n, persona) for n in range(callers)))
        elapsed = time.perf_counter() - started
        stop_lag.set()
        await monitor
        flat = [w for group in hooks for w in group]
        print(f"{what}: {callers} calls at once took {elapsed:.1f} s, {len(flat)} webhooks")
        print(
            f"{what}: the simulator's own loop lag p99 {ms(percentile(lags, 99))}, "
            f"max {ms(max(lags))}"
        )
        return flat
    finally:
        await stop(server, orders)


def summary(name: str, latencies: list[float]) -> dict[str, float]:
    stats = {q: percentile(latencies, q) for q in (50, 95, 99)}
    print(
        f"{name:<34} n {len(latencies):4d}  " + "  ".join(f"p{q} {ms(v)}" for q, v in stats.items())
    )
    return {f"p{q}": v for q, v in stats.items()}


@contextlib.contextmanager
def throwaway_postgres(admin: str) -> Iterator[str]:
    """A new database on the PostgreSQL server of ``admin`` (createdb/dropdb), its URL."""
    name = f"ivr_bench_{secrets.token_hex(4)}"
    host = ["-h", "127.0.0.1", "-U", "postgres"]
    subprocess.run(["createdb", *host, name], check=True)
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        subprocess.run(["dropdb", *host, name], check=True)


async def on_postgres(callers: int) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        throwaway_postgres(POSTGRES) as database,
    ):
        keys = await burst(Path(tmp), callers, keys_persona(), "keys, PostgreSQL", database)
    summary(
        f"{callers} at once, PostgreSQL",
        [w.elapsed for w in keys if w.purpose in WEBHOOK_PURPOSES],
    )


async def main(callers: int, spoken: int, warm_calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        await before_ready(root / "cold")
        after = await after_ready(root / "ready", warm_calls)
        bare = await measure_bare(callers, 1.0, 0.0)
        keys = await burst(root / "burst", callers, keys_persona(), "keys")
        ours = summary(
            f"{callers} at once, ivr serve",
            [w.elapsed for w in keys if w.purpose in WEBHOOK_PURPOSES],
        )
        voices = await burst(root / "spoken", spoken, spoken_persona(), "spoken")
        recordings = summary(
            f"{spoken} at once, recording webhooks", [w.elapsed for w in voices if is_recording(w)]
        )
        waits = sum("/twilio/recognizing" in w.url for w in voices)
    print(
        f"ratio to bare aiohttp at {callers} at once: "
        f"p99 {1000 * ours['p99'] / bare['p99 ms']:.1f}x"
    )
    print(f"keep-alive pauses while recognizing: {waits}")
    verdicts = [
        ("first webhook of the first call <= 50 ms", after["first webhook"] <= 0.050),
        (
            "first recognized answer no slower than warm (<= 1.2x)",
            after["first answer"] <= 1.2 * after["warm answer"],
        ),
        (f"{callers} at once: webhook p99 <= 300 ms", ours["p99"] <= 0.300),
        ("recording webhook p95 <= 500 ms", recordings["p95"] <= 0.500),
    ]
    for text, met in verdicts:
        print(f"target {text}: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=60, help="callers arriving at once")
    parser.add_argument("--spoken", type=int, default=12, help="calls answering by voice at once")
    parser.add_argument(
        "--warm-calls", type=int, default=5, help="calls after the first, for the warm baseline"
    )
    parser.add_argument(
        "--postgres-burst",
        action="store_true",
        help="only the burst, on a throwaway PostgreSQL database at 127.0.0.1:5432",
    )
    arguments = parser.parse_args()
    if arguments.postgres_burst:
        asyncio.run(on_postgres(arguments.burst))
    else:
        asyncio.run(main(arguments.burst, arguments.spoken, arguments.warm_calls))
