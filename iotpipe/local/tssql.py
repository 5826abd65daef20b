"""Timestream SQL -> one read-only DuckDB SELECT, or a refusal worded like Timestream's.

The gate in front of the embedded Timestream: a query is tokenized and parsed with
sqlglot (Presto/Trino dialect, which Timestream's is), never pattern-matched, and DuckDB
only ever runs SQL that sqlglot generated from a checked tree:

- Timestream's extras become standard SQL tokens first: duration literals (``1h``,
  ``15m``, ``100ms``) become intervals and ``measure_value::double`` a column name.
- exactly one statement, whose root is a SELECT or a set operation (UNION...);
  no DML, DDL, SET, PRAGMA, ATTACH, COPY, SELECT INTO... anywhere in the tree (CTEs too);
- every function is one Timestream has (`tsfunctions`); every table is a known
  ``database.table`` of this account and region or a CTE (no ``information_schema``,
  no DuckDB table functions, no file paths);
- no ``$`` outside string literals (DuckDB would read ``$$...$$`` as a string).

Positions in errors (``line L:C``) point into the query as the user wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.dialects.trino import Trino
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from iotpipe.local.tsfunctions import REWRITES, TIMESTREAM_FUNCTIONS


class QueryValidation(Exception):
    """A query Timestream would refuse: answered as ValidationException, never HTTP 500."""


class EmptyQuery(QueryValidation):
    """No statement at all (only blanks or comments)."""


class _Timestream(Trino):
    """Trino's dialect, remembering each function's name as written (for the allow-list)."""

    ORIGINAL_NAME_META_KEY = "ts_name"


_DIALECT = _Timestream()
_UNITS = {
    "ns": ("MICROSECOND", 1000),
    "us": ("MICROSECOND", 1),
    "ms": ("MILLISECOND", 1),
    "s": ("SECOND", 1),
    "m": ("MINUTE", 1),
    "h": ("HOUR", 1),
    "d": ("DAY", 1),
}
_VALUE_TYPES = {"double", "bigint", "varchar", "boolean", "timestamp"}
_FORBIDDEN = (
    exp.DML,
    exp.DDL,
    exp.Command,
    exp.Set,
    exp.Pragma,
    exp.Use,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Into,
    exp.Describe,
    exp.Show,
    exp.LoadData,
    exp.Cache,
    exp.Uncache,
    exp.Refresh,
    exp.Attach,
    exp.Detach,
    exp.Install,
    exp.Summarize,
    exp.Grant,
    exp.Drop,
    exp.Alter,
    exp.Kill,
    exp.Analyze,
    exp.Export,
    exp.Declare,
    exp.Execute,
)


@dataclass
class Source:
    """The query as written, its tokenized rewrite, and how to map positions back."""

    original: str
    text: str = ""
    tokens: list[Token] = field(default_factory=list)
    edits: list[tuple[int, int, int, int]] = field(default_factory=list)  # orig/new spans

    def where(self, new_offset: int | None) -> str:
        """``line L:C`` (1-based) in the original text for an offset in the rewritten one."""
        return self.at(0 if new_offset is None else self.original_offset(new_offset))

    def at(self, off: int) -> str:
        """``line L:C`` (1-based) for an offset in the original text."""
        line = self.original.count("\n", 0, off) + 1
        col = off - (self.original.rfind("\n", 0, off) + 1) + 1
        return f"line {line}:{col}"

    def original_offset(self, p: int) -> int:
        shift = 0
        for o_start, o_end, n_start, n_end in self.edits:
            if p < n_start:
                break
            if p < n_end:
                return o_start
            shift = o_end - n_end
        return max(0, min(p + shift, len(self.original)))

    def find(self, name: str) -> str:
        """Where ``name`` first appears as a word of the original query (for DuckDB errors)."""
        for t in self.tokens:
            if t.token_type != TokenType.STRING and t.text.lower() == name.lower():
                return self.at(t.start)
        off = self.original.lower().find(name.lower())  # e.g. measure_value::double
        return self.at(max(off, 0))


def tokenize(sql: str) -> Source:
    """Rewrite Timestream's literals into standard SQL, token by token (strings untouched)."""
    src = Source(sql)
    try:
        tokens = _DIALECT.tokenize(sql)
    except TokenError:
        raise QueryValidation("line 1:1: unterminated string, identifier or comment") from None
    out, last, i = [], 0, 0
    while i < len(tokens):
        t, span, repl = tokens[i], None, ""
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        third = tokens[i + 2] if i + 2 < len(tokens) else None
        if t.token_type in (TokenType.VAR, TokenType.PARAMETER) and "$" in t.text:
            raise QueryValidation(f"{src.where(t.start)}: mismatched input '{t.text[:20]}'")
        if (
            t.token_type == TokenType.NUMBER
            and t.text.isdigit()
            and nxt is not None
            and nxt.token_type == TokenType.VAR
            and nxt.start == t.end + 1
            and nxt.text.lower() in _UNITS
        ):
            unit, div = _UNITS[nxt.text.lower()]
            span, repl = (t.start, nxt.end + 1), f"INTERVAL '{int(t.text) // div}' {unit}"
        elif (
            t.token_type == TokenType.VAR
            and t.text.lower() == "measure_value"
            and nxt is not None
            and nxt.token_type == TokenType.DCOLON
            and third is not None
            and third.text.lower() in _VALUE_TYPES
        ):
            span, repl = (t.start, third.end + 1), f'"measure_value::{third.text.lower()}"'
        if span is None:
            i += 1
            continue
        out += [sql[last : span[0]], repl]
        n_start = sum(len(s) for s in out) - len(repl)
        src.edits.append((span[0], span[1], n_start, n_start + len(repl)))
        last = span[1]
        i += 3 if repl.startswith('"') else 2
    src.text = "".join([*out, sql[last:]])
    src.tokens = tokens
    return src


def parse(src: Source) -> exp.Expr:
    """Exactly one SELECT (or UNION/INTERSECT/EXCEPT) statement."""
    if not src.tokens:
        raise EmptyQuery("line 1:1: the query is empty")
    try:
        trees = [t for t in sqlglot.parse(src.text, dialect=_DIALECT) if t is not None]
    except ParseError as e:
        raise QueryValidation(_parse_error(src, e)) from None
    if len(trees) != 1:
        raise QueryValidation(
            f"{src.where(_second_statement(src))}: only one statement is allowed in a query"
        )
    tree = trees[0]
    root = tree.this if isinstance(tree, exp.Subquery) else tree
    if not isinstance(root, (exp.Select, exp.SetOperation)) or isinstance(root, exp.DDL):
        what = type(root).__name__.upper()
        if isinstance(root, exp.Command):
            what = str(root.this).upper()
        raise QueryValidation(
            f"{src.where(src.tokens[0].start)}: only SELECT queries are supported, not {what}"
        )
    return tree


def _second_statement(src: Source) -> int | None:
    semis = [t for t in src.tokens if t.token_type == TokenType.SEMICOLON]
    return semis[0].start if semis else None


def _parse_error(src: Source, e: ParseError) -> str:
    err = e.errors[0] if e.errors else {}
    line, col, highlight = err.get("line"), err.get("col"), str(err.get("highlight") or "")
    if not line or not col:
        return "line 1:1: syntax error"
    lines = src.text.split("\n")
    start = sum(len(x) + 1 for x in lines[: line - 1]) + max(0, col - len(highlight))
    return f"{src.where(start)}: mismatched input '{highlight[:40]}'"


def check(src: Source, tree: exp.Expr, has_table: Callable[[str, str | None], bool]) -> None:
    """Refuse anything that is not a read of known tables with Timestream's functions.

    ``has_table(db, None)`` says whether a database exists, ``has_table(db, t)`` a table.
    """
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN):
            raise QueryValidation(
                f"{src.where(_start(node))}: only SELECT queries are supported "
                f"({type(node).__name__.upper()} is not allowed)"
            )
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        _check_table(src, table, ctes, has_table)
    for fn in tree.find_all(exp.Func):
        name = _function_name(src, fn)
        if name is not None and name not in TIMESTREAM_FUNCTIONS:
            raise QueryValidation(f"{src.where(_start(fn))}: Function {name} not registered")
    _check_special_calls(src)


def _check_special_calls(src: Source) -> None:
    """Calls sqlglot parses by hand (no name left in the tree): checked on the tokens."""
    specials = _DIALECT.parser_class.FUNCTION_PARSERS
    for t, nxt in zip(src.tokens, src.tokens[1:], strict=False):
        name = t.text.lower()
        if (
            t.token_type not in (TokenType.STRING, TokenType.IDENTIFIER)
            and nxt.token_type == TokenType.L_PAREN
            and t.text.upper() in specials
            and name not in TIMESTREAM_FUNCTIONS
        ):
            raise QueryValidation(f"{src.where(t.start)}: Function {name} not registered")


def _check_table(
    src: Source, table: exp.Table, ctes: set[str], has_table: Callable[[str, str | None], bool]
) -> None:
    at = src.where(_start(table))
    if not isinstance(table.this, exp.Identifier):
        if isinstance(table.this, exp.Func):
            name = _function_name(src, table.this) or table.this.sql_name().lower()
            raise QueryValidation(f"{src.find(name)}: Function {name} not registered")
        raise QueryValidation(f"{at}: mismatched input '{table.sql()[:40]}'")
    if table.args.get("catalog") is not None:
        raise QueryValidation(f"{at}: Table '{table.sql(dialect='trino')}' does not exist")
    db, name = table.db, table.name
    if not db:
        if name.lower() in ctes:
            return
        raise QueryValidation(f"{at}: Table '{name}' does not exist (name it database.table)")
    if not has_table(db, None):
        raise QueryValidation(f"{at}: Database '{db}' does not exist")
    if not has_table(db, name):
        raise QueryValidation(f"{at}: Table '{db}.{name}' does not exist")


def _start(node: exp.Expr) -> int | None:
    if node.meta.get("start") is not None:
        return int(node.meta["start"])
    starts = [int(n.meta["start"]) for n in node.find_all(exp.Identifier) if "start" in n.meta]
    return min(starts) if starts else None


def _function_name(src: Source, fn: exp.Func) -> str | None:
    """The function's name as written; None for syntax (CAST, CASE, IF...)."""
    if isinstance(fn, exp.Anonymous):
        return str(fn.name).lower()
    if fn.meta.get("ts_name"):
        return str(fn.meta["ts_name"]).lower()
    start, end = fn.meta.get("start"), fn.meta.get("end")
    if start is not None and end is not None:  # a call only if "(" follows the name
        return src.text[start : end + 1].lower() if _CALL.match(src.text, end + 1) else None
    return None  # syntax (CAST, CASE, AND...) or a special call: see _check_special_calls


def to_duckdb(tree: exp.Expr, catalog: str) -> str:
    """DuckDB SQL for a checked tree: tables fully qualified, Timestream functions rewritten."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and node.db:
            node.set("this", exp.to_identifier(node.name, quoted=True))
            node.set("db", exp.to_identifier(node.db, quoted=True))
            node.set("catalog", exp.to_identifier(catalog, quoted=True))
        elif isinstance(node, exp.Anonymous) and str(node.name).lower() in REWRITES:
            return REWRITES[str(node.name).lower()](list(node.expressions))
        return node

    return tree.copy().transform(fix).sql(dialect="duckdb", comments=False)


def translate(sql: str, catalog: str, has_table: Callable[[str, str | None], bool]) -> str:
    """The whole gate: Timestream SQL in, one checked DuckDB SELECT out."""
    return checked(tokenize(sql), catalog, has_table)


def checked(src: Source, catalog: str, has_table: Callable[[str, str | None], bool]) -> str:
    """Parse, check and emit a tokenized query: the DuckDB SQL that may run.

    sqlglot parses and walks recursively, so a query nested a few hundred levels deep
    (``((((1))))...``) exhausts Python's stack: that is a refused query, not a crash.
    """
    try:
        tree = parse(src)
        check(src, tree, has_table)
        return to_duckdb(tree, catalog)
    except RecursionError:
        raise QueryValidation("line 1:1: the query is nested too deeply") from None


_CALL = re.compile(r"\s*\(")
_INTERNAL = re.compile(r'"?ts_\d{12}_[a-z0-9_]+"?\.|"?__iotpipe_storage"?\.?')


def timestream_error(src: Source, message: str) -> str:
    """A DuckDB error as Timestream would word it, with no internal names in it."""
    text = message.split("\n")[0].strip()
    kind, _, body = text.partition(" Error: ")
    body = _INTERNAL.sub("", body or text)
    if m := re.search(r'Referenced column "(.+?)" not found', body):
        return f"{src.find(m.group(1))}: Column '{m.group(1)}' does not exist"
    if m := re.search(r'column "(.+?)" must appear in the GROUP BY', body):
        name = m.group(1)
        return f"{src.find(name)}: '{name}' must be an aggregate expression or appear in GROUP BY clause"
    if m := re.search(
        r"No function matches the given name and argument types '(\w+)\((.*?)\)'", body
    ):
        fn, args = m.group(1), m.group(2).lower()
        return f"{src.find(fn)}: Unexpected parameters ({args}) for function {fn}"
    if m := re.search(r"Function with name (\w+) does not exist", body):
        return f"{src.find(m.group(1))}: Function {m.group(1)} is not supported by the embedded AWS"
    body = re.split(r"\s*(Candidate bindings|Did you mean)", body)[0].rstrip(" !")
    return f"line 1:1: {body}" if kind in ("Binder", "Catalog", "Parser") else body
