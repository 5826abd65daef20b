"""YAML loading that remembers where every key came from.

Config errors must name the file and line, so plain ``yaml.safe_load`` (which forgets
positions) is not enough. Mappings are loaded as :class:`Located` dicts that carry the line
of each key; duplicate keys are an error instead of the silent last-wins of PyYAML, and
``${ENV_VAR}`` references are expanded before a scalar gets its type, so ``memory_mb:
${MEM}`` is an int.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

# Upper-case names only: IoT substitution templates such as ``${deviceId}`` must pass through.
_ENV_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")


class YamlProblem(Exception):
    """A YAML document that cannot be read at all (syntax, duplicate key, unset variable)."""

    def __init__(self, line: int, key: str, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.key = key
        self.message = message


class Located(dict):
    """A dict that also knows the line of its own start and of each of its keys."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


def expand_env(value: str, environ: Mapping[str, str], line: int, key: str) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``; ``$${`` stays a literal ``${``."""

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise YamlProblem(line, key, f"environment variable {name} is not set")

    parts = value.split("$${")
    return "${".join(_ENV_REF.sub(sub, part) for part in parts)


class _Loader(yaml.SafeLoader):
    environ: Mapping[str, str] = os.environ

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Located:  # type: ignore[override]
        result = Located()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            key = str(key)
            line = key_node.start_mark.line + 1
            if key in result:
                raise YamlProblem(
                    line, key, f"duplicate key '{key}' (first on line {result.key_lines[key]})"
                )
            result[key] = self._value(value_node, key, line)
            result.key_lines[key] = line
        return result

    def _value(self, node: yaml.Node, key: str, line: int) -> Any:
        if (
            isinstance(node, yaml.ScalarNode)
            and node.tag == "tag:yaml.org,2002:str"
            and "${" in node.value
        ):
            expanded = expand_env(node.value, self.environ, line, key)
            # A plain scalar, or a quoted one that is exactly one reference (the usual way to
            # write it in flow style), takes its type from the expanded text: MEM=512 -> 512.
            if node.style is None or _ENV_REF.fullmatch(node.value):
                tag = self.resolve(yaml.ScalarNode, expanded, (True, False))
                node = yaml.ScalarNode(tag, expanded, node.start_mark, node.end_mark)
            else:
                return expanded
        value = self.construct_object(node, deep=True)
        if isinstance(value, dt.date | dt.datetime):
            return value.isoformat()
        return value


_Loader.add_constructor(
    "tag:yaml.org,2002:map",
    lambda loader, node: loader.construct_mapping(node),  # type: ignore[arg-type]
)


def load_located(text: str, environ: Mapping[str, str] | None = None) -> Any:
    """Parse one YAML document into :class:`Located` mappings and plain values."""
    loader = _Loader(text)
    if environ is not None:
        loader.environ = environ
    try:
        node = loader.get_single_node()
        if node is None:
            return Located()
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node)
        return loader._value(node, "", node.start_mark.line + 1)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise YamlProblem(line, "", f"invalid YAML: {exc.problem or exc}") from None
    finally:
        loader.dispose()


def read_located(path: Path, environ: Mapping[str, str] | None = None) -> Any:
    return load_located(path.read_text(encoding="utf-8"), environ)
