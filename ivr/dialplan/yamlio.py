"""Safe YAML that keeps ``yes``/``no``/``on``/``off`` as strings and remembers lines.

PyYAML follows YAML 1.1, where ``yes``, ``no``, ``on`` and ``off`` are booleans: an IVR's
"yes"/"no" phrases and the ``on:`` field itself would silently turn into ``True``/``False``.
This loader resolves only ``true``/``false`` as booleans (YAML 1.2) and records the line of
every mapping key and sequence item so that errors can name ``file:line``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader whose only booleans are true/false."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


@dataclass
class YamlError(Exception):
    line: int
    message: str
    path: Path = ()  # where in the document, when known (a duplicate key)


@dataclass
class LineMap:
    """Line numbers (1-based) of the keys and items of a parsed document, by path."""

    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """Line of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            if (line := self.lines.get(tuple(path[:end]))) is not None:
                return line
        return 1


def _walk(node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                message = f"duplicate key {key!r} (first on line {seen[key]})"
                raise YamlError(line, message, (*path, key))
            seen[key] = line
            lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), lines)


def load_yaml(text: str) -> tuple[Any, LineMap]:
    """Parse one YAML document; raise ``YamlError`` with a line for syntax errors."""
    loader = _Yaml12Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, LineMap()
        lines: dict[Path, int] = {(): node.start_mark.line + 1}
        _walk(node, (), lines)
        return loader.construct_document(node), LineMap(lines)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlError(line, f"YAML syntax: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise YamlError(1, f"YAML syntax: {exc}") from exc
    finally:
        loader.dispose()
