"""Athena SQL (Trino) -> one read-only DuckDB SELECT over the Parquet files it may read.

Pure: what the embedded Athena runs is decided here, without moto, S3 or DuckDB, so each
decision is unit-tested. A query is parsed with sqlglot (read="trino"), never pattern
matched, and DuckDB only runs SQL that sqlglot generated from a checked tree:

- exactly one statement whose root is a SELECT (WITH included) or a set operation; no
  DML, DDL, COPY, ATTACH, SET, PRAGMA... anywhere in the tree;
- every table is a Glue table (``"db"."table"``, ``db.table``, or ``table`` in the
  QueryExecutionContext's database) or a CTE; no table functions, no file paths, and no
  function Trino does not have (``read_csv``, ``read_text``...);
- each Glue table becomes ``read_parquet([...])`` over only the files whose partition
  values (``dt=``/``hour=`` in the key) can satisfy the WHERE clause's AND-ed conditions
  on the partition columns: that is partition pruning, and what Athena bills.

Errors read like Athena engine 3's (``SYNTAX_ERROR: line 1:8: ...``), with the AthenaError
type from Athena's error catalog. The engine adds a second gate: DuckDB itself runs with
file access confined to the cache directory, on a read-only transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

CATALOG = "awsdatacatalog"
# Trino functions sqlglot does not model (it parses them as "anonymous" calls): allowed.
_TRINO_ONLY_WORDS = (
    "e codepoint format_datetime to_iso8601 millisecond at_timezone with_timezone every "
    "histogram geometric_mean checksum map_values json_array_length json_size is_finite "
    "is_infinite nan infinity url_extract_host human_readable_seconds from_iso8601_date "
    "to_milliseconds parse_duration current_timezone timezone_hour timezone_minute "
    "last_day_of_month year_of_week yow normalize word_stem levenshtein_distance "
    "hamming_distance url_extract_path url_extract_parameter bit_count"
)
TRINO_ONLY = frozenset(_TRINO_ONLY_WORDS.split())
_FILE_FUNCTIONS = (exp.ReadCSV, exp.ReadParquet)
_FORBIDDEN = (
    exp.DML, exp.DDL, exp.Command, exp.Copy, exp.Set, exp.Pragma, exp.Use, exp.Transaction,
    exp.Commit, exp.Rollback, exp.Into, exp.Describe, exp.Show, exp.LoadData, exp.Cache,
    exp.Uncache, exp.Refresh, exp.Attach, exp.Detach, exp.Install, exp.Summarize, exp.Grant,
    exp.Drop, exp.Alter, exp.Kill, exp.Analyze, exp.Export, exp.Declare, exp.Execute,
)  # fmt: skip
_DUCK_TYPES = {
    "string": "VARCHAR", "varchar": "VARCHAR", "char": "VARCHAR", "int": "INTEGER",
    "integer": "INTEGER", "bigint": "BIGINT", "smallint": "SMALLINT", "tinyint": "TINYINT",
    "double": "DOUBLE", "float": "FLOAT", "real": "FLOAT", "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP", "date": "DATE", "binary": "BLOB",
}  # fmt: skip


class AthenaQueryError(Exception):
    """A query Athena would fail: FAILED, with ``code: message`` as StateChangeReason."""

    def __init__(self, code: str, message: str, error_type: int = 1000) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.code, self.error_type = code, error_type


@dataclass(frozen=True)
class GlueTable:
    """What the planner needs of a Glue table (from GetTable)."""

    database: str
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, Glue type)
    partition_keys: tuple[tuple[str, str], ...] = ()
    location: str = ""
    parameters: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Condition:
    """One AND-ed WHERE condition on a partition column: op is =, in, <, <=, >, >=, between."""

    key: str
    op: str
    values: tuple[str | int, ...]

    def holds(self, value: str | int) -> bool:
        v, a = value, self.values
        if self.op in ("=", "in"):
            return v in a
        if self.op == "between":
            return a[0] <= v <= a[1]  # type: ignore[operator]
        return {  # type: ignore[no-any-return]
            "<": lambda: v < a[0], "<=": lambda: v <= a[0],  # type: ignore[operator]
            ">": lambda: v > a[0], ">=": lambda: v >= a[0],  # type: ignore[operator]
        }[self.op]()  # fmt: skip


# -- parsing and refusing --------------------------------------------------------------
def position(sql: str, node: exp.Expr | None) -> str:
    """``line L:C`` (1-based, Trino's form) where `node` (None: the statement) starts."""
    starts = [] if node is None else [int(n.meta["start"]) for n in _with_meta(node)]
    off = min(starts) if starts else len(sql) - len(sql.lstrip())
    line = sql.count("\n", 0, off) + 1
    return f"line {line}:{off - (sql.rfind(chr(10), 0, off) + 1) + 1}"


def _with_meta(node: exp.Expr) -> Iterable[exp.Expr]:
    return (n for n in node.walk() if n.meta.get("start") is not None)


def parse(sql: str) -> exp.Expr:
    """Exactly one SELECT / WITH / set operation, else an Athena-worded refusal."""
    try:
        trees = [t for t in sqlglot.parse(sql, read="trino") if t is not None]
    except TokenError:
        raise AthenaQueryError("SYNTAX_ERROR", "line 1:1: unterminated string", 1006) from None
    except ParseError as e:
        raise AthenaQueryError("SYNTAX_ERROR", _syntax(sql, e), 1006) from None
    except RecursionError:
        raise AthenaQueryError(
            "NOT_SUPPORTED", "line 1:1: query is nested too deeply", 1200
        ) from None
    if not trees:
        raise AthenaQueryError("SYNTAX_ERROR", "line 1:1: mismatched input '<EOF>'", 1006)
    if len(trees) > 1:
        raise AthenaQueryError(
            "NOT_SUPPORTED", "Only one sql statement is allowed. Got: " + sql.strip(), 1202
        )
    tree = trees[0]
    root = tree.this if isinstance(tree, exp.Subquery) else tree
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN) or (node is root and not _is_query(root)):
            what = str(node.this).upper() if isinstance(node, exp.Command) else node.key.upper()
            raise AthenaQueryError(
                "NOT_SUPPORTED",
                f"{position(sql, None if node in (tree, root) else node)}: the embedded AWS "
                "runs read-only queries only "
                f"(SELECT, WITH); {what} is not allowed",
                1202,
            )
    return tree


def _is_query(node: exp.Expr) -> bool:
    return isinstance(node, (exp.Select, exp.SetOperation)) and not isinstance(node, exp.DDL)


def _syntax(sql: str, e: ParseError) -> str:
    err = e.errors[0] if e.errors else {}
    line, col, hl = err.get("line"), err.get("col"), str(err.get("highlight") or "")
    if not line or not col:
        return "line 1:1: mismatched input"
    return f"line {line}:{max(1, col - len(hl) + 1)}: mismatched input '{hl[:40]}'"


def check_functions(sql: str, tree: exp.Expr) -> None:
    """Trino's functions only: nothing DuckDB has that reads files or the environment."""
    for node in tree.walk():
        if isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier):
            name = _sql_name(node.this) if isinstance(node.this, exp.Func) else node.sql()
            raise AthenaQueryError(
                "FUNCTION_NOT_FOUND",
                f"{position(sql, node)}: Table function '{name.lower()}' not registered",
                1303,
            )
        bad = isinstance(node, _FILE_FUNCTIONS) or (
            isinstance(node, exp.Anonymous) and str(node.name).lower() not in TRINO_ONLY
        )
        if bad:
            name = str(node.name if isinstance(node, exp.Anonymous) else _sql_name(node)).lower()
            raise AthenaQueryError(
                "FUNCTION_NOT_FOUND",
                f"{position(sql, node)}: Function '{name}' not registered",
                1303,
            )


def _sql_name(fn: exp.Expr) -> str:
    namer = getattr(fn, "sql_name", None)
    return str(namer() if callable(namer) else fn.key)


# -- tables --------------------------------------------------------------------------------
def table_refs(tree: exp.Expr) -> list[exp.Table]:
    """Every table reference that is not a CTE's name."""
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    return [
        t
        for t in tree.find_all(exp.Table)
        if isinstance(t.this, exp.Identifier) and (t.db or t.name.lower() not in ctes)
    ]


def resolve(
    sql: str,
    table: exp.Table,
    database: str,
    lookup: Callable[[str, str], GlueTable | None],
    has_database: Callable[[str], bool],
) -> GlueTable:
    """The Glue table a reference names (``database`` when unqualified), or Athena's error."""
    at = position(sql, table)
    catalog = table.catalog.lower()
    if catalog and catalog != CATALOG:
        raise AthenaQueryError("CATALOG_NOT_FOUND", f"{at}: Catalog '{catalog}' not found", 1301)
    db, name = (table.db or database).lower(), table.name.lower()
    if not has_database(db):
        raise AthenaQueryError("SCHEMA_NOT_FOUND", f"{at}: Schema '{db}' does not exist", 1301)
    found = lookup(db, name)
    if found is None:
        raise AthenaQueryError(
            "TABLE_NOT_FOUND", f"{at}: Table '{CATALOG}.{db}.{name}' does not exist", 1110
        )
    return found


# -- partition pruning ---------------------------------------------------------------------
def conditions(table: exp.Table, keys: Iterable[tuple[str, str]]) -> list[Condition]:
    """The WHERE conditions of `table`'s own SELECT that bound its partition columns.

    Only top-level AND-ed comparisons of a partition column with literals of its type
    count; anything else (OR, NOT, functions, other types) bounds nothing, so it reads
    more, never less. With joins, only columns qualified with this table's name count.
    """
    select = table.find_ancestor(exp.Select)
    where = select.args.get("where") if select is not None else None
    if select is None or where is None:
        return []
    if table.parent is not select.args.get("from_") and table.parent not in (
        select.args.get("joins") or []
    ):
        return []
    alone = not select.args.get("joins")
    types = {k.lower(): t.lower() for k, t in keys}
    names = {table.alias_or_name.lower(), table.name.lower()}
    found = []
    for cond in _conjuncts(where.this):
        c = _condition(cond, types, names, alone)
        if c is not None:
            found.append(c)
    return found


def _conjuncts(node: exp.Expr) -> Iterable[exp.Expr]:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        yield from _conjuncts(node.this)
        yield from _conjuncts(node.expression)
    else:
        yield node


_OPS: dict[type[exp.Expr], str] = {
    exp.EQ: "=",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
}
_FLIP = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _condition(
    node: exp.Expr, types: dict[str, str], names: set[str], alone: bool
) -> Condition | None:
    def key(col: exp.Expr) -> str | None:
        if not isinstance(col, exp.Column) or col.name.lower() not in types:
            return None
        qualifier = col.table.lower()
        return col.name.lower() if (qualifier in names or (not qualifier and alone)) else None

    def values(key_name: str, lits: list[exp.Expr]) -> tuple[str | int, ...] | None:
        want_str = types[key_name] in ("string", "varchar", "char")
        out: list[str | int] = []
        for lit in lits:
            if not isinstance(lit, exp.Literal) or lit.is_string != want_str:
                return None
            if not want_str and not re.fullmatch(r"-?\d+", lit.this):
                return None
            out.append(lit.this if want_str else int(lit.this))
        return tuple(out)

    if isinstance(node, exp.In) and not node.args.get("query") and (k := key(node.this)):
        vals = values(k, list(node.expressions))
        return Condition(k, "in", vals) if vals else None
    if isinstance(node, exp.Between) and (k := key(node.this)):
        vals = values(k, [node.args["low"], node.args["high"]])
        return Condition(k, "between", vals) if vals else None
    op = _OPS.get(type(node))
    if op is None:
        return None
    left, right = node.this, node.expression
    if (k := key(left)) and (vals := values(k, [right])):
        return Condition(k, op, vals)
    if (k := key(right)) and (vals := values(k, [left])):
        return Condition(k, _FLIP[op], vals)
    return None


def partition_values(key: str, partition_keys: Iterable[tuple[str, str]]) -> dict[str, str | int]:
    """``dt``/``hour`` values from an S3 key's ``name=value/`` segments (hour as an int)."""
    seg = dict(s.split("=", 1) for s in key.split("/")[:-1] if "=" in s)
    out: dict[str, str | int] = {}
    for name, typ in partition_keys:
        raw = seg.get(name.lower(), seg.get(name))
        if raw is None:
            continue
        out[name.lower()] = int(raw) if typ.lower() in ("int", "integer", "bigint") else raw
    return out


def selected(values: dict[str, str | int], conds: Iterable[Condition]) -> bool:
    """Can a file with these partition values hold a row the conditions keep?"""
    for c in conds:
        v = values.get(c.key)
        if v is None or not isinstance(v, type(c.values[0])) or not c.holds(v):
            return False
    return True


# -- rewriting -----------------------------------------------------------------------------
def duck_type(glue_type: str) -> str | None:
    """DuckDB type for a Glue column type (None: complex, left as Parquet has it)."""
    t = glue_type.strip().lower()
    if m := re.fullmatch(r"decimal\s*\((\d+)\s*,\s*(\d+)\)", t):
        return f"DECIMAL({m.group(1)},{m.group(2)})"
    return _DUCK_TYPES.get(re.sub(r"\(.*", "", t))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def source_sql(table: GlueTable, files: list[str], present: set[str]) -> str:
    """The DuckDB SELECT standing in for a Glue table: its columns cast to Glue's types.

    A column no file has is NULL (Athena reads a missing Parquet column as NULL).
    """
    cols = []
    for name, glue in (*table.columns, *table.partition_keys):
        typ = duck_type(glue)
        there = name.lower() in present
        expr = _quote(name) if there else "NULL"
        cols.append(
            f"CAST({expr} AS {typ}) AS {_quote(name)}" if typ else f"{expr} AS {_quote(name)}"
        )
    if not files:
        return f"SELECT {', '.join(cols)} WHERE false"
    hive = ", ".join(f"{_literal(k)}: {duck_type(t) or 'VARCHAR'}" for k, t in table.partition_keys)
    paths = ", ".join(_literal(f) for f in files)
    options = "hive_partitioning=true, union_by_name=true" + (
        f", hive_types={{{hive}}}" if hive else ""
    )
    return f"SELECT {', '.join(cols)} FROM read_parquet([{paths}], {options})"


def to_duckdb(tree: exp.Expr, sources: dict[int, str]) -> str:
    """DuckDB SQL: each Glue table reference (by ``id``) replaced by its source SELECT."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and id(node) in targets:
            inner = sqlglot.parse_one(targets[id(node)], read="duckdb")
            alias = node.alias_or_name
            return exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(alias)))
        return node

    copied = tree.copy()
    pairs = {id(o): c for o, c in zip(tree.walk(), copied.walk(), strict=True)}
    targets = {id(pairs[k]): v for k, v in sources.items() if k in pairs}
    return copied.transform(fix, copy=False).sql(dialect="duckdb", comments=False)


def output_names(tree: exp.Expr, duck_names: list[str]) -> list[str]:
    """Trino's column names: alias, column name, or ``_colN`` for an unnamed expression."""
    first = tree
    while isinstance(first, (exp.SetOperation, exp.Subquery)):
        first = first.this
    projections = first.expressions if isinstance(first, exp.Select) else []
    if len(projections) != len(duck_names) or any(p.is_star for p in projections):
        return [n.lower() for n in duck_names]
    names = []
    for i, p in enumerate(projections):
        if isinstance(p, (exp.Alias, exp.Column)):
            names.append(p.alias_or_name.lower())
        else:
            names.append(f"_col{i}")
    return names
