"""The synthesis worker's own guarantees, checked on the real pyttsx3 + espeak-ng engine.

The worker runs in a fresh interpreter here, as in production: espeak-ng is initialised once
per process and a process that used it must not be forked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_worker_script(body: str) -> dict[str, object]:
    script = (
        textwrap.dedent(
            """
        import json
        from ivr.speech import tts_worker
        if __name__ == "__main__":
            synthesizer = tts_worker._Synthesizer()
            result = {}
        """
        )
        + textwrap.indent(textwrap.dedent(body), "    ")
        + "    print(json.dumps(result))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    last_line = run.stdout.strip().splitlines()[-1]  # pyttsx3 prints "Audio saved to ..." too
    result: dict[str, object] = json.loads(last_line)
    return result


def test_an_utterance_cancelled_by_pyttsx3s_own_stop_is_rendered_again() -> None:
    # pyttsx3's runAndWait() begins with stop(), which cancels the utterance when espeak-ng
    # still reports a previous one as playing (a busy machine): the render comes out empty or
    # unwritten. Whether that happens depends on the machine's load, so the first render of
    # every utterance here is made to end as such a cancelled one does (the real engine
    # renders, its audio is dropped), every time: each utterance must still come back whole.
    result = run_worker_script(
        """
        text = "Prompt number seven for everyone."
        reference = len(synthesizer.synthesize(text, "gmw/en-us", 160))
        real_render = synthesizer._render_once
        renders = []

        def cancelled_first(text):
            frames = real_render(text)
            renders.append(len(frames))
            return b"" if len(renders) % 2 == 1 else frames

        synthesizer._render_once = cancelled_first
        lengths = [len(synthesizer.synthesize(text, "gmw/en-us", 160)) for _ in range(5)]
        result = {
            "reference": reference,
            "lengths": lengths,
            "renders": len(renders),
            "empty": synthesizer.empty_renders,
        }
        """
    )
    reference = result["reference"]
    assert isinstance(reference, int)
    assert reference > 50_000
    lengths = result["lengths"]
    assert isinstance(lengths, list)
    # Every utterance comes back whole: none empty, none cut short...
    assert all(abs(length - reference) < 0.05 * reference for length in lengths), lengths
    # ...because each cancelled render was rendered again, once.
    assert result["empty"] == 5
    assert result["renders"] == 10


def test_utterances_come_back_whole_when_pyttsx3s_stop_flag_is_left_set() -> None:
    # The flag pyttsx3's stop() sets, set by hand before every utterance: how many renders it
    # cancels depends on the machine's speed, so only the outcome is asserted, never a count.
    result = run_worker_script(
        """
        text = "Prompt number seven for everyone."
        reference = len(synthesizer.synthesize(text, "gmw/en-us", 160))
        lengths = []
        for _ in range(20):
            synthesizer._engine.proxy._driver._stopping = True
            lengths.append(len(synthesizer.synthesize(text, "gmw/en-us", 160)))
        result = {"reference": reference, "lengths": lengths}
        """
    )
    reference = result["reference"]
    assert isinstance(reference, int)
    lengths = result["lengths"]
    assert isinstance(lengths, list)
    assert all(abs(length - reference) < 0.05 * reference for length in lengths), lengths


def test_audio_that_stays_empty_is_an_error_not_an_empty_prompt() -> None:
    result = run_worker_script(
        """
        synthesizer._render_once = lambda text: b""  # an engine that never produces audio
        try:
            synthesizer.synthesize("Hello.", "gmw/en-us", 160)
            result = {"error": None}
        except RuntimeError as exc:
            result = {"error": str(exc), "empty": synthesizer.empty_renders}
        """
    )
    assert result["error"] == "espeak-ng produced no audio for 'Hello.', 3 times"
    assert result["empty"] == 3
