"""``${VAR}`` and ``${VAR:-default}`` in config values, with defaults that nest.

A regular expression cannot match ``${A:-${B:-x}}`` (the first ``}`` is not the one that
closes ``A``), so this is a small scanner. Only upper-case names are references: IoT
substitution templates such as ``${deviceId}`` pass through untouched, also inside a
default. ``$${`` is a literal ``${``. As in the shell, a default is only expanded when its
variable is unset, so ``${A:-${B}}`` with ``A`` set does not need ``B``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_SPECIAL = re.compile(r"\$\$\{|\$\{|\}")
MAX_NESTING = 8


class _Scan:
    def __init__(
        self, text: str, environ: Mapping[str, str], line: int, key: str, error: type
    ) -> None:
        self.text = text
        self.environ = environ
        self.line = line
        self.key = key
        self.error = error

    def fail(self, message: str) -> Exception:
        return self.error(self.line, self.key, message)  # type: ignore[no-any-return]

    def run(self, i: int, depth: int, evaluate: bool, inner: bool) -> tuple[str, int]:
        """Expand from ``i``; inside a default, stop after the ``}`` that closes it."""
        out: list[str] = []
        literal_braces = 0  # '${deviceId' opened in a default: its '}' is text, not the end
        while True:
            m = _SPECIAL.search(self.text, i)
            if m is None:
                if inner:
                    raise self.fail("a '${NAME:-default}' is missing its closing '}'")
                out.append(self.text[i:])
                return "".join(out), len(self.text)
            out.append(self.text[i : m.start()])
            found, i = m.group(), m.end()
            if found == "$${":
                out.append("${")
                literal_braces += inner
            elif found == "}":
                if inner and not literal_braces:
                    return "".join(out), i
                literal_braces -= bool(literal_braces)
                out.append("}")
            else:
                value, end = self.reference(m.start(), depth, evaluate)
                if end < 0:  # not a reference: keep the text
                    out.append("${")
                    literal_braces += inner
                else:
                    out.append(value)
                    i = end

    def reference(self, start: int, depth: int, evaluate: bool) -> tuple[str, int]:
        """The value of the reference at ``start`` and where it ends; end -1: not one."""
        name_match = _NAME.match(self.text, start + 2)
        if name_match is None:
            return "", -1
        name, after = name_match.group(), name_match.end()
        if self.text.startswith("}", after):
            if not evaluate:
                return "", after + 1
            if name not in self.environ:
                raise self.fail(f"environment variable {name} is not set")
            return self.environ[name], after + 1
        if not self.text.startswith(":-", after):
            return "", -1
        if depth >= MAX_NESTING:
            raise self.fail(f"'${{...:-...}}' defaults nest more than {MAX_NESTING} deep")
        is_set = name in self.environ
        default, end = self.run(after + 2, depth + 1, evaluate and not is_set, inner=True)
        if not evaluate:
            return "", end
        return (self.environ[name] if is_set else default), end


def expand_env(
    value: str, environ: Mapping[str, str], line: int, key: str, error: type = ValueError
) -> str:
    """``value`` with every reference expanded; ``error(line, key, message)`` if one cannot."""
    return _Scan(value, environ, line, key, error).run(0, 0, evaluate=True, inner=False)[0]


def is_single_ref(value: str) -> bool:
    """Whether ``value`` is exactly one reference (then it takes the type of its value)."""
    if not value.startswith("${"):
        return False
    scan = _Scan(value, {}, 0, "", ValueError)
    try:
        return scan.reference(0, 0, evaluate=False)[1] == len(value)
    except ValueError:
        return False
