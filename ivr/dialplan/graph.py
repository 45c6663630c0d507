"""A Mermaid state diagram of a dial plan, for docs and (later) the dashboard."""

from __future__ import annotations

from ivr.dialplan.schema import Plan, State


def _node(name: str) -> str:
    # Mermaid state ids cannot contain spaces or dashes; plan state names are identifiers.
    return name


def _ending(state: State) -> str | None:
    if state.transfer is not None:
        return f"transfer {state.transfer}"
    if state.hangup or (state.next is None and state.listen is None and state.lookup is None):
        return "hang up"
    return None


def _label(text: str) -> str:
    return text.replace(":", " ").replace('"', "'")


def mermaid(plan: Plan) -> str:
    """``stateDiagram-v2`` text: one node per state, an arrow per transition."""
    lines = ["stateDiagram-v2", f"    %% {plan.id} ({plan.direction}, {plan.language})"]
    lines.append(f"    [*] --> {_node(plan.start)}")
    for name, state in plan.states.items():
        if state.outcome:
            lines.append(f"    {_node(name)} : outcome {_label(state.outcome)}")
        if state.next is not None:
            label = "digits" if state.listen is not None else ""
            arrow = f"    {_node(name)} --> {_node(state.next)}"
            lines.append(f"{arrow} : {label}" if label else arrow)
        for event, target in state.on.items():
            keys = ""
            if state.listen is not None and event in state.listen.intents:
                press = state.listen.intents[event].press
                keys = f" ({press})" if press else ""
            lines.append(f"    {_node(name)} --> {_node(target)} : {_label(event)}{keys}")
        if (ending := _ending(state)) is not None:
            lines.append(f"    {_node(name)} --> [*] : {_label(ending)}")
    return "\n".join(lines) + "\n"
