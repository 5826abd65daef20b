"""YAML loading that remembers where every key came from, and that no document can break.

Config errors must name the file and line, so plain ``yaml.safe_load`` (which forgets
positions) is not enough. Mappings are loaded as :class:`Located` dicts that carry the line
of each key; duplicate keys are an error instead of the silent last-wins of PyYAML, and
``${ENV_VAR}`` references (``${A:-${B:-x}}`` nests) are expanded before a scalar gets its
type, so ``memory_mb: ${MEM}`` is an int.

Every way a document can make PyYAML (or Python) fail other than with a marked error is
bounded here and reported as a :class:`YamlProblem` with a line: a character YAML does not
allow (NUL), text that is not UTF-8, nesting deeper than any config needs (PyYAML's composer
recurses: 2,000 levels is a RecursionError), aliases that expand to millions of nodes (the
"billion laughs": a few hundred bytes that exhaust memory when printed or walked), integers
whose digits Python refuses to convert, and documents larger than a config can sensibly be.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from iotpipe.envexpand import expand_env, is_single_ref

MAX_DOCUMENT_BYTES = 1024 * 1024  # a registry of ~10,000 devices; a config is a few KiB
MAX_DEPTH = 32  # collections inside collections, aliases included; a config needs 4
MAX_NODES = 600_000  # values after alias expansion; 1 MiB without aliases holds fewer
MAX_INT_DIGITS = 100


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


class _TooLong(ConstructorError):
    """A scalar Python cannot (or should not) convert; the caller adds the key."""


class _Loader(yaml.SafeLoader):
    environ: Mapping[str, str] = os.environ
    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        """PyYAML composes recursively: refuse depth before Python's recursion limit does."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlProblem(
                    mark.line + 1,
                    "",
                    f"nested more than {MAX_DEPTH} levels deep (a config needs 4)",
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:  # type: ignore[override]
        digits = len(str(node.value).lstrip("+-").replace("_", ""))
        if digits > MAX_INT_DIGITS:
            raise _TooLong(
                None, None, f"an integer of {digits:,} digits (at most {MAX_INT_DIGITS})", None
            )
        return super().construct_yaml_int(node)  # type: ignore[no-any-return]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Located:  # type: ignore[override]
        result = Located()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlProblem(line, "", "a key must be plain text, not a list or mapping")
            key = str(self._construct(key_node, "", line))
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
            expanded = expand_env(node.value, self.environ, line, key, YamlProblem)
            # A plain scalar, or a quoted one that is exactly one reference (the usual way to
            # write it in flow style), takes its type from the expanded text: MEM=512 -> 512.
            if node.style is None or is_single_ref(node.value):
                tag = self.resolve(yaml.ScalarNode, expanded, (True, False))
                node = yaml.ScalarNode(tag, expanded, node.start_mark, node.end_mark)
            else:
                return expanded
        return self._construct(node, key, line)

    def _construct(self, node: yaml.Node, key: str, line: int) -> Any:
        try:
            value = self.construct_object(node, deep=True)
        except _TooLong as exc:
            raise YamlProblem(line, key, f"{exc.problem} is too long") from None
        if isinstance(value, dt.date | dt.datetime):
            return value.isoformat()
        return value


_Loader.add_constructor(
    "tag:yaml.org,2002:map",
    lambda loader, node: loader.construct_mapping(node),  # type: ignore[arg-type]
)
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse alias chains that expand past :data:`MAX_NODES` values or :data:`MAX_DEPTH`.

    PyYAML shares an aliased node, so composing is cheap; it is everything after (building
    dicts, validating, printing a value in an error) that walks the expanded tree. Sizes and
    heights are memoised per node, so this costs one visit per distinct node.
    """
    sizes: dict[int, tuple[int, int]] = {}

    def visit(node: yaml.Node, level: int) -> tuple[int, int]:
        known = sizes.get(id(node))
        if known is None:
            if level > MAX_DEPTH:
                raise YamlProblem(
                    node.start_mark.line + 1,
                    "",
                    f"aliases nest more than {MAX_DEPTH} levels deep (or refer to themselves)",
                )
            children: list[yaml.Node] = []
            if isinstance(node, yaml.SequenceNode):
                children = node.value
            elif isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            size, height = 1, 0
            for child in children:
                s, h = visit(child, level + 1)
                size, height = size + s, max(height, h + 1)
                if size > MAX_NODES:
                    raise YamlProblem(
                        node.start_mark.line + 1,
                        "",
                        f"aliases expand to more than {MAX_NODES:,} values (an alias bomb?)",
                    )
            known = sizes[id(node)] = (size, height)
        if level + known[1] > MAX_DEPTH:
            raise YamlProblem(
                node.start_mark.line + 1, "", f"aliases nest more than {MAX_DEPTH} levels deep"
            )
        return known

    visit(root, 1)


def _line_at(text: str, position: int) -> tuple[int, int]:
    before = text[:position]
    return before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1


def load_located(text: str, environ: Mapping[str, str] | None = None) -> Any:
    """Parse one YAML document into :class:`Located` mappings and plain values."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        line, col = _line_at(text, exc.position)
        raise YamlProblem(
            line, "", f"character U+{exc.character:04X} (column {col}) is not allowed in YAML"
        ) from None
    if environ is not None:
        loader.environ = environ
    try:
        node = loader.get_single_node()
        if node is None:
            return Located()
        _check_expansion(node)
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node)
        return loader._value(node, "", node.start_mark.line + 1)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise YamlProblem(line, "", f"invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:  # reader/emitter errors without a mark
        raise YamlProblem(0, "", f"invalid YAML: {str(exc)[:200]}") from None
    finally:
        loader.dispose()


def decode(data: bytes) -> str:
    """UTF-8 text, or a :class:`YamlProblem` naming the line of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YamlProblem(
            line,
            "",
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at column {col}); "
            "save the file as UTF-8",
        ) from None


_NOT_A_FILE = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_file(path: Path) -> None:
    """A regular file of sensible size, or a :class:`YamlProblem` (line 0) saying what it is.

    Checked before opening: opening a FIFO blocks until someone writes to it, and reading
    ``/dev/zero`` never ends.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise YamlProblem(0, "", "config file not found") from None
    except OSError as exc:
        raise YamlProblem(0, "", f"cannot read: {exc.strerror or exc}") from None
    kind = next((name for test, name in _NOT_A_FILE if test(info.st_mode)), None)
    if kind is not None:
        raise YamlProblem(0, "", f"is {kind}, not a config file; give a YAML file")
    if info.st_size > MAX_DOCUMENT_BYTES:
        raise YamlProblem(
            0, "", f"{info.st_size:,} bytes is too large for a config file (at most 1 MiB)"
        )


def read_located(path: Path, environ: Mapping[str, str] | None = None) -> Any:
    """Parse a regular file of at most :data:`MAX_DOCUMENT_BYTES`; see :func:`check_file`."""
    check_file(path)
    with path.open("rb") as fh:
        data = fh.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise YamlProblem(0, "", f"larger than {MAX_DOCUMENT_BYTES // 1024 // 1024} MiB")
    return load_located(decode(data), environ)
