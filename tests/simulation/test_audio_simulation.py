"""``ivr simulate --audio``: scenarios through real audio and the real recognizers, in-process.

English speech is decoded by PocketSphinx, Korean by Vosk with the Korean model from PyPI;
``say:`` turns are synthesized by espeak-ng in the caller's voice at 8 kHz, ``audio:`` turns
are real FSDD recordings. The shipped scenarios are judged as over HTTP
(``tests/web/test_simulated_calls.py``): by what the call did, so that one list of known
recognition gaps (``RECOGNITION_GAPS`` in recognition_gaps.py) governs both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
from click.testing import CliRunner, Result

from ivr.calls.recognition import OfflineRecognizer
from ivr.cli import main
from ivr.dialplan.loader import PlanSet, load_plans_or_raise
from ivr.dialplan.schema import Plan
from ivr.simulation.hearing import AudioEars
from ivr.simulation.runner import CallFacts, check_expectations, run_scenario
from ivr.simulation.scenario import Scenario, Turn, load_scenario, scenario_files
from ivr.simulation.transcript import format_lines
from ivr.simulation.voice import CallerVoice
from ivr.speech.asr import Grammar, Recognition, RecognitionStream, Word
from ivr.speech.audio import read_wav, write_wav
from tests.conftest import DIALPLANS, FSDD, SCENARIOS
from tests.simulation.recognition_gaps import RECOGNITION_GAPS, gap_marks

PLANS = load_plans_or_raise([DIALPLANS])
ENGINES = {"en-US": "pocketsphinx:", "ko-KR": "vosk:"}


def _scenario(path: Path) -> Scenario:
    return load_scenario(path)


def _plan(scenario: Scenario) -> Plan:
    return PLANS.plans[scenario.plan]


def _speaks(scenario: Scenario) -> bool:
    return any(t.say is not None or t.audio is not None for t in scenario.turns)


SPOKEN = [
    pytest.param(p, marks=gap_marks(p.stem))
    for p in scenario_files(SCENARIOS)
    if _speaks(_scenario(p)) and _plan(_scenario(p)).language in ENGINES
    and not _scenario(p).text_only
]  # fmt: skip


def simulate(*args: str) -> Result:
    return CliRunner().invoke(main, ["simulate", *args, "--audio", "--audio-dir", str(FSDD)])


def simulate_json(path: Path) -> tuple[Result, dict[str, Any]]:
    result = simulate(_scenario(path).plan, "--script", str(path), "--json")
    return result, json.loads(result.stdout)


def call_facts_of(doc: dict[str, Any]) -> CallFacts:
    lines = doc["transcript"]
    said = " ".join(line["text"] for line in lines if line["kind"] in ("robot", "play"))
    return CallFacts(doc["outcome"], doc["end"], doc["transfer"], doc["sms"], said, doc["states"])


def outcome_failures(scenario: Scenario, doc: dict[str, Any]) -> list[str]:
    """What the HTTP test checks: the call's outcome, and every prompt a turn expects."""
    facts = call_facts_of(doc)
    said = facts.said
    normal = " ".join(said.lower().split())
    expected = [text for turn in scenario.turns for text in turn.expect]
    missing = [t for t in expected if " ".join(t.lower().split()) not in normal]
    return check_expectations(scenario.expect, facts) + [f"never said {t!r}" for t in missing]


@pytest.mark.slow
@pytest.mark.parametrize("path", SPOKEN, ids=lambda p: p.stem)
def test_shipped_scenario_with_audio(path: Path) -> None:
    scenario = _scenario(path)
    result, doc = simulate_json(path)
    assert result.exit_code == (0 if doc["passed"] else 1), result.output
    spoken = [t for t in scenario.turns if t.say is not None or t.audio is not None]
    recognitions = doc["recognitions"]
    assert [r["said"] for r in recognitions] == [t.say for t in spoken][: len(recognitions)]
    engine = ENGINES[_plan(scenario).language]
    assert all(r["engine"].startswith(engine) for r in recognitions), recognitions
    failures = outcome_failures(scenario, doc)
    if (gap := RECOGNITION_GAPS.get(path.stem)) is not None:
        gap.check(call_facts_of(doc), failures)  # raises when the call went the known wrong way
    assert failures == []


def test_json_and_transcript_show_what_was_recognized() -> None:
    path = SCENARIOS / "delivery_reschedule.yaml"
    result, doc = simulate_json(path)
    assert result.exit_code == 0, result.output
    [heard] = doc["recognitions"]
    assert heard["said"] == "another day please"
    assert heard["heard"] == "another day"
    assert heard["intent"] == "reschedule"
    assert heard["engine"] == "pocketsphinx:en-us"
    assert heard["misrecognized"] is False
    assert 0.5 <= heard["confidence"] <= 1.0
    assert [w["text"] for w in heard["words"]] == ["another", "day"]
    assert 0.5 < heard["seconds"] < 3.0
    kinds = [line["kind"] for line in doc["transcript"]]
    at = kinds.index("heard")
    assert kinds[at - 1 : at + 2] == ["caller", "heard", "understood"]
    text = simulate("delivery_notice", "--script", str(path)).output
    confidence = f"{heard['confidence']:.2f}"
    assert 'CALLER  says "another day please"\n' in text
    assert f'HEARD   "another day" (confidence {confidence}, pocketsphinx:en-us)\n' in text
    assert f"understood: intent reschedule (confidence {confidence})" in text


def _fsdd_digits(digits: str, into: Path) -> Path:
    """One recording of a spoken digit string: FSDD takes with a quarter second between."""
    gap = bytes(2 * 2000)
    pcm = gap + gap.join(read_wav(FSDD / f"{d}_jackson_2.wav")[0] for d in digits) + gap
    write_wav(into, pcm, 8000)
    return into


def _write_scenario(directory: Path, turns: list[dict[str, Any]], **extra: Any) -> Path:
    doc = {"plan": "order_status_line", "name": "recordings", "turns": turns, **extra}
    path = directory / "scenario.yaml"
    path.write_text(json.dumps(doc), encoding="utf-8")  # JSON is YAML
    return path


@pytest.mark.slow
def test_audio_turns_play_real_recordings(tmp_path: Path) -> None:
    _fsdd_digits("4207", tmp_path / "order.wav")
    script = _write_scenario(
        tmp_path,
        [
            {"press": "1"},
            {"audio": "3_jackson_0.wav"},  # an FSDD name, found with --audio-dir
            # a recording next to the scenario file:
            {"expect": "has 4 to 10 digits", "audio": "order.wav", "digits": "4207"},
            {"expect": "Order four two zero seven is delivered", "hangup": True},
        ],
        lookups=[{"status": "ok", "data": {"status": "delivered"}}],
        expect={"outcome": "status_told"},
    )
    result = simulate("order_status_line", "--script", str(script))
    assert result.exit_code == 0, result.output
    assert "CALLER  plays 3_jackson_0.wav\n" in result.output
    assert 'HEARD   "three" (confidence' in result.output
    assert "CALLER  plays order.wav\n" in result.output
    assert 'HEARD   "four two zero seven" (confidence' in result.output
    assert "understood: digits 4207" in result.output


def test_missing_or_corrupt_audio_names_the_turn(tmp_path: Path) -> None:
    script = _write_scenario(tmp_path, [{"press": "1"}, {"audio": "no_such_take.wav"}])
    missing = simulate("order_status_line", "--script", str(script))
    assert missing.exit_code == 1
    assert "Error: recordings: turn 2: caller audio 'no_such_take.wav' not found" in missing.output
    assert str(FSDD) in missing.output  # where it was looked for
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    script = _write_scenario(tmp_path, [{"audio": "broken.wav"}])
    corrupt = simulate("order_status_line", "--script", str(script))
    assert corrupt.exit_code == 1
    assert "Error: recordings: turn 1: audio 'broken.wav' is not usable:" in corrupt.output
    assert "Traceback" not in corrupt.output


def test_without_audio_text_turns_are_matched_directly() -> None:
    path = SCENARIOS / "delivery_reschedule.yaml"
    result = CliRunner().invoke(main, ["simulate", "delivery_notice", "--script", str(path)])
    assert result.exit_code == 0
    assert "HEARD" not in result.output
    assert "understood: intent reschedule (confidence 1.00)" in result.output


# -- how misrecognitions read, with an engine that mishears on purpose ------------------------


class MishearingEngine:
    """Hears ``words`` with ``confidence`` whatever is said."""

    name = "mishearing"
    language = "en-US"
    runs_in: Literal["thread", "process"] = "thread"

    def __init__(self, words: str, confidence: float) -> None:
        self.words, self.confidence = words, confidence

    def recognize(self, pcm16: bytes, sample_rate: int, grammar: Grammar) -> Recognition:
        assert pcm16
        assert sample_rate == 8000
        heard = [Word(w, self.confidence) for w in self.words.split()]
        return grammar.resolve(heard, self.name)

    def stream(self, grammar: Grammar, sample_rate: int) -> RecognitionStream:
        raise NotImplementedError


class FixedRecognizer(OfflineRecognizer):
    def __init__(self, engine: MishearingEngine) -> None:
        super().__init__()
        self.fixed = engine

    def engine(self, language: str) -> MishearingEngine:
        del language  # one engine for all
        return self.fixed


class ToneVoice(CallerVoice):
    """Any speech is a second of tone: the engine above does not listen anyway."""

    def __init__(self) -> None:
        super().__init__([])

    def speak_sync(self, text: str, language: str) -> bytes:
        del text, language  # all the same
        return b"\x00\x10" * 8000


def _mishear(plans: PlanSet, words: str, confidence: float) -> str:
    ears = AudioEars(FixedRecognizer(MishearingEngine(words, confidence)), ToneVoice())
    scenario = Scenario(
        plan="appointment_reminder",
        name="mishears",
        variables={"name": "Anna", "clinic": "Sunrise Clinic", "when": "2026-11-24T10:00"},
        turns=[Turn(say="yes, I'll be there", intent="confirm")],
    )
    result = run_scenario(plans.plans["appointment_reminder"], scenario, ears=ears)
    return format_lines(result.call.lines) + "\n" + "\n".join(result.failures)


def test_a_misrecognition_shows_what_was_heard(shipped_plans: PlanSet) -> None:
    text = _mishear(shipped_plans, "no", 0.9)
    assert (
        'CALLER  says "yes, I\'ll be there"\n'
        'HEARD   "no" (confidence 0.90, mishearing)  MISHEARD: the words said mean intent confirm\n'
        "        understood: intent cancel (confidence 0.90)\n"
    ) in text
    assert "turn 1: expected intent 'confirm', got 'cancel'" in text


def test_a_rejected_recognition_shows_its_confidence(shipped_plans: PlanSet) -> None:
    text = _mishear(shipped_plans, "yes", 0.3)
    assert (
        'HEARD   "yes" (confidence 0.30, mishearing)  '
        "REJECTED: confidence below 0.50; the words said mean intent confirm\n"
        "        understood: no match (confidence 0.30)\n"
    ) in text


async def test_refuses_to_block_an_event_loop(shipped_plans: PlanSet) -> None:
    ears = AudioEars(FixedRecognizer(MishearingEngine("yes", 1.0)), ToneVoice())
    plan = shipped_plans.plans["appointment_reminder"]
    with pytest.raises(RuntimeError, match=r"asyncio\.to_thread"):
        ears(Turn(say="yes"), None, plan)
