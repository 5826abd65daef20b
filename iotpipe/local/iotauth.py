"""AWS IoT Core policy evaluation (pure): may this connection do this action on this resource.

moto stores IoT policy documents but never evaluates them, so the embedded broker needs its
own evaluator to refuse what IoT Core would refuse (REFERENCE.md section 6). The rules are
IoT's: explicit Deny wins, otherwise an Allow is needed (default deny). ``*`` and ``?`` are
the only wildcards; MQTT ``+``/``#`` in a policy ARN are literal characters.

Policy variables (``${iot:ClientId}``, ``${iot:Connection.Thing.ThingName}``, ...) are
substituted as literal text, never as wildcards: a client id of ``*`` must not match every
client. A variable that cannot be resolved makes its statement not match, as IoT does (so an
Allow that depends on the thing name grants nothing to a connection without a thing).

A statement this module cannot evaluate (an unknown condition operator) is treated to fail
closed: an Allow does not match, a Deny does.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("iot:Connect", "iot:Publish", "iot:Subscribe", "iot:Receive", "iot:RetainPublish")
_RESOURCE_KIND = {
    "iot:connect": "client",
    "iot:publish": "topic",
    "iot:receive": "topic",
    "iot:retainpublish": "topic",
    "iot:subscribe": "topicfilter",
}
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}  # IAM's ${*} ${?} ${$}: the literal character
_OPERATORS = {
    "Bool",
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
}
_ATTRIBUTE = re.compile(r"iot:connection\.thing\.attributes\[(.+)\]", re.IGNORECASE)


class Decision(enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit-deny"
    IMPLICIT_DENY = "implicit-deny"

    @property
    def allowed(self) -> bool:
        return self is Decision.ALLOW


class _Unsupported(Exception):
    """A policy element this evaluator does not implement (fail closed)."""


@dataclass(frozen=True)
class Context:
    """What IoT knows about one connection when it evaluates a policy.

    ``thing_name`` is set only when the client id names a thing this certificate is attached
    to; that is when IoT resolves the ``iot:Connection.Thing.*`` variables.
    """

    client_id: str | None
    thing_name: str | None = None
    thing_type: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_attached(self) -> bool:
        return self.thing_name is not None

    def value(self, key: str) -> str | None:
        """The value of a policy variable or condition key (case-insensitive), or None."""
        k = key.strip().lower()
        if k == "iot:clientid":
            return self.client_id
        if k == "iot:connection.thing.isattached":
            return "true" if self.is_attached else "false"
        if not self.is_attached:
            return None
        if k == "iot:connection.thing.thingname":
            return self.thing_name
        if k == "iot:connection.thing.thingtypename":
            return self.thing_type
        m = _ATTRIBUTE.fullmatch(key.strip())
        if m:
            return self.attributes.get(m.group(1))
        return None


class _Unresolved(Exception):
    """A policy variable without a value: the statement does not match."""


def resource_arn(action: str, target: str, *, partition: str, region: str, account: str) -> str:
    """The ARN IoT checks for ``action``: client/ID, topic/T or topicfilter/F."""
    kind = _RESOURCE_KIND.get(action.lower())
    if kind is None:
        raise ValueError(f"not an IoT data-plane action: {action}")
    return f"arn:{partition}:iot:{region}:{account}:{kind}/{target}"


@functools.lru_cache(maxsize=4096)
def _compile(pattern: str, variables: tuple[tuple[str, str | None], ...] | None) -> re.Pattern[str]:
    """The pattern as a regex; variables (when given) are substituted as literal text."""
    values = dict(variables) if variables is not None else None
    parts: list[str] = []
    pos = 0
    for m in _VARIABLE.finditer(pattern) if values is not None else ():
        parts.append(_wild(pattern[pos : m.start()]))
        name = m.group(1)
        if name in _ESCAPES:
            parts.append(re.escape(_ESCAPES[name]))
        else:
            value = values.get(name.strip()) if values else None
            if value is None:
                raise _Unresolved(name)
            parts.append(re.escape(value))
        pos = m.end()
    parts.append(_wild(pattern[pos:]))
    return re.compile("".join(parts), re.DOTALL)


def _wild(text: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)


def _variables(pattern: str, ctx: Context) -> tuple[tuple[str, str | None], ...]:
    names = {m.group(1).strip() for m in _VARIABLE.finditer(pattern)}
    return tuple(sorted((n, ctx.value(n)) for n in names if n not in _ESCAPES))


def _matches(pattern: str, text: str, ctx: Context | None, *, ignore_case: bool = False) -> bool:
    """Wildcard match; with ``ctx``, policy variables in ``pattern`` are substituted first."""
    variables = _variables(pattern, ctx) if ctx is not None else None
    if ignore_case:
        pattern, text = pattern.lower(), text.lower()
    return _compile(pattern, variables).fullmatch(text) is not None


def _substitute(text: str, ctx: Context) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in _ESCAPES:
            return _ESCAPES[name]
        value = ctx.value(name)
        if value is None:
            raise _Unresolved(name)
        return value

    return _VARIABLE.sub(one, text)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [str(v) if not isinstance(v, bool) else str(v).lower() for v in items]


def _any(patterns: list[str], text: str, ctx: Context | None, ignore_case: bool) -> bool:
    return any(_matches(p, text, ctx, ignore_case=ignore_case) for p in patterns)


def _element(stmt: Mapping[str, Any], name: str, text: str, ctx: Context | None) -> bool:
    """Action/NotAction or Resource/NotResource. Actions are case-insensitive, ARNs not."""
    ignore_case = name == "Action"
    if name in stmt:
        return _any(_as_list(stmt[name]), text, ctx, ignore_case)
    if f"Not{name}" in stmt:
        return not _any(_as_list(stmt[f"Not{name}"]), text, ctx, ignore_case)
    return False


def _test(op: str, actual: str | None, wanted: list[str], ctx: Context) -> bool:
    """One condition operator on one key; ``actual`` None means the key is absent."""
    if_exists = op.endswith("IfExists")
    base = op[: -len("IfExists")] if if_exists else op
    if base == "Null":
        return (actual is None) == ("true" in [w.lower() for w in wanted])
    if base not in _OPERATORS:
        raise _Unsupported(op)
    if actual is None:  # IAM: an absent key matches only IfExists and the negated operators
        return if_exists or "Not" in base
    like = base in ("StringLike", "StringNotLike")
    values = wanted if like else [_substitute(w, ctx) for w in wanted]
    if base == "Bool":
        return actual.lower() in [v.lower() for v in values]
    if base in ("StringEquals", "StringNotEquals"):
        found = actual in values
    elif base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        found = actual.lower() in [v.lower() for v in values]
    else:
        found = _any(values, actual, ctx, False)
    return not found if "Not" in base else found


def _conditions(condition: Any, ctx: Context) -> bool:
    """Every operator and every key must hold (AND); the values of one key are an OR."""
    if not condition:
        return True
    if not isinstance(condition, Mapping):
        raise _Unsupported("Condition")
    for op, tests in condition.items():
        if not isinstance(tests, Mapping) or op.startswith(("ForAnyValue:", "ForAllValues:")):
            raise _Unsupported(op)
        for key, wanted in tests.items():
            if not _test(op, ctx.value(key), _as_list(wanted), ctx):
                return False
    return True


def _statement_applies(stmt: Mapping[str, Any], action: str, resource: str, ctx: Context) -> bool:
    try:
        return (
            _element(stmt, "Action", action, None)
            and _element(stmt, "Resource", resource, ctx)
            and _conditions(stmt.get("Condition"), ctx)
        )
    except _Unresolved:
        return False
    except _Unsupported:
        return str(stmt.get("Effect", "")).lower() == "deny"


def statements(document: str | Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """The statements of a policy document; a malformed document has none (grants nothing)."""
    if isinstance(document, str):
        return _parsed(document)
    return _statements_of(document)


@functools.lru_cache(maxsize=1024)
def _parsed(text: str) -> tuple[Mapping[str, Any], ...]:
    """Parsed once per document text: the broker evaluates on every publish."""
    try:
        return _statements_of(json.loads(text))
    except ValueError:
        return ()


def _statements_of(document: Any) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(document, Mapping):
        return ()
    raw = document.get("Statement", [])
    items = raw if isinstance(raw, list) else [raw]
    return tuple(s for s in items if isinstance(s, Mapping))


def evaluate(
    documents: Iterable[str | Mapping[str, Any]], action: str, resource: str, ctx: Context
) -> Decision:
    """IoT's decision for ``action`` on ``resource`` under all of a principal's policies."""
    allowed = False
    for document in documents:
        for stmt in statements(document):
            if not _statement_applies(stmt, action, resource, ctx):
                continue
            effect = str(stmt.get("Effect", "")).lower()
            if effect == "deny":
                return Decision.EXPLICIT_DENY
            allowed = allowed or effect == "allow"
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def is_allowed(
    documents: Iterable[str | Mapping[str, Any]], action: str, resource: str, ctx: Context
) -> bool:
    return evaluate(documents, action, resource, ctx).allowed
