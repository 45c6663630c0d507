"""bench/streams.py, its ``--quick`` logic in-process with one call per measure and 2 at once.

A smoke test only: the numbers of a run on a shared machine mean nothing and are not asserted,
but a benchmark that no longer runs, or that times replies it never got, should fail here.
Real servers (``ivr serve`` on both paths), real WebSockets, espeak-ng callers, PocketSphinx
and the Korean Vosk model.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from types import ModuleType

import pytest

from tests.conftest import ROOT


def _bench() -> ModuleType:
    # Run as a script, bench/streams.py finds its helper module (streams_server) next to it.
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("bench_streams", ROOT / "bench" / "streams.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_streams"] = module
    spec.loader.exec_module(module)
    return module


BENCH = _bench()


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_a_quick_run_times_a_reply_on_every_call_of_both_paths_and_engines() -> None:
    report = await BENCH.run(calls=1, concurrent=2, ramp=0.0)
    rows = {(m.engine, m.path, m.name): m for m in report.measures}
    expected = {
        (engine, path, name)
        for engine in ("pocketsphinx", "vosk")
        for path, name in [
            ("record", "end of speech -> reply audio"),
            ("record", "of which the server (webhook + <Play>)"),
            ("stream", "end of speech -> reply audio"),
            ("stream", "barge-in: end of speech -> reply audio"),
            ("stream", "barge-in: speech onset -> clear"),
        ]
    }
    assert set(rows) == expected
    for key, measure in rows.items():
        assert len(measure.values) == 1, key  # one timed reply (or clear) per call
        assert all(math.isfinite(v) and v > 0 for v in measure.values), key
        if measure.calls:  # the rows that count calls: the right answer was recognized
            assert measure.understood == measure.calls == 1, key
    assert report.record_timeout == 5  # the plan's listen timeout, as the app renders it
    assert [(load.engine, load.calls) for load in report.loads] == [
        ("pocketsphinx", 2),
        ("vosk", 2),
    ]
    for load in report.loads:
        assert len(load.replies) == 2
        assert load.understood == 2
        assert load.errors == []
        assert load.server_cpu > 0
        assert load.rss_peak >= load.rss_before > 0
    text = BENCH.show(report)
    assert "pocketsphinx: reply p50 stream / record" in text
    assert "vosk: 2 streaming calls started at the same instant" in text
