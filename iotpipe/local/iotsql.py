"""The subset of AWS IoT SQL (version 2016-03-23) the embedded AWS runs (topic filters: iotrules).

Supported, and checked when a rule is created (anything else is rejected with
`IotSqlError` naming the part, so a rule never silently does less than on AWS):

- ``SELECT <items> FROM '<topic filter>' [WHERE <condition>]``
- items: ``*``, ``<expr>``, ``<expr> AS <name>``; a bare path keeps its last segment as
  the key; undefined values are left out of the result, as on AWS.
- expressions: JSON paths (``a.b.c``, ``a[0]``), string/number/boolean/NULL literals,
  ``+ - * / %``, ``= <> != < <= > >=``, ``AND OR NOT``, ``IS [NOT] NULL``, parentheses.
- functions: ``timestamp()`` (epoch ms), ``topic()``, ``topic(n)`` (1-based segment),
  ``clientid()``, ``newuuid()``, ``lower(s)``, ``upper(s)``, ``abs(n)``, ``concat(a, ...)``.
- substitution templates ``${expr}`` in action fields (e.g. ``partitionKey``), evaluated
  against the incoming message.

Not supported: nested SELECTs, ``CASE``, ``get()``/``get_dynamodb()``, any other function,
``FROM`` anything but one quoted topic filter, SQL versions other than 2016-03-23.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class IotSqlError(ValueError):
    """An IoT SQL statement or template outside the supported subset, or malformed."""


class _Undefined:
    """IoT SQL's Undefined: a missing field. Left out of results, false in WHERE."""

    def __repr__(self) -> str:
        return "Undefined"


UNDEFINED: Any = _Undefined()


@dataclass(frozen=True)
class PublishedMessage:
    """What one published message offers to the SQL functions."""

    payload: Any
    topic: str
    client_id: str = "iotpipe-local"
    timestamp_ms: int = 0


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*|\.\d+|\d+)|(?P<str>'(?:[^']|'')*')|(?P<qid>\"[^\"]+\")"
    r"|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><>|!=|<=|>=|[=<>+\-*/%(),.\[\]]))"
)
_KEYWORDS = {"SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "IS", "NULL", "TRUE", "FALSE"}
_UNSUPPORTED = {"CASE", "WHEN", "JOIN", "UNION", "GROUP", "ORDER", "LIMIT", "IN", "LIKE"}


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise IotSqlError(f"cannot parse IoT SQL near {text[pos : pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "id" and value.upper() in _KEYWORDS:
            kind, value = "kw", value.upper()
        elif kind == "id" and value.upper() in _UNSUPPORTED:
            raise IotSqlError(f"IoT SQL '{value}' is not supported by the embedded AWS")
        tokens.append((kind, value))
    return tokens


Expr = Callable[[PublishedMessage], Any]


def _segment(c: PublishedMessage, args: list[Any]) -> Any:
    parts = c.topic.split("/")
    idx = args[0]
    return parts[idx - 1] if isinstance(idx, int) and 0 < idx <= len(parts) else UNDEFINED


def _text_fn(fn: Callable[[str], str]) -> Callable[[PublishedMessage, list[Any]], Any]:
    return lambda c, a: fn(a[0]) if isinstance(a[0], str) else UNDEFINED


# (name, arity) -> implementation over the evaluated arguments; None arity = 1 or more.
_FUNCTIONS: dict[tuple[str, int | None], Callable[[PublishedMessage, list[Any]], Any]] = {
    ("timestamp", 0): lambda c, a: c.timestamp_ms,
    ("topic", 0): lambda c, a: c.topic,
    ("topic", 1): _segment,
    ("clientid", 0): lambda c, a: c.client_id,
    ("newuuid", 0): lambda c, a: str(uuid.uuid4()),
    ("lower", 1): _text_fn(str.lower),
    ("upper", 1): _text_fn(str.upper),
    ("abs", 1): lambda c, a: (
        abs(a[0]) if isinstance(a[0], (int, float)) and not isinstance(a[0], bool) else UNDEFINED
    ),
    ("concat", None): lambda c, a: "".join(_to_text(v) for v in a),
}


def _call(name: str, args: list[Expr]) -> Expr:
    """Build a function node; unknown functions are rejected at parse time."""
    n, lname = len(args), name.lower()
    impl = _FUNCTIONS.get((lname, n)) or (_FUNCTIONS.get((lname, None)) if n else None)
    if impl is None:
        raise IotSqlError(f"IoT SQL function {name}() with {n} argument(s) is not supported")

    def call(c: PublishedMessage) -> Any:
        values = [a(c) for a in args]
        return UNDEFINED if UNDEFINED in values else impl(c, values)

    return call


def _path(first: str) -> tuple[list[str | int], Expr]:
    steps: list[str | int] = [first]

    def get(c: PublishedMessage) -> Any:
        value = c.payload
        for step in steps:
            if isinstance(step, int):
                ok = isinstance(value, list) and -len(value) <= step < len(value)
            else:
                ok = isinstance(value, dict) and step in value
            if not ok:
                return UNDEFINED
            value = value[step]  # type: ignore[index]
        return value

    return steps, get


def _compare(op: str, a: Any, b: Any) -> Any:
    if a is UNDEFINED or b is UNDEFINED:
        return UNDEFINED
    if op in ("=", "<>", "!="):
        equal = a == b
        return equal if op == "=" else not equal
    try:
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    except TypeError:
        return UNDEFINED


def _arith(op: str, a: Any, b: Any) -> Any:
    numeric = (int, float)
    if not (isinstance(a, numeric) and isinstance(b, numeric)) or isinstance(a, bool):
        if op == "+" and isinstance(a, str) and isinstance(b, str):
            return a + b
        return UNDEFINED
    if op in "/%" and b == 0:
        return UNDEFINED
    if op == "/" and isinstance(a, int) and isinstance(b, int):
        return int(a / b)
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else 0, "%": a % b if b else 0}[op]


def _truthy(v: Any) -> Any:
    return v if isinstance(v, bool) else UNDEFINED


def _logic(op: str, lhs: Expr, rhs: Expr) -> Expr:
    """Three-valued AND/OR: Undefined unless the defined side decides it."""
    decisive = op == "OR"

    def run(c: PublishedMessage) -> Any:
        a, b = _truthy(lhs(c)), _truthy(rhs(c))
        if a is decisive or b is decisive:
            return decisive
        return UNDEFINED if UNDEFINED in (a, b) else not decisive

    return run


def _binary(op: str, lhs: Expr, rhs: Expr) -> Expr:
    return lambda c: _arith(op, lhs(c), rhs(c))


@dataclass
class _Parser:
    tokens: list[tuple[str, str]]
    pos: int = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        k, v = self.peek()
        if (value is not None and v != value) or (kind is not None and k != kind):
            want = value or kind
            raise IotSqlError(f"IoT SQL: expected {want} but found {v or 'end of statement'!r}")
        self.pos += 1
        return v

    def accept(self, value: str) -> bool:
        if self.peek()[1] == value and self.peek()[0] in ("kw", "op"):
            self.pos += 1
            return True
        return False

    def expr(self) -> Expr:
        left = self.and_expr()
        while self.accept("OR"):
            left = _logic("OR", left, self.and_expr())
        return left

    def and_expr(self) -> Expr:
        left = self.not_expr()
        while self.accept("AND"):
            left = _logic("AND", left, self.not_expr())
        return left

    def not_expr(self) -> Expr:
        if self.accept("NOT"):
            inner = self.not_expr()
            return lambda c: (not v) if isinstance(v := _truthy(inner(c)), bool) else UNDEFINED
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.arithmetic()
        if self.accept("IS"):
            negate = self.accept("NOT")
            self.take("NULL")
            return lambda c: (left(c) is None) != negate
        k, v = self.peek()
        if k == "op" and v in ("=", "<>", "!=", "<", "<=", ">", ">="):
            self.pos += 1
            right = self.arithmetic()
            return lambda c: _compare(v, left(c), right(c))
        return left

    def arithmetic(self, level: int = 0) -> Expr:
        """``+ -`` then ``* / %`` (higher level binds tighter), left-associative."""
        ops = (("+", "-"), ("*", "/", "%"))
        if level == len(ops):
            return self.unary()
        left = self.arithmetic(level + 1)
        while self.peek()[0] == "op" and self.peek()[1] in ops[level]:
            op = self.take()
            left = _binary(op, left, self.arithmetic(level + 1))
        return left

    def unary(self) -> Expr:
        if self.accept("-"):
            inner = self.unary()
            return lambda c: _arith("-", 0, inner(c))
        return self.primary()

    def primary(self) -> Expr:
        k, v = self.peek()
        self.pos += 1
        if k == "num":
            num = float(v) if "." in v else int(v)
            return lambda c: num
        if k == "str":
            text = v[1:-1].replace("''", "'")
            return lambda c: text
        if k == "kw" and v in ("TRUE", "FALSE", "NULL"):
            const = {"TRUE": True, "FALSE": False, "NULL": None}[v]
            return lambda c: const
        if k == "op" and v == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if k in ("id", "qid"):
            name = v.strip('"')
            if k == "id" and self.accept("("):
                args: list[Expr] = []
                if not self.accept(")"):
                    args.append(self.expr())
                    while self.accept(","):
                        args.append(self.expr())
                    self.take(")")
                return _call(name, args)
            steps, get = _path(name)
            while True:
                if self.accept("."):
                    steps.append(
                        self.take(kind="id")
                        if self.peek()[0] == "id"
                        else self.take(kind="qid").strip('"')
                    )
                elif self.accept("["):
                    steps.append(int(self.take(kind="num")))
                    self.take("]")
                else:
                    break
            return get
        raise IotSqlError(f"IoT SQL: unexpected {v or 'end of statement'!r}")


@dataclass
class SelectItem:
    """One SELECT item: `*` (star) or an expression with its output key."""

    star: bool = False
    key: str = ""
    expr: Expr | None = None


@dataclass
class Rule:
    """A compiled rule statement: what it listens to and how it shapes a message."""

    topic_filter: str
    items: list[SelectItem] = field(default_factory=list)
    where: Expr | None = None

    @property
    def select_star_only(self) -> bool:
        return len(self.items) == 1 and self.items[0].star

    def evaluate(self, ctx: PublishedMessage) -> dict[str, Any] | None:
        """The outgoing message, or None when WHERE is not true."""
        if self.where is not None and self.where(ctx) is not True:
            return None
        out: dict[str, Any] = {}
        for item in self.items:
            if item.star and isinstance(ctx.payload, dict):
                out.update(ctx.payload)
            elif item.expr is not None and (value := item.expr(ctx)) is not UNDEFINED:
                out[item.key] = value
        return out


def parse_rule(sql: str, sql_version: str = "2016-03-23") -> Rule:
    """Compile a rule statement, or raise IotSqlError saying what is outside the subset."""
    if sql_version not in ("2016-03-23", "", None):
        raise IotSqlError(f"IoT SQL version {sql_version} is not supported (use 2016-03-23)")
    p = _Parser(_tokenize(sql))
    p.take("SELECT")
    items: list[SelectItem] = []
    while True:
        if p.accept("*"):
            items.append(SelectItem(star=True))
        else:
            start = p.pos
            expr = p.expr()
            key = _default_key(p.tokens[start : p.pos])
            if p.accept("AS"):
                key = p.take(kind="id") if p.peek()[0] == "id" else p.take(kind="qid").strip('"')
            items.append(SelectItem(key=key, expr=expr))
        if not p.accept(","):
            break
    p.take("FROM")
    topic = p.take(kind="str")[1:-1]
    where = p.expr() if p.accept("WHERE") else None
    if p.peek()[0] != "end":
        raise IotSqlError(f"IoT SQL: unexpected {p.peek()[1]!r} after the statement")
    return Rule(topic_filter=topic, items=items, where=where)


def _default_key(tokens: list[tuple[str, str]]) -> str:
    """AWS keys an unaliased path by its last segment; a function call by its name."""
    if len(tokens) > 1 and tokens[0][0] == "id" and tokens[1] == ("op", "("):
        return tokens[0][1]
    names = [v.strip('"') for k, v in tokens if k in ("id", "qid")]
    return names[-1] if names else "_col"


_TEMPLATE = re.compile(r"\$\{([^}]*)\}")


def substitute(template: str, ctx: PublishedMessage) -> str:
    """Expand ``${expr}`` substitution templates; an undefined value expands to ''."""

    def one(m: re.Match[str]) -> str:
        p = _Parser(_tokenize(m.group(1)))
        expr = p.expr()
        if p.peek()[0] != "end":
            raise IotSqlError(f"bad substitution template ${{{m.group(1)}}}")
        value = expr(ctx)
        return "" if value is UNDEFINED or value is None else _to_text(value)

    return _TEMPLATE.sub(one, template)


def check_template(template: str) -> None:
    """Raise IotSqlError if a substitution template uses anything unsupported."""
    substitute(template, PublishedMessage(payload={}, topic="t"))


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
