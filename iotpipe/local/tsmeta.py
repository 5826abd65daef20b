"""Timestream's SHOW and DESCRIBE statements, answered from the store's own catalog.

``SHOW DATABASES [LIKE p]``, ``SHOW TABLES [FROM db] [LIKE p]``, ``SHOW MEASURES FROM
db.table [LIKE p]`` and ``DESCRIBE db.table``, with Timestream's columns: ``Database``;
``Table``; ``measure_name``, ``data_type``, ``dimensions`` (an array of rows
``dimension_name``, ``data_type``); ``Column``, ``Type``, ``Timestream attribute type``.
They never reach DuckDB as SQL (DuckDB's SHOW/DESCRIBE would list internal tables).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlglot.tokens import Token, TokenType

from iotpipe.local.tssql import _DIALECT, QueryValidation, Source
from iotpipe.local.tsstore import TimestreamStore, qi

_VARCHAR = {"ScalarType": "VARCHAR"}
_DIMENSIONS_TYPE = {
    "ArrayColumnInfo": {
        "Type": {
            "RowColumnInfo": [
                {"Name": "dimension_name", "Type": _VARCHAR},
                {"Name": "data_type", "Type": _VARCHAR},
            ]
        }
    }
}
_NAME_TYPES = (TokenType.VAR, TokenType.IDENTIFIER)


@dataclass(frozen=True)
class Meta:
    kind: str  # databases, tables, measures, describe
    db: str | None = None
    table: str | None = None
    like: str | None = None
    at: str = "line 1:1"  # where the database name was written


def parse_meta(src: Source) -> Meta | None:
    """A SHOW/DESCRIBE statement, or None for anything else (left to the SELECT gate)."""
    toks = [t for t in src.tokens if t.token_type != TokenType.SEMICOLON]
    if not toks or toks[0].token_type not in (TokenType.SHOW, TokenType.DESCRIBE):
        return None
    if toks[0].token_type == TokenType.SHOW and len(toks) == 2:
        toks = [toks[0], *_retokenize(src, toks[0], toks[1].text)]
    if toks[0].token_type == TokenType.DESCRIBE:
        db, table, rest = _qualified(src, toks[1:])
        _end(src, rest)
        return Meta("describe", db, table, at=src.where(toks[1].start))
    what = toks[1].text.upper() if len(toks) > 1 else ""
    rest = toks[2:]
    if what == "DATABASES":
        like, rest = _like_clause(src, rest)
        _end(src, rest)
        return Meta("databases", like=like)
    if what == "TABLES":
        in_db: str | None = None
        at = "line 1:1"
        if rest and rest[0].text.upper() in ("FROM", "IN"):
            at = src.where(rest[1].start if len(rest) > 1 else None)
            in_db, rest = _name(src, rest[1:]), rest[2:]
        like, rest = _like_clause(src, rest)
        _end(src, rest)
        return Meta("tables", in_db, like=like, at=at)
    if what == "MEASURES" and rest and rest[0].text.upper() in ("FROM", "IN"):
        at = src.where(rest[1].start if len(rest) > 1 else None)
        db, table, rest = _qualified(src, rest[1:])
        like, rest = _like_clause(src, rest)
        _end(src, rest)
        return Meta("measures", db, table, like, at=at)
    bad = toks[1] if len(toks) > 1 else toks[0]
    raise QueryValidation(f"{src.where(bad.start)}: mismatched input '{bad.text}'")


def _retokenize(src: Source, show: Token, rest: str) -> list[Token]:
    """sqlglot keeps what follows SHOW as one raw string: tokenize it, positions kept."""
    offset = src.text.find(rest, show.end + 1)
    tokens = [t for t in _DIALECT.tokenize(rest) if t.token_type != TokenType.SEMICOLON]
    for t in tokens:
        t.start, t.end = t.start + offset, t.end + offset
    return tokens


def _name(src: Source, toks: list[Token]) -> str:
    if not toks or toks[0].token_type in (TokenType.STRING, TokenType.DOT, TokenType.L_PAREN):
        where = src.where(toks[0].start) if toks else src.where(len(src.text))
        raise QueryValidation(f"{where}: a database or table name is expected")
    return toks[0].text


def _qualified(src: Source, toks: list[Token]) -> tuple[str, str, list[Token]]:
    db = _name(src, toks)
    if len(toks) < 3 or toks[1].token_type != TokenType.DOT:
        raise QueryValidation(f"{src.where(toks[0].start)}: name the table as database.table")
    return db, _name(src, toks[2:]), toks[3:]


def _like_clause(src: Source, toks: list[Token]) -> tuple[str | None, list[Token]]:
    if not toks or toks[0].token_type != TokenType.LIKE:
        return None, toks
    if len(toks) < 2 or toks[1].token_type != TokenType.STRING:
        raise QueryValidation(f"{src.where(toks[0].start)}: LIKE needs a quoted pattern")
    return toks[1].text, toks[2:]


def _end(src: Source, rest: list[Token]) -> None:
    if rest:
        raise QueryValidation(f"{src.where(rest[0].start)}: mismatched input '{rest[0].text}'")


def _matches(pattern: str | None, name: str) -> bool:
    if pattern is None:
        return True
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, re.S) is not None


def answer(
    meta: Meta, store: TimestreamStore, account: str, region: str, cursor: Any
) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
    """ColumnInfo and rows for one SHOW/DESCRIBE statement."""
    if meta.kind == "databases":
        names = store.databases(account, region)
        return [{"Name": "Database", "Type": _VARCHAR}], [
            (d,) for d in names if _matches(meta.like, d)
        ]
    if meta.db is not None and not store.has_table(account, region, meta.db, None):
        raise QueryValidation(f"{meta.at}: Database '{meta.db}' does not exist")
    if meta.kind == "tables":
        names = store.tables(account, region, meta.db)
        return [{"Name": "Table", "Type": _VARCHAR}], [
            (t,) for t in names if _matches(meta.like, t)
        ]
    assert meta.db is not None and meta.table is not None
    if not store.has_table(account, region, meta.db, meta.table):
        raise QueryValidation(f"{meta.at}: Table '{meta.db}.{meta.table}' does not exist")
    schema = store.schema(account, region, meta.db, meta.table)
    if meta.kind == "describe":
        cols = [
            {"Name": n, "Type": _VARCHAR} for n in ("Column", "Type", "Timestream attribute type")
        ]
        rows = [(d, "varchar", "DIMENSION") for d in schema.dimensions]
        rows += [("measure_name", "varchar", "MEASURE_NAME"), ("time", "timestamp", "TIMESTAMP")]
        rows += [
            (m, t, "MEASURE_VALUE" if m.startswith("measure_value::") else "MULTI")
            for m, t in schema.measures.items()
        ]
        return cols, rows
    return _measures(meta, schema, cursor)


def _measures(
    meta: Meta, schema: Any, cursor: Any
) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
    """SHOW MEASURES: per measure name, its value type and the dimensions seen with it."""
    names = [*schema.measures, *schema.dimensions]
    seen = "".join(f", bool_or({qi(n)} IS NOT NULL)" for n in names)
    cursor.execute(
        f"SELECT measure_name{seen} FROM {schema.storage} GROUP BY measure_name ORDER BY 1"
    )
    rows = []
    for measure, *flags in cursor.fetchall():
        if not _matches(meta.like, measure):
            continue
        present = {n for n, f in zip(names, flags, strict=True) if f}
        multi = [m for m in schema.measures if m in present and not m.startswith("measure_value::")]
        single = [schema.measures[m] for m in schema.measures if m in present and m not in multi]
        kind = "multi" if multi else (single[0] if single else "unknown")
        dims = [(d, "varchar") for d in schema.dimensions if d in present]
        rows.append((measure, kind, dims))
    cols = [
        {"Name": "measure_name", "Type": _VARCHAR},
        {"Name": "data_type", "Type": _VARCHAR},
        {"Name": "dimensions", "Type": _DIMENSIONS_TYPE},
    ]
    return cols, rows
