"""Where two values differ, leaf by leaf: what ``plan`` shows for a changed field.

A changed IAM policy or Lambda environment is a nested document; printing both whole and
cutting them to a terminal's width hides the part that changed (often far inside, such as a
table name at the end of an ARN). :func:`leaves` names each differing leaf by its path
(``environment.TIMESTREAM_TABLE``, ``policy.Statement[2].Resource[0]``) and :func:`clip_pair`
shortens two long strings around where they start to differ. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Long strings are cut to this many characters (the path before them never is).
WIDTH = 60
# When two long strings share a prefix, this much of it stays as context before the change.
CONTEXT = 24
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_:-]*$")


class _Missing:
    """The side of a leaf where the key or list item does not exist."""

    def __repr__(self) -> str:
        return "(none)"

    __str__ = __repr__


MISSING: Any = _Missing()

Leaf = tuple[str, Any, Any]  # (path, old, new); old or new may be MISSING


def _key_path(path: str, key: Any) -> str:
    text = str(key)
    if _PLAIN_KEY.match(text):
        return f"{path}.{text}" if path else text
    return f"{path}[{text!r}]"


def leaves(old: Any, new: Any, path: str = "") -> list[Leaf]:
    """Every leaf where ``old`` and ``new`` differ, in document order.

    Mappings are compared key by key (old keys first, then keys only in ``new``), lists item
    by item (an item beyond the shorter list is added or removed), anything else by ``==``.
    A value that changes type (a list that was a string, a document that was None) is one
    leaf holding both whole values.
    """
    if old == new:
        return []
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        keys = [*old, *(k for k in new if k not in old)]
        found: list[Leaf] = []
        for key in keys:
            found += leaves(old.get(key, MISSING), new.get(key, MISSING), _key_path(path, key))
        return found
    if isinstance(old, list | tuple) and isinstance(new, list | tuple):
        found = []
        for i in range(max(len(old), len(new))):
            a = old[i] if i < len(old) else MISSING
            b = new[i] if i < len(new) else MISSING
            found += leaves(a, b, f"{path}[{i}]")
        return found
    return [(path, old, new)]


def field_leaves(field: str, old: Any, new: Any) -> list[Leaf]:
    """The leaves of one changed field, paths starting with the field's name; a field that
    is a plain value (or was absent) is itself the one leaf."""
    return leaves(old, new, field) or [(field, old, new)]


def as_json(value: Any) -> Any:
    """A leaf's side for ``-o json``: a missing key or item is null."""
    return None if value is MISSING else value


def clip(text: str, width: int = WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def clip_pair(old: Any, new: Any, width: int = WIDTH) -> tuple[str, str]:
    """Both sides as text of at most about ``width`` characters each, keeping the change.

    Two long strings that share a long prefix (ARNs, URLs) drop the start of it (shown as
    "…"), keeping :data:`CONTEXT` characters before the first difference, so the differing
    part is what remains when the end is cut.
    """
    a, b = str(old), str(new)
    if len(a) <= width and len(b) <= width:
        return a, b
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    start = _context_start(a, common)
    if start > 1 and isinstance(old, str) and isinstance(new, str):
        return clip("…" + a[start:], width), clip("…" + b[start:], width)
    return clip(a, width), clip(b, width)


def _context_start(text: str, common: int) -> int:
    """Where to start showing ``text`` whose first ``common`` characters are shared: at the
    separator ("/", ":") before the last shared segment if that is close enough ("…/table/"
    of an ARN), else :data:`CONTEXT` characters before the difference."""
    cuts = [i for i, ch in enumerate(text[:common]) if ch in "/:"]
    for cut in cuts[-2:]:  # the earlier of the two first: one more segment of context
        if common - cut <= CONTEXT:
            return cut
    return max(0, common - CONTEXT)


def describe_leaf(path: str, old: Any, new: Any, width: int = WIDTH) -> str:
    """``path: old -> new`` for people: the path whole, the values clipped after it."""
    a, b = clip_pair(old, new, width)
    return f"{path}: {a} -> {b}"


def leaf_lines(path: str, old: Any, new: Any, room: int) -> list[str]:
    """`describe_leaf` in ``room`` columns: one line if it fits, else the new value on a
    line of its own, indented under the old (a terminal would break it at column 0)."""
    one = describe_leaf(path, old, new)
    if len(one) <= room:
        return [one]
    a, b = clip_pair(old, new)
    return [f"{path}: {a} ->", f"  {b}"]
