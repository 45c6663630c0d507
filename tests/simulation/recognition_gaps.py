"""Scenarios the offline recognizers do not get right yet, each pinned to its misrecognition.

Measured in bench/asr_accuracy.py. A gap is a strict xfail that counts only when the call went
exactly the known wrong way (``KnownMisrecognition``): a 500, a crash, a hang or any other
failure fails the test, and so does a pass (XPASS): once recognition improves, the scenario must
move back to the others. Both ways a scenario meets real audio (over HTTP, and ``ivr simulate
--audio``) use this one list: the caller's speech is the same waveform in both.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ivr.simulation.runner import CallFacts


class KnownMisrecognition(AssertionError):
    """The call went the pinned wrong way: the expected failure of a recognition gap."""


@dataclass(frozen=True)
class Misrecognition:
    why: str
    outcome: str | None  # what the call ended with instead of the scenario's outcome
    states: tuple[str, ...]  # the states it went through instead

    def check(self, facts: CallFacts, failures: list[str]) -> None:
        """Raise ``KnownMisrecognition`` when ``facts`` are this gap; return otherwise."""
        went = (facts.outcome, tuple(facts.states))
        if failures and went == (self.outcome, self.states):
            raise KnownMisrecognition(f"{self.why}: {failures}")


RECOGNITION_GAPS = {
    "appointment_stop_calling": Misrecognition(
        "PocketSphinx hears a spoken 'stop' at 8 kHz as 'no'",
        "cancelled", ("greet", "ask", "cancelled"),
    ),
    "appointment_ko_stop": Misrecognition(
        "the small Korean model mishears '수신 거부' as '네' (yes)",
        "confirmed", ("greet", "ask", "confirmed"),
    ),
    "order_status_spoken_not_found": Misrecognition(
        "espeak's digits: insertions, 'five' as 'nine', no 'double': the spoken order number is"
        " never understood, so the caller is offered the operator without any lookup",
        None, ("menu", "ask_number", "offer_operator"),
    ),
}  # fmt: skip


def gap_marks(stem: str) -> list[pytest.MarkDecorator]:
    gap = RECOGNITION_GAPS.get(stem)
    if gap is None:
        return []
    return [pytest.mark.xfail(reason=gap.why, strict=True, raises=KnownMisrecognition)]
