"""Printing a simulated call for people: who said what, what was understood, where it went."""

from __future__ import annotations

from collections.abc import Iterable

from ivr.simulation.call import Line

_PREFIX = {
    "robot": "ROBOT   ",
    "play": "ROBOT   ",
    "caller": "CALLER  ",
    "heard": "HEARD   ",
    "sms": "SMS     ",
    "listen": "        ",
    "understood": "        ",
    "enter": "        ",
    "lookup": "        ",
    "outcome": "        ",
    "transfer": "        ",
    "hangup": "        ",
    "problem": "  !!    ",
}


def format_lines(lines: Iterable[Line]) -> str:
    return "\n".join(_PREFIX[line.kind] + line.text for line in lines)
