"""The server side of bench/streams.py: a real ``ivr serve`` in a child process, its outcomes
and its CPU and memory (its decoder worker processes included), read from /proc.

The simulator in the bench process is the server's Twilio: ``start`` hands it the server's
REST base and the server the simulator's, both over real HTTP.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import aiohttp

from ivr.telephony.simulator import Simulator, SimulatorSettings

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "AC" + "7" * 32
TOKEN = "bench-streams-token"
STARTUP_SECONDS = 180  # warming both recognizers on a loaded 2-core machine takes a while


class PlanLine(Protocol):
    """What the server needs of a bench line: a file name and the plan's YAML."""

    engine: str
    plan: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    simulator: Simulator
    database: str  # IVR_DATABASE_URL
    log: BinaryIO  # the server's stderr, read back when it fails to start


async def start(
    workdir: Path, media: str, lines: Sequence[PlanLine], database: str | None = None
) -> Server:
    settings = SimulatorSettings(pace=0.0, stream_time_scale=1.0)
    simulator = Simulator(ACCOUNT, TOKEN, settings=settings)
    api_base = await simulator.start()
    plans = workdir / "plans"
    plans.mkdir(exist_ok=True)
    for line in lines:
        (plans / f"{line.engine}.yaml").write_text(line.plan)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = database or f"sqlite:///{workdir}/{media}.db"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IVR_")},
        "IVR_PROVIDER": "twilio",
        "IVR_TWILIO_MEDIA": media,
        "IVR_PUBLIC_URL": url,
        "IVR_DATABASE_URL": database,
        "IVR_DIALPLANS": str(plans),
        "IVR_VAR_DIR": str(workdir / f"var-{media}"),
        "IVR_AUDIO_DIR": str(workdir / "audio"),
        "IVR_TWILIO_ACCOUNT_SID": ACCOUNT,
        "IVR_TWILIO_AUTH_TOKEN": TOKEN,
        "IVR_TWILIO_FROM": "+12025550100",
        "IVR_TWILIO_API_BASE": api_base,
    }
    log = (workdir / f"{media}.log").open("wb")
    command = [sys.executable, "-m", "ivr", "serve", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=log)
    server = Server(url, process, simulator, database, log)
    deadline = time.monotonic() + STARTUP_SECONDS
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = (workdir / f"{media}.log").read_text(errors="replace")[-2000:]
                await stop(server)
                raise RuntimeError(f"the {media} server exited with {process.returncode}:\n{tail}")
            try:
                async with session.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return server
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    await stop(server)
    raise RuntimeError(f"the {media} server was not ready after {STARTUP_SECONDS} s")


async def stop(server: Server) -> None:
    server.process.terminate()
    server.process.wait(timeout=30)
    server.log.close()
    await server.simulator.close()


async def outcomes(server: Server) -> dict[str, str | None]:
    """Call SID -> outcome, as the server recorded it."""
    query = "SELECT provider_sid, outcome FROM calls"
    if server.database.startswith("sqlite:///"):
        with sqlite3.connect(server.database.removeprefix("sqlite:///")) as db:
            return dict(db.execute(query).fetchall())
    import asyncpg  # type: ignore[import-untyped]  # PostgreSQL (--database): the app's driver

    url = re.sub(r"^postgresql\+\w+://", "postgresql://", server.database)
    connection = await asyncpg.connect(url)
    try:
        return {row[0]: row[1] for row in await connection.fetch(query)}
    finally:
        await connection.close()


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the PocketSphinx decoder processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children.get(current, [])
    return tree


def tree_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds, RSS MB) of a process and its descendants alive now."""
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = rss = 0.0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue  # it just exited
        cpu += (int(fields[11]) + int(fields[12])) / ticks
        rss += next((int(s.split()[1]) / 1024 for s in status if s.startswith("VmRSS:")), 0.0)
    return cpu, rss


async def sample_rss(pid: int, peak: list[float]) -> None:
    while True:
        peak.append(tree_stats(pid)[1])
        await asyncio.sleep(0.25)
