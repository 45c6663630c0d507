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
4. **spoken answers at once**: calls that say "order" and then "four two oh seven" (1-2 s
   each), all answering in the same instant (a capacity figure: every decode is CPU-bound);
5. **spoken answers one after another**: the same calls, one at a time and without listening
   time (the latency of an
   answer). For 4 and 5, an answer's latency runs from its recording webhook to the TwiML of
   the next prompt: fetch, decoding, keep-alive pauses and their redirects included.

    .venv/bin/python bench/coldstart.py [--burst 60] [--spoken 12] [--answers 20]
    .venv/bin/python bench/coldstart.py --only burst --py-spy burst.svg   # one part, profiled
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import sqlite3
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
PARTS = ("ready", "burst", "spoken", "answers")
PAUSE = re.compile(r'<Pause length="(\d+)"')


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


def answer_latencies(hooks: list[WebhookExchange]) -> list[float]:
    """Per recorded answer: its recording webhook, then any keep-alive pauses (their full
    length, as a caller hears them, whatever the simulator's pace) and their redirects,
    until the server answered with the next prompt."""
    answers: list[float] = []
    for hook in hooks:
        if is_recording(hook):
            answers.append(hook.elapsed)
        elif "/twilio/recognizing" in hook.url and answers:
            answers[-1] += hook.elapsed
        else:
            continue
        if pause := PAUSE.search(hook.body):
            answers[-1] += int(pause.group(1))
    return answers


def understood(database: Path) -> str:
    """What the server understood of the spoken answers, per state (from the event log)."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        rows = db.execute("SELECT data FROM call_events WHERE kind = 'Understood'").fetchall()
    heard: dict[str, int] = {}
    for (data,) in rows:
        entry = json.loads(data)
        what = entry.get("intent") or entry.get("digits") or f"no match ({entry.get('heard')!r})"
        heard[f"{entry['state']}: {what}"] = heard.get(f"{entry['state']}: {what}", 0) + 1
    return ", ".join(f"{k} x{v}" for k, v in sorted(heard.items())) or "nothing"


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def py_spy(pid: int, output: str | None) -> Iterator[None]:
    """Sample ``pid`` with py-spy (``pip install py-spy``) into ``output`` while the block runs."""
    if output is None:
        yield
        return
    command = [
        str(Path(sys.executable).with_name("py-spy")),
        "record",
        "-r",
        "200",
        "--gil",  # only the thread holding the GIL: where the CPU goes, not who waits
        "-o",
        output,
        "--pid",
        str(pid),
    ]
    if output.endswith(".txt"):
        command += ["--format", "raw"]  # collapsed stacks, for grep and sort
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        spy.send_signal(2)  # SIGINT: py-spy writes the profile and exits
        spy.wait(timeout=60)
        print(f"profile of the server during the burst: {output}")


async def burst(
    workdir: Path,
    callers: int,
    persona: Persona,
    what: str,
    database: str | None = None,
    profile: str | None = None,
    one_by_one: bool = False,
    pace: float = 1.0,
) -> list[WebhookExchange]:
    """``callers`` calls arriving at once (or ``one_by_one``), in real time (or at ``pace``);
    returns every webhook exchange, in each call's order."""
    server, orders = await start(workdir, pace=pace, database=database)
    try:
        await wait_for(f"{server.url}/readyz", server)
        lags: list[float] = []
        stop_lag = asyncio.Event()
        monitor = asyncio.create_task(loop_lag(lags, stop_lag))
        with py_spy(server.process.pid, profile):
            cpu_before = cpu_seconds(server.process.pid)
            started = time.perf_counter()
            if one_by_one:
                hooks = [await call(server, n, persona) for n in range(callers)]
            else:
                hooks = await asyncio.gather(*(call(server, n, persona) for n in range(callers)))
            elapsed = time.perf_counter() - started
            cpu = cpu_seconds(server.process.pid) - cpu_before
        stop_lag.set()
        await monitor
        flat = [w for group in hooks for w in group]
        how = "one after another" if one_by_one else "at once"
        print(
            f"{what}: {callers} calls {how} took {elapsed:.1f} s, {len(flat)} requests "
            f"(webhooks and prompt fetches); the server used {cpu:.2f} s of CPU, "
            f"{1000 * cpu / len(flat):.1f} ms per request"
        )
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


def by_step(hooks: list[WebhookExchange]) -> None:
    """The webhooks of a burst by their place in the call: every caller hears the same
    prompts, so the calls' n-th webhooks arrive together, in waves."""
    steps: dict[int, list[float]] = {}
    seen: dict[str | None, int] = {}
    for hook in hooks:
        if hook.purpose in WEBHOOK_PURPOSES:
            n = seen[hook.sid] = seen.get(hook.sid, -1) + 1
            steps.setdefault(n, []).append(hook.elapsed)
    for n, latencies in sorted(steps.items()):
        summary(f"  webhook {n + 1} of each call", latencies)


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


@dataclass
class Options:
    parts: tuple[str, ...]
    callers: int
    spoken: int
    answers: int
    warm_calls: int
    profile: str | None


async def spoken_answers(workdir: Path, calls: int, one_by_one: bool) -> dict[str, float]:
    """Recording webhooks of ``calls`` calls answering by voice (two answers each)."""
    how = "one after another" if one_by_one else "at once"
    # One after another, nobody waits for anybody: the calls run without listening time.
    hooks = await burst(
        workdir,
        calls,
        spoken_persona(),
        f"spoken {how}",
        one_by_one=one_by_one,
        pace=0.0 if one_by_one else 1.0,
    )
    by_call: dict[str | None, list[WebhookExchange]] = {}
    for hook in hooks:
        by_call.setdefault(hook.sid, []).append(hook)
    answers = [a for group in by_call.values() for a in answer_latencies(group)]
    stats = summary(f"{len(answers)} answers, {calls} calls {how}", answers)
    webhooks = summary(
        "  of which the recording webhook", [w.elapsed for w in hooks if is_recording(w)]
    )
    waits = sum("/twilio/recognizing" in w.url for w in hooks)
    print(f"  keep-alive pauses: {waits}; understood: {understood(workdir / 'bench.db')}")
    return {**stats, "webhook p95": webhooks["p95"]}


async def main(options: Options) -> None:
    callers = options.callers
    verdicts: list[tuple[str, bool]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if "ready" in options.parts:
            await before_ready(root / "cold")
            after = await after_ready(root / "ready", options.warm_calls)
            verdicts += [
                ("first webhook of the first call <= 50 ms", after["first webhook"] <= 0.050),
                (
                    "first recognized answer no slower than warm (<= 1.2x)",
                    after["first answer"] <= 1.2 * after["warm answer"],
                ),
            ]
        if "burst" in options.parts:
            bare = await measure_bare(callers, 1.0, 0.0)
            keys = await burst(
                root / "burst", callers, keys_persona(), "keys", profile=options.profile
            )
            ours = summary(
                f"{callers} at once, ivr serve",
                [w.elapsed for w in keys if w.purpose in WEBHOOK_PURPOSES],
            )
            by_step(keys)
            print(
                f"ratio to bare aiohttp at {callers} at once: "
                f"p99 {1000 * ours['p99'] / bare['p99 ms']:.1f}x"
            )
            verdicts.append((f"{callers} at once: webhook p99 <= 300 ms", ours["p99"] <= 0.300))
        if "spoken" in options.parts:
            await spoken_answers(root / "spoken", options.spoken, one_by_one=False)
        if "answers" in options.parts:
            calls = max(1, options.answers // 2)
            alone = await spoken_answers(root / "answers", calls, one_by_one=True)
            verdicts.append(
                ("an answer (1-2 s), one at a time: p95 <= 500 ms", alone["p95"] <= 0.500)
            )
    for text, met in verdicts:
        print(f"target {text}: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=60, help="callers arriving at once")
    parser.add_argument("--spoken", type=int, default=12, help="calls answering by voice at once")
    parser.add_argument(
        "--answers", type=int, default=20, help="spoken answers one after another (2 per call)"
    )
    parser.add_argument(
        "--warm-calls", type=int, default=5, help="calls after the first, for the warm baseline"
    )
    parser.add_argument(
        "--only", action="append", choices=PARTS, help="run only this part (repeatable)"
    )
    parser.add_argument(
        "--py-spy", metavar="FILE", help="profile the server during the keys burst (.svg or .txt)"
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
        options = Options(
            parts=tuple(arguments.only or PARTS),
            callers=arguments.burst,
            spoken=arguments.spoken,
            answers=arguments.answers,
            warm_calls=arguments.warm_calls,
            profile=arguments.py_spy,
        )
        asyncio.run(main(options))
