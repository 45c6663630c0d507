"""Real ``ivr serve`` processes against a Simulator in the test process, over real HTTP.

A :class:`Cluster` owns everything a test starts: the Simulator (Twilio's REST API on a free
port, sending signed webhooks), a receiver for result webhooks, and server subprocesses whose
output goes to files under ``tmp_path``. Leaving ``open_cluster`` kills every process it
started, also when the test failed, and prints the tail of each log (pytest shows it with the
failure). Waiting is polling with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web
from aiohttp.test_utils import unused_port
from sqlalchemy import select

from ivr.store import Store
from ivr.store.models import CALLS, NOTIFICATIONS, SMS_MESSAGES, WEBHOOK_DELIVERIES
from ivr.telephony.simulator import Simulator, SimulatorSettings
from tests.conftest import DIALPLANS, ROOT

ACCOUNT_SID = "AC" + "5" * 32
FROM_NUMBER = "+12025550100"
API_TOKEN = "serve-test-token"
WEBHOOK_SECRET = "serve-test-webhook-secret"
HOST = "127.0.0.1"
# Fictional numbers (555-0100..0199 is reserved for fiction in every area code) that
# ``phonenumbers`` accepts; 202 is left out because the caller id lives there.
AREA_CODES = ("212", "312", "415", "617", "713", "303", "404", "503", "206", "305", "702", "801")
LOG_TAIL_LINES = 40
AUTH_TOKEN = secrets.token_hex(16)
SECRET_KEY = secrets.token_hex(32)


def phone_numbers(count: int) -> list[str]:
    """``count`` distinct valid fictional E.164 numbers."""
    if count > 100 * len(AREA_CODES):
        raise ValueError(f"at most {100 * len(AREA_CODES)} fictional numbers")
    return [f"+1{AREA_CODES[i // 100]}55501{i % 100:02d}" for i in range(count)]


def call_ref(url: str) -> str:
    """The server's call reference in a call's answer URL (``/twilio/voice?call=REF``)."""
    return parse_qs(urlsplit(url).query)["call"][0]


def server_env(
    url: str, database_url: str, api_base: str, data: Path, **extra: str
) -> dict[str, str]:
    """The environment of an ``ivr serve`` that dials through the simulator at ``api_base``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(
        IVR_PROVIDER="twilio",
        IVR_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        IVR_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        IVR_TWILIO_FROM=FROM_NUMBER,
        IVR_TWILIO_API_BASE=api_base,
        IVR_PUBLIC_URL=url,
        IVR_DATABASE_URL=database_url,
        IVR_DIALPLANS=str(DIALPLANS),
        IVR_AUDIO_DIR=str(data / "audio"),
        IVR_VAR_DIR=str(data / "var"),
        IVR_SECRET_KEY=SECRET_KEY,
        IVR_API_TOKEN=API_TOKEN,
        IVR_WEBHOOK_SECRET=WEBHOOK_SECRET,
        IVR_CALL_WINDOW="00:00-24:00",
        IVR_OPTIONAL_CALL_WINDOW="00:00-24:00",
        IVR_DEFAULT_TIMEZONE="UTC",
    )
    env.update(extra)
    return env


@dataclass
class ServeProcess:
    """One ``python -m ivr serve`` with its output in ``log``."""

    name: str
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    killed: bool = False  # on purpose, by the test

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ivr", "serve", "--host", HOST, "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a signal to the test's group does not reach it
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def wait_ready(self, http: aiohttp.ClientSession, timeout: float = 60.0) -> None:
        """Until ``/healthz`` answers (the database is migrated and the scheduler runs)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise AssertionError(f"{self.name} exited before it was ready\n{self.tail()}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(self.url + "/healthz") as response:
                    if response.status == 200:
                        return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready after {timeout:.0f}s\n{self.tail()}")
            await asyncio.sleep(0.1)

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to this process (by its id only) and reap it."""
        if self.process is None:
            return
        self.killed = True
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL if it does not go within 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            text = ["(no output)"]
        return f"--- last {lines} lines of {self.log} ({self.name}) ---\n" + "\n".join(text)

    def cpu_seconds(self) -> float:
        """User and system CPU time the (running) process used so far; 0 where unknown."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

    def log_lines(self, containing: str) -> list[str]:
        return [
            line for line in self.log.read_text(errors="replace").splitlines() if containing in line
        ]


@dataclass
class Received:
    """A result webhook as the integrator got it."""

    body: dict[str, Any]
    at: float  # time.monotonic()


@dataclass
class Cluster:
    """The simulator, the integrator's webhook receiver and the servers of one test."""

    data: Path
    simulator: Simulator
    http: aiohttp.ClientSession
    callback_url: str
    received: list[Received] = field(default_factory=list)
    servers: list[ServeProcess] = field(default_factory=list)

    @property
    def api_base(self) -> str:
        assert self.simulator.api_base is not None
        return self.simulator.api_base

    def start_server(
        self, name: str, database_url: str, port: int | None = None, **env: str
    ) -> ServeProcess:
        """Start ``ivr serve`` on ``port`` (a free one by default); see :func:`server_env`."""
        port = port or unused_port()
        url = f"http://{HOST}:{port}"
        server = ServeProcess(
            name,
            port,
            server_env(url, database_url, self.api_base, self.data, **env),
            self.data / f"{name}.log",
        )
        self.servers.append(server)
        server.start()
        return server

    def logs(self) -> str:
        return "\n".join(server.tail() for server in self.servers)

    async def until(self, check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
        """Poll ``check`` until it holds; fail naming ``what``, with the servers' logs."""
        deadline = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:.0f}s\n{self.logs()}")
            for server in self.servers:
                if server.process is not None and not server.running and not server.killed:
                    code = server.process.returncode
                    raise AssertionError(f"{server.name} exited ({code})\n{self.logs()}")
            await asyncio.sleep(0.2)

    def import_csv(self, database_url: str, plan: str, rows: Sequence[dict[str, str]]) -> None:
        """``ivr notify import``: the rows written straight to the database in batches."""
        file = self.data / "import.csv"
        with file.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        env = server_env(f"http://{HOST}:1", database_url, self.api_base, self.data)
        result = subprocess.run(
            [sys.executable, "-m", "ivr", "notify", "import", str(file), "--plan", plan],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr

    async def notify(
        self, server: ServeProcess, requests: Sequence[dict[str, Any]], concurrency: int = 16
    ) -> list[str]:
        """POST each request to ``/api/v1/notifications``; their ids, in order."""
        gate = asyncio.Semaphore(concurrency)
        headers = {"Authorization": f"Bearer {API_TOKEN}"}

        async def one(request: dict[str, Any]) -> str:
            async with (
                gate,
                self.http.post(
                    server.url + "/api/v1/notifications", json=request, headers=headers
                ) as response,
            ):
                body = await response.json()
                assert response.status == 201, (response.status, body)
                return str(body["id"])

        return list(await asyncio.gather(*(one(r) for r in requests)))


@contextlib.asynccontextmanager
async def open_cluster(
    data: Path, settings: SimulatorSettings | None = None
) -> AsyncIterator[Cluster]:
    """A started simulator and webhook receiver; every server started is gone afterwards."""
    received: list[Received] = []

    async def result(request: web.Request) -> web.Response:
        received.append(Received(await request.json(), time.monotonic()))
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/results", result)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    receiver_port = unused_port()
    await web.TCPSite(runner, HOST, receiver_port).start()
    simulator = Simulator(ACCOUNT_SID, AUTH_TOKEN, settings=settings)
    await simulator.start(HOST, unused_port())
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    cluster = Cluster(data, simulator, http, f"http://{HOST}:{receiver_port}/results", received)
    try:
        yield cluster
    finally:
        for server in cluster.servers:
            server.kill()
        # Shown by pytest only when the test failed.
        print(cluster.logs())
        await http.close()
        await simulator.close()
        await runner.cleanup()


@dataclass
class Snapshot:
    """The rows a test checks, read straight from the database."""

    notifications: list[dict[str, Any]]
    calls: list[dict[str, Any]]
    sms: list[dict[str, Any]]
    webhooks: list[dict[str, Any]]

    def calls_of(self, notification_id: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["notification_id"] == notification_id]

    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self.notifications:
            counts[n["status"]] = counts.get(n["status"], 0) + 1
        return counts


async def snapshot(store: Store) -> Snapshot:
    async with store.read() as tx:

        async def rows(statement: Any) -> list[dict[str, Any]]:
            return [dict(r) for r in (await tx.session.execute(statement)).mappings()]

        return Snapshot(
            await rows(select(NOTIFICATIONS)),
            await rows(select(CALLS)),
            await rows(select(SMS_MESSAGES)),
            await rows(select(WEBHOOK_DELIVERIES)),
        )
