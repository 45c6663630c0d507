"""Media Streams turns against the record path, in the same run.

One server process-in-this-process per mode (SQLite, the shipped order-status line, the real
TTS cache and PocketSphinx), driven over real HTTP and WebSockets by the Twilio-side client
of the tests (``tests/web/stream_client.py``). Each call, on the menu:

- **key**: the caller presses 9 (repeat) while the menu plays; stream: key -> first audio
  frame of the reply; record baseline: the ``<Gather>`` webhook's round trip (Twilio then
  still has to fetch the ``<Play>`` audio, not counted).
- **speech**: the caller says "repeat" (espeak-ng, caller voice) while the menu plays;
  stream: end of the caller's audio -> first frame of the reply (the 500 ms end_silence
  included) and speech onset -> ``clear`` (barge-in); record baseline: ``<Record
  timeout>`` (the seconds of silence Twilio waits, 5 s for this state) plus the recording
  webhook's round trip (fetch, decode, next TwiML).

    PYTHONPATH=. .venv/bin/python bench/stream_turns.py [--calls 10] [--concurrent 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from array import array
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer, unused_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.config import Settings  # noqa: E402
from ivr.simulation.voice import CallerVoice  # noqa: E402
from ivr.speech.audio import write_wav  # noqa: E402
from ivr.telephony.twilio import SIGNATURE_HEADER, sign  # noqa: E402
from ivr.web.app import AppParts, create_app  # noqa: E402
from tests.telephony.fake_twilio_api import ACCOUNT, TOKEN, FakeTwilioApi  # noqa: E402
from tests.web.stream_client import StreamCall  # noqa: E402

SHOP_LINE = "+15550100"


async def start(tmp: Path, mode: str, twilio: FakeTwilioApi) -> tuple[TestServer, str]:
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        provider="twilio",
        public_url=url,
        database_url=f"sqlite:///{tmp}/{mode}.db",
        dialplans=ROOT / "dialplans",
        audio_dir=tmp / "audio",
        var_dir=tmp / "var",
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
        twilio_from="+12025550100",
        twilio_api_base=twilio.base_url,
        twilio_media=mode,  # type: ignore[arg-type]
    )
    app_server = TestServer(create_app(settings, url, AppParts(warm_up=True)), port=port)
    await app_server.start_server()
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            async with http.get(url + "/readyz") as ready:
                if ready.status == 200:
                    break
            await asyncio.sleep(0.1)
    return app_server, url


async def post(http: aiohttp.ClientSession, url: str, form: dict[str, str]) -> str:
    headers = {SIGNATURE_HEADER: sign(TOKEN, url, form)}
    async with http.post(url, data=form, headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.text()


def voice_form(sid: str) -> dict[str, str]:
    return {"CallSid": sid, "AccountSid": ACCOUNT, "From": "+12025550142", "To": SHOP_LINE,
            "CallStatus": "in-progress", "Direction": "inbound"}  # fmt: skip


def first_after(call: StreamCall, kind: str, start: int) -> int | None:
    return next(
        (i for i in range(start, len(call.heard.log)) if call.heard.log[i][0] == kind), None
    )


async def reply(call: StreamCall, start: int) -> tuple[float, float]:
    """Times of the clear after entry ``start`` and of the first audio frame after it."""
    state: dict[str, int] = {}

    def arrived(_: object) -> bool:
        cleared = first_after(call, "clear", start)
        if cleared is None:
            return False
        media = first_after(call, "media", cleared)
        state.update(cleared=cleared, media=media or -1)
        return media is not None

    await call.wait(arrived, timeout=60)
    return call.heard.times[state["cleared"]], call.heard.times[state["media"]]


async def stream_call(
    http: aiohttp.ClientSession, url: str, sid: str, repeat: bytes
) -> dict[str, float]:
    twiml = await post(http, url + "/twilio/voice", voice_form(sid))
    call = StreamCall(http, twiml, sid)
    await call.open()
    loop = asyncio.get_running_loop()
    try:
        await call.wait(lambda h: h.audio_bytes() >= 4000)
        start, pressed = len(call.heard.log), loop.time()
        await call.press("9")
        _, media = await reply(call, start)
        key = media - pressed
        await call.wait(lambda h: sum(len(v) for k, v in h.log[start:] if k == "media") >= 8000)
        start = len(call.heard.log)
        await call.say(repeat)
        cleared, media = await reply(call, start)
        assert call.speech_started is not None
        assert call.speech_ended is not None
        return {"key": key, "speech": media - call.speech_ended,
                "clear": cleared - call.speech_started}  # fmt: skip
    finally:
        await call.hang_up()


async def record_call(
    http: aiohttp.ClientSession, url: str, sid: str, twilio: FakeTwilioApi, wav: bytes
) -> dict[str, float]:
    doc = ET.fromstring(await post(http, url + "/twilio/voice", voice_form(sid)))
    gather, record = doc.find("Gather"), doc.find("Record")
    assert gather is not None
    assert record is not None
    form = {"CallSid": sid, "AccountSid": ACCOUNT, "CallStatus": "in-progress"}
    began = time.perf_counter()
    doc = ET.fromstring(await post(http, gather.get("action", ""), {**form, "Digits": "9"}))
    key = time.perf_counter() - began
    record = doc.find("Record")
    assert record is not None
    recording_sid = "RE" + sid[2:]
    twilio.recordings[recording_sid] = wav
    recording_url = f"{twilio.base_url}/2010-04-01/Accounts/{ACCOUNT}/Recordings/{recording_sid}"
    fields = {**form, "RecordingUrl": recording_url, "RecordingSid": recording_sid,
              "RecordingDuration": "1"}  # fmt: skip
    began = time.perf_counter()
    await post(http, record.get("action", ""), fields)
    webhook = time.perf_counter() - began
    return {"key": key, "speech": float(record.get("timeout", "5")) + webhook}


def trim(pcm16: bytes, threshold: int = 300) -> bytes:
    samples = array("h", pcm16)
    loud = [i for i, v in enumerate(samples) if abs(v) > threshold]
    return samples[loud[0] : loud[-1] + 1].tobytes() if loud else pcm16


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered) * 1000:7.0f} / {p95 * 1000:7.0f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--concurrent", type=int, default=1)
    args = parser.parse_args()
    # Trimmed to the voice itself, so that "end of speech" is where the caller stops talking
    # (espeak-ng pads its output with silence).
    pcm = trim(await CallerVoice([]).speak("repeat", "en-US"))
    wav = write_wav(None, pcm, 8000)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        twilio = FakeTwilioApi()
        fake = TestServer(twilio.app())
        await fake.start_server()
        twilio.base_url = str(fake.make_url("")).rstrip("/")
        results: dict[str, list[dict[str, float]]] = {}
        for mode in ("record", "stream"):
            server, url = await start(tmp, mode, twilio)
            async with aiohttp.ClientSession() as http:
                gate = asyncio.Semaphore(args.concurrent)

                async def one(
                    n: int, mode: str = mode, url: str = url, gate: asyncio.Semaphore = gate
                ) -> dict[str, float]:
                    sid = f"CA{mode[0]}{n:031d}"
                    async with gate:
                        if mode == "stream":
                            return await stream_call(http, url, sid, pcm)
                        return await record_call(http, url, sid, twilio, wav)

                await one(-1 + 10**6)  # warm: first call after start-up not counted
                results[mode] = list(await asyncio.gather(*(one(n) for n in range(args.calls))))
            await server.close()
        await fake.close()
    print(f"{args.calls} calls per mode, {args.concurrent} at once; p50 / p95")
    print(f"{'measure':44} {'record (baseline)':>20} {'stream':>20} {'ratio p50':>10}")
    rows = [
        ("key -> reply (record: Gather webhook)", "key"),
        ("end of speech -> reply (record: timeout+hook)", "speech"),
    ]
    for label, key in rows:
        base = [r[key] for r in results["record"]]
        live = [r[key] for r in results["stream"]]
        ratio = statistics.median(live) / statistics.median(base)
        print(f"{label:44} {summary(base):>20} {summary(live):>20} {ratio:10.2f}")
    clear = [r["clear"] for r in results["stream"]]
    print(f"{'speech onset -> clear (barge-in)':44} {'-':>20} {summary(clear):>20}")


if __name__ == "__main__":
    asyncio.run(main())
