"""The embedded Athena's engine: Glue and S3 in, a planned DuckDB query, results out.

`AthenaEngine.start` is what the patched StartQueryExecution calls: it settles the
workgroup's rules (output location, EnforceWorkGroupConfiguration, the bytes-scanned
cutoff) and queues the execution on `athenajobs`. The job then plans (`athenasql`:
parse, refuse, resolve tables against Glue, prune partitions by the S3 keys), copies
the chosen objects to files (`athenacache`), runs the SQL on a read-only transaction of
a DuckDB whose file access is confined to that cache (nothing else readable, even if a
function slipped through the gate), and writes ``<id>.csv`` and ``<id>.csv.metadata`` to
the output location through moto's S3.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.dialects.trino import Trino
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from iotpipe.local import athenaresults, athenasql
from iotpipe.local import motointernals_athena as moto
from iotpipe.local import motointernals_lake as moto_lake
from iotpipe.local.athenacache import ObjectCache, S3File
from iotpipe.local.athenajobs import Execution, Jobs, Limits, ScanLimitExceeded
from iotpipe.local.athenasql import AthenaQueryError, GlueTable

MAX_QUERY = 262_144
NO_OUTPUT = (
    "No output location provided. An output location is required either through the "
    "Workgroup result configuration setting or as an API input."
)
# Trino's to_iso8601: DuckDB has none; a macro, created before the database is locked.
_MACROS = (
    "CREATE MACRO to_iso8601(x) AS CASE "
    "WHEN typeof(x) = 'TIMESTAMP WITH TIME ZONE' "
    "THEN strftime(timezone('UTC', x::TIMESTAMPTZ), '%Y-%m-%dT%H:%M:%S.%gZ') "
    "WHEN typeof(x) = 'DATE' THEN strftime(x::DATE, '%Y-%m-%d') "
    "ELSE strftime(x::TIMESTAMP, '%Y-%m-%dT%H:%M:%S.%g') END",
)


class RequestError(Exception):
    """StartQueryExecution refused at once (InvalidRequestException), no execution made."""


def _split_s3(url: str) -> tuple[str, str]:
    m = re.fullmatch(r"s3://([^/]+)/?(.*)", url)
    if m is None:
        raise ValueError(url)
    return m.group(1), m.group(2)


def sandboxed(root: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that can read files under `root` only, settings locked."""
    db = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    db.execute("SET TimeZone = 'UTC'")
    for macro in _MACROS:
        db.execute(macro)
    db.execute(f"SET allowed_directories = ['{str(root).rstrip('/')}/']")
    db.execute("SET enable_external_access = false")
    db.execute("SET lock_configuration = true")
    return db


class AthenaEngine:
    """Athena's executions of one emulator, over moto's Glue and S3."""

    def __init__(self, home: Path, limits: Limits | None = None) -> None:
        self.cache = ObjectCache(home / "athena-cache", self._fetch)
        self._db = sandboxed(self.cache.root)
        self._db_lock = threading.Lock()
        self.jobs = Jobs(limits or Limits.from_env(), on_state=self._state_changed)
        self._tokens: dict[tuple[str, str, str], str] = {}

    # -- StartQueryExecution ----------------------------------------------------------
    def start(
        self,
        account: str,
        region: str,
        query: str,
        context: dict[str, Any] | None,
        result_configuration: dict[str, Any] | None,
        workgroup: str | None,
        client_token: str | None = None,
        parameters: list[str] | None = None,
    ) -> str:
        if not query or len(query) > MAX_QUERY:
            raise RequestError(f"QueryString must be 1 to {MAX_QUERY} characters long.")
        group = workgroup or "primary"
        token_key = (account, region, client_token or "")
        if client_token and token_key in self._tokens:
            return self._tokens[token_key]  # a retry: the execution already started
        config = moto.workgroup_configuration(account, region, group)
        if config is None:
            raise RequestError(f"WorkGroup {group} is not found.")
        effective = _result_configuration(config, result_configuration or {})
        output = str(effective.get("OutputLocation") or "")
        if not output:
            raise RequestError(NO_OUTPUT)
        if not output.startswith("s3://"):
            raise RequestError(f"The output location {output} is not an s3:// location.")
        context = dict(context or {})
        execution_id = moto.new_execution(account, region, query, context, effective, group)
        ex = Execution(
            id=execution_id,
            account=account,
            region=region,
            query=query,
            database=str(context.get("Database") or "default"),
            workgroup=group,
            output=moto.execution_output(account, region, execution_id) or output,
            cutoff=config.get("BytesScannedCutoffPerQuery"),
            context=context,
            result_configuration=effective,
            parameters=[str(p) for p in parameters or []],
        )
        if client_token:
            self._tokens[token_key] = execution_id
        self.jobs.submit(ex, self._work)
        return execution_id

    def _state_changed(self, ex: Execution) -> None:
        moto.set_execution_state(ex.account, ex.region, ex.id, ex.state)

    # -- the job -----------------------------------------------------------------------
    def _work(self, ex: Execution) -> None:
        query = bind(ex.query, ex.parameters)
        tree = athenasql.parse(query)
        athenasql.check_functions(query, tree)
        with self._db_lock:
            cur = self._db.cursor()
        held: list[Path] = []
        try:
            ex.cursor = cur
            ex.check()
            cur.execute("BEGIN TRANSACTION READ ONLY")
            sql = self._plan(ex, query, tree, cur, held)
            self._run(ex, tree, cur, sql)
        except duckdb.InterruptException:
            raise
        except duckdb.Error as e:
            if ex.stop is not None:
                raise duckdb.InterruptException(ex.stop) from None
            raise athenaresults.athena_error(query, str(e), [str(self.cache.root)]) from None
        finally:
            ex.cursor = None
            cur.close()
            self.cache.release(held)
        self._write_results(ex)

    def _plan(self, ex: Execution, query: str, tree: Any, cur: Any, held: list[Path]) -> str:
        sources: dict[int, str] = {}
        scanned = 0
        for ref in athenasql.table_refs(tree):
            table = athenasql.resolve(
                query,
                ref,
                ex.database,
                lambda db, name: _glue_table(ex.account, ex.region, db, name),
                lambda db: moto.glue_database_exists(ex.account, ex.region, db),
            )
            conds = athenasql.conditions(ref, table.partition_keys)
            local = self.cache.files(self._objects(ex, table, conds))
            paths = [p for _, p in local]
            self.cache.hold(paths)
            held.extend(paths)
            scanned += sum(f.size for f, _ in local)
            sources[id(ref)] = athenasql.source_sql(
                table, [str(p) for p in paths], _present(cur, paths)
            )
        if ex.cutoff is not None and scanned > int(ex.cutoff):
            ex.scanned = int(ex.cutoff)
            raise ScanLimitExceeded(
                f"Bytes scanned limit was exceeded: the query would scan {scanned} bytes and "
                f"workgroup {ex.workgroup} allows {int(ex.cutoff)} per query "
                "(BytesScannedCutoffPerQuery); filter on the partition columns (dt, hour)"
            )
        ex.scanned = scanned
        return athenasql.to_duckdb(tree, sources)

    def _objects(
        self, ex: Execution, table: GlueTable, conds: list[athenasql.Condition]
    ) -> list[S3File]:
        """The table's objects whose partition values can satisfy the conditions."""
        params = table.parameters
        template = params.get("storage.location.template") if _projected(params) else None
        try:
            bucket, prefix = _split_s3((template or table.location).split("${")[0])
        except ValueError:
            raise AthenaQueryError(
                "HIVE_METASTORE_ERROR", f"Table location {table.location!r} is not in S3", 1109
            ) from None
        try:
            listed = moto_lake.objects(ex.account, ex.region, bucket, prefix)
        except Exception:
            raise AthenaQueryError(
                "", f"The specified bucket does not exist: {bucket}", 1306
            ) from None
        self.cache.retain(bucket, prefix, {k for k, _, _ in listed})
        keys = [name for name, _ in table.partition_keys]
        chosen = []
        for key, size, etag in listed:
            base = key.rsplit("/", 1)[-1]
            if not base or base.startswith(("_", ".")) or size == 0:
                continue  # folders, _SUCCESS, hidden files: Athena skips them
            values = athenasql.partition_values(key, table.partition_keys)
            if len(values) < len(keys) or not _in_projection(values, params):
                continue
            if athenasql.selected(values, conds):
                segments = tuple(s for s in key.split("/")[:-1] if s.split("=")[0].lower() in keys)
                chosen.append(S3File(bucket, key, size, etag, segments, ex.account, ex.region))
        return chosen

    def _run(self, ex: Execution, tree: Any, cur: Any, sql: str) -> None:
        statements = cur.extract_statements(sql)  # DuckDB's own parser: the second gate
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise AthenaQueryError(
                "NOT_SUPPORTED", "line 1:1: only SELECT queries are supported", 1202
            )
        ex.check()
        cur.execute(sql)
        desc = cur.description or []
        names = athenasql.output_names(tree, [str(d[0]) for d in desc])
        ex.names = names
        ex.columns = athenaresults.column_info(names, [str(d[1]) for d in desc])
        rows: list[list[str | None]] = []
        while chunk := cur.fetchmany(10_000):
            ex.check()
            rows.extend([athenaresults.text(v) for v in row] for row in chunk)
            if len(rows) > self.jobs.limits.max_rows:
                raise AthenaQueryError(
                    "EXCEEDED_LOCAL_LIMIT",
                    f"the result has more than {self.jobs.limits.max_rows:,} rows, the embedded "
                    "AWS's limit: aggregate or add a LIMIT",
                    1000,
                )
        ex.rows = rows

    def _write_results(self, ex: Execution) -> None:
        bucket, key = _split_s3(ex.output)
        body = athenaresults.csv_bytes(ex.names, ex.rows or [])
        try:
            moto_lake.put_object(ex.account, ex.region, bucket, key, body)
            moto_lake.put_object(
                ex.account,
                ex.region,
                bucket,
                key + ".metadata",
                athenaresults.metadata_bytes(ex.columns),
            )
        except Exception:
            ex.rows = None
            raise AthenaQueryError(
                "", f"Unable to verify/create output bucket {bucket}", 401
            ) from None

    @staticmethod
    def _fetch(f: S3File) -> tuple[bytes, str] | None:
        return moto_lake.object_and_etag(f.account, f.region, f.bucket, f.key)

    def shutdown(self) -> None:
        self.jobs.shutdown()


_LITERALS = (exp.Literal, exp.Boolean, exp.Null)


def bind(query: str, parameters: list[str]) -> str:
    """ExecutionParameters: each ``?`` outside strings becomes one literal, in order.

    A parameter must be a single literal (``'a'``, ``7``, ``-1.5``, ``DATE '...'``):
    SQL in a parameter is refused, as Trino refuses it.
    """
    if "?" not in query:
        return query
    try:
        marks = [t for t in Trino().tokenize(query) if t.token_type == TokenType.PLACEHOLDER]
    except SqlglotError:
        return query  # parse() words the error
    if len(marks) != len(parameters):
        raise AthenaQueryError(
            "INVALID_PARAMETER_USAGE",
            f"line 1:1: Incorrect number of parameters: expected {len(marks)} but found "
            f"{len(parameters)}",
            1100,
        )
    out, last = [], 0
    for mark, value in zip(marks, parameters, strict=True):
        try:
            node = sqlglot.parse_one(value, read="trino")
        except SqlglotError:
            node = None
        inner = node.this if isinstance(node, (exp.Neg, exp.Cast)) else node
        if not isinstance(inner, _LITERALS):
            raise AthenaQueryError(
                "INVALID_PARAMETER_USAGE",
                f"line 1:1: the parameter {value!r} is not a literal",
                1100,
            )
        out += [query[last : mark.start], node.sql(dialect="trino")]  # type: ignore[union-attr]
        last = mark.end + 1
    return "".join([*out, query[last:]])


def _result_configuration(workgroup: dict[str, Any], requested: dict[str, Any]) -> dict[str, Any]:
    """EnforceWorkGroupConfiguration: the workgroup's settings win, else the request's."""
    own = dict(workgroup.get("ResultConfiguration") or {})
    if workgroup.get("EnforceWorkGroupConfiguration", True):
        return {**requested, **{k: v for k, v in own.items() if v}}
    return {**own, **{k: v for k, v in requested.items() if v}}


def _glue_table(account: str, region: str, db: str, name: str) -> GlueTable | None:
    raw = moto.glue_table(account, region, db, name)
    if raw is None:
        return None
    sd = raw.get("StorageDescriptor") or {}
    return GlueTable(
        database=db,
        name=name,
        columns=tuple((c["Name"], c.get("Type", "string")) for c in sd.get("Columns") or []),
        partition_keys=tuple(
            (c["Name"], c.get("Type", "string")) for c in raw.get("PartitionKeys") or []
        ),
        location=str(sd.get("Location") or ""),
        parameters={str(k): str(v) for k, v in (raw.get("Parameters") or {}).items()},
    )


def _projected(params: dict[str, str]) -> bool:
    return params.get("projection.enabled", "").lower() == "true"


def _present(cur: Any, paths: list[Path]) -> set[str]:
    """Column names the files have (DuckDB reads only their footers)."""
    if not paths:
        return set()
    listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    cur.execute(f"DESCRIBE SELECT * FROM read_parquet([{listed}], union_by_name=true)")
    return {str(r[0]).lower() for r in cur.fetchall()}


def _in_projection(values: dict[str, str | int], params: dict[str, str]) -> bool:
    """Inside the projection's ranges (Athena never reads outside them); unknown: inside."""
    if not _projected(params):
        return True
    for name, value in values.items():
        kind = params.get(f"projection.{name}.type", "")
        bounds = params.get(f"projection.{name}.range", "").split(",")
        if len(bounds) != 2:
            continue
        if kind == "integer" and isinstance(value, int):
            lo, hi = (int(b) for b in bounds)
            if not lo <= value <= hi:
                return False
        elif kind == "date" and isinstance(value, str):
            lo_d, hi_d, day = _date_bound(bounds[0]), _date_bound(bounds[1]), _date_bound(value)
            if None not in (lo_d, hi_d, day) and not lo_d <= day <= hi_d:  # type: ignore[operator]
                return False
    return True


def _date_bound(text: str) -> dt.date | None:
    """``2026-01-01``, ``NOW``, ``NOW-365DAYS``, ``NOW+1DAYS`` (days only; else None)."""
    text = text.strip().upper()
    if m := re.fullmatch(r"NOW(?:([+-])(\d+)DAYS?)?", text):
        delta = dt.timedelta(days=int(m.group(2) or 0)) * (-1 if m.group(1) == "-" else 1)
        return (dt.datetime.now(dt.UTC) + delta).date()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None
