"""``ivr demo --console`` keeps the demo's server up with its campaign in the console."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from tests.conftest import ROOT

CONSOLE_LINE = re.compile(r"Console: (http://\S+)/console/\s+— sign in with the API token (\S+)")


async def _campaigns_page(base: str, token: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(base + "/console/sign-in") as response:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await response.text())
        assert csrf is not None
        form = {"csrf": csrf.group(1), "user": "", "password": token, "next": "/console/campaigns"}
        async with http.post(base + "/console/sign-in", data=form) as response:
            return response.status, await response.text()


def _as_a_shell_starts_a_background_job() -> None:
    # A non-interactive shell starts `cmd &` with SIGINT ignored; Ctrl-C (SIGINT) must still
    # stop the demo's server then, as it does in a terminal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.timeout(300)  # the demo's calls are streamed in real time
def test_demo_console_serves_the_campaign_until_interrupted() -> None:
    port = unused_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ivr", "demo", "--console", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, preexec_fn=_as_a_shell_starts_a_background_job,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 240
        found = None
        while found is None:
            assert time.monotonic() < deadline, "no console line:\n" + "".join(seen)
            assert process.poll() is None, "the demo exited:\n" + "".join(seen)
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                continue
            found = CONSOLE_LINE.search(" ".join("".join(seen).split()))
        output = " ".join("".join(seen).split())
        assert "Outcomes as expected" in output
        base, token = found.group(1), found.group(2)
        assert base == f"http://127.0.0.1:{port}"
        status, page = asyncio.run(_campaigns_page(base, token))
        assert status == 200
        assert "Appointment reminders (demo)" in page
        assert "5 / 6 finished" in page  # Fay's call waits for her morning
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # never leave the server running
            raise
        reader.join(10)  # it stops at the end of the output
        process.stdout.close()
        while not lines.empty():
            seen.append(lines.get())
    assert code == 0, "".join(seen)
    assert "stopped" in "".join(seen).split("Ctrl-C stops the server.")[-1]
