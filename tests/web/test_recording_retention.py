"""``IVR_RECORDING_RETENTION``: a caller's recording is deleted at the provider once it has been
decoded (the default, ``delete``), or left there (``keep``) for the operator's own records."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from ivr.speech.audio import write_wav
from tests.web.conftest import start_server
from tests.web.test_recordings import RECORDING_SID, answer_with_recording, events_of


@pytest.mark.parametrize(("retention", "deletes"), [(None, 1), ("delete", 1), ("keep", 0)])
async def test_the_recording_is_deleted_unless_kept(
    tmp_path: Path, aiohttp_server: AiohttpServer, retention: str | None, deletes: int
) -> None:
    overrides = {} if retention is None else {"recording_retention": retention}
    async with aiohttp.ClientSession() as http:
        server = await start_server(tmp_path, aiohttp_server, http, **overrides)
        audio = write_wav(None, bytes(2 * 8000), 8000)  # one second of a caller saying nothing
        server.twilio.recordings[RECORDING_SID] = audio
        ref, answer = await answer_with_recording(server)  # drains the background work
        assert answer.find("Record") is not None  # the recording was used: asked again
        assert len(server.twilio.requests("GET", f"{RECORDING_SID}.wav")) == 1  # fetched to decode
        assert len(server.twilio.requests("DELETE", f"{RECORDING_SID}.json")) == deletes
        assert (RECORDING_SID in server.twilio.recordings) is (deletes == 0)
        assert [kind for kind, _ in await events_of(server, ref) if kind == "error"] == []
