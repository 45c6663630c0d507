"""Live conversation over Media Streams against the ``<Record>`` path, in the same run.

    .venv/bin/python bench/streams.py              # 8 warm calls per path, then 50 at once
    .venv/bin/python bench/streams.py --quick      # 3 calls per path, 10 at once

A real ``ivr serve`` (a child process, its own CPU and memory) answers a one-question line
("Say yes or no"). The simulator in this process is Twilio and the caller, who says "yes"
in the espeak-ng caller voice:

- ``stream`` (``IVR_TWILIO_MEDIA=stream``): the simulator streams the caller's audio frame by
  frame in real time and timestamps the end of the caller's voice and the first audio frame
  of the reply that comes back (wall clock). Once with the answer after the question, once
  while the question plays (barge-in): then also speech onset -> ``clear``.
- ``record`` (``IVR_TWILIO_MEDIA=record``, the baseline): end of speech -> first reply audio is
  Twilio's ``<Record timeout>`` of silence (added as the plan renders it: Twilio waits it out
  before posting) plus the measured round trips: the recording's action webhook (the server
  downloads and recognizes the recording) and the fetch of the reply prompt.

Then N streaming calls at once: reply p50/p95 under load, the server's CPU seconds and RSS
growth per call (from /proc). Each path is warmed by one call first. The simulator runs in
this process and competes for the same 2 cores: under load the numbers are pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from ivr.simulation.scenario import Turn
from ivr.telephony.simulator import CallRecord, Persona, Simulator, SimulatorSettings

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "AC" + "7" * 32
TOKEN = "bench-streams-token"
LINE = "+15550190"
PLAN = """
id: bench_line
direction: inbound
language: en-US
numbers: ["+15550190"]
start: ask
states:
  ask:
    say: Hello. This is a short question for a benchmark. Say yes or no.
    listen:
      intents: {yes: {say: ["yes"], press: "1"}, no: {say: ["no"], press: "2"}}
      timeout: 5s
    on: {yes: bye, no: bye, failed: bye}
  bye:
    say: Thank you. Goodbye.
    hangup: true
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    simulator: Simulator


async def start(workdir: Path, media: str) -> Server:
    settings = SimulatorSettings(pace=0.0, stream_time_scale=1.0)
    simulator = Simulator(ACCOUNT, TOKEN, settings=settings)
    api_base = await simulator.start()
    plans = workdir / "plans"
    plans.mkdir(exist_ok=True)
    (plans / "bench_line.yaml").write_text(PLAN)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IVR_")},
        "IVR_PROVIDER": "twilio",
        "IVR_TWILIO_MEDIA": media,
        "IVR_PUBLIC_URL": url,
        "IVR_DATABASE_URL": f"sqlite:///{workdir}/{media}.db",
        "IVR_DIALPLANS": str(plans),
        "IVR_VAR_DIR": str(workdir / f"var-{media}"),
        "IVR_AUDIO_DIR": str(workdir / "audio"),
        "IVR_TWILIO_ACCOUNT_SID": ACCOUNT,
        "IVR_TWILIO_AUTH_TOKEN": TOKEN,
        "IVR_TWILIO_FROM": "+12025550100",
        "IVR_TWILIO_API_BASE": api_base,
    }
    command = [sys.executable, "-m", "ivr", "serve", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    server = Server(url, process, simulator)
    async with aiohttp.ClientSession() as session:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the {media} server exited with {process.returncode}")
            ready = False
            try:
                async with session.get(f"{url}/readyz") as response:
                    ready = response.status == 200
            except aiohttp.ClientError:
                pass
            if ready:
                return server
            await asyncio.sleep(0.1)


async def stop(server: Server) -> None:
    server.process.terminate()
    server.process.wait(timeout=30)
    await server.simulator.close()


async def call(server: Server, n: int, turn: Turn) -> CallRecord:
    record = await server.simulator.incoming_call(
        f"+1202555{2000 + n:04d}", LINE, Persona.person(turn), f"{server.url}/twilio/voice"
    )
    if record.errors:
        raise RuntimeError(f"call {record.sid}: {record.errors}")
    return record


def stream_numbers(record: CallRecord) -> tuple[list[float], list[float]]:
    replies: list[float] = []
    clears: list[float] = []
    for entry in record.entries("stream"):
        replies += entry.data.get("reply_after", [])
        clears += entry.data.get("clear_after", [])
    return replies, clears


record_wait = 0.0


def record_reply(server: Server, record: CallRecord) -> float:
    """Record path: Twilio's silence wait + the recording's webhook + the reply's audio fetch."""
    exchanges = [w for w in server.simulator.webhooks if w.sid == record.sid]
    index = next(i for i, w in enumerate(exchanges) if "RecordingUrl" in w.params)
    twiml = next(w.body for w in reversed(exchanges[:index]) if "<Record" in w.body)
    match = re.search(r'<Record[^>]*\btimeout="(\d+)"', twiml)
    silence = float(match.group(1)) if match else 5.0  # Twilio's default
    global record_wait
    record_wait = silence
    play = next(w for w in exchanges[index + 1 :] if w.purpose == "play")
    return silence + exchanges[index].elapsed + play.elapsed


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def ms(seconds: float) -> str:
    return f"{1000 * seconds:8.0f} ms"


def proc_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds, RSS MB) of a process, children not included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = next(
        int(line.split()[1]) / 1024
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return cpu, rss


async def sample_rss(pid: int, peak: list[float]) -> None:
    while True:
        peak.append(proc_stats(pid)[1])
        await asyncio.sleep(0.2)


async def main(calls: int, concurrent: int) -> None:
    answer_after, barge_in = Turn(say="yes"), Turn(say="yes", barge_in_ms=1200)
    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        record = await start(workdir, "record")
        try:
            await call(record, 0, answer_after)  # warm: models, prompt cache
            latencies = [record_reply(record, await call(record, n, answer_after))
                         for n in range(1, calls + 1)]  # fmt: skip
            rows.append(("record: end of speech -> reply audio", latencies))
            rows.append(("record: of which Twilio's <Record timeout> wait", [record_wait]))
        finally:
            await stop(record)
        stream = await start(workdir, "stream")
        try:
            await call(stream, 0, answer_after)
            replies: list[float] = []
            for n in range(1, calls + 1):
                replies += stream_numbers(await call(stream, n, answer_after))[0]
            rows.append(("stream: end of speech -> reply audio", replies))
            barge_replies: list[float] = []
            clears: list[float] = []
            for n in range(calls + 1, 2 * calls + 1):
                got = stream_numbers(await call(stream, n, barge_in))
                barge_replies += got[0]
                clears += got[1]
            rows.append(("stream, barge-in: end of speech -> reply audio", barge_replies))
            rows.append(("stream, barge-in: speech onset -> clear", clears))
            cpu0, rss0 = proc_stats(stream.process.pid)
            peak = [rss0]
            sampler = asyncio.ensure_future(sample_rss(stream.process.pid, peak))
            started, own0 = time.perf_counter(), time.process_time()
            records = await asyncio.gather(
                *(call(stream, 1000 + n, answer_after) for n in range(concurrent))
            )
            wall, own = time.perf_counter() - started, time.process_time() - own0
            sampler.cancel()
            cpu1, _ = proc_stats(stream.process.pid)
            rss1 = max(peak)
            loaded = [x for r in records for x in stream_numbers(r)[0]]
            rows.append((f"stream, {concurrent} calls at once: end of speech -> reply", loaded))
        finally:
            await stop(stream)
    print(f"{'measure':58} {'n':>3} {'p50':>11} {'p95':>11}")
    for name, values in rows:
        print(f"{name:58} {len(values):3} {ms(pct(values, 50))} {ms(pct(values, 95))}")
    base, live = pct(rows[0][1], 50), pct(rows[2][1], 50)
    print(f"\nreply p50, stream / record: {live / base:.2f}x")
    print(
        f"{concurrent} concurrent streaming calls in {wall:.1f} s: server CPU "
        f"{(cpu1 - cpu0) / concurrent * 1000:.0f} ms per call "
        f"({(cpu1 - cpu0) / wall * 100:.0f}% of one core), RSS {rss0:.0f} -> {rss1:.0f} MB "
        f"peak ({(rss1 - rss0) / concurrent:.2f} MB per call); the simulator (this process) "
        f"used {own / wall * 100:.0f}% of one core"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=8, help="calls per measured path")
    parser.add_argument("--concurrent", type=int, default=50, help="streaming calls at once")
    parser.add_argument("--quick", action="store_true", help="3 calls per path, 10 at once")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.concurrent = 3, 10
    asyncio.run(main(args.calls, args.concurrent))
