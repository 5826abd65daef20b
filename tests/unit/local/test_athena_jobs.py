"""Athena executions: states, time limit, cancellation, the scan cutoff, kept results;
and the pure result shapes (types, values, CSV, pages) and the S3-object file cache."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from iotpipe.local import athenaresults as res
from iotpipe.local.athenacache import ObjectCache, S3File
from iotpipe.local.athenajobs import Execution, Jobs, Limits, ScanLimitExceeded
from iotpipe.local.athenasql import AthenaQueryError


def execution(n: int = 0) -> Execution:
    return Execution(f"q{n}", "123456789012", "us-east-1", "SELECT 1", "db", "wg", "s3://b/q.csv")


def finished(ex: Execution) -> Execution:
    assert ex.done.wait(10), f"{ex.id} did not finish"
    return ex


@pytest.fixture
def jobs():
    seen: list[tuple[str, str]] = []
    j = Jobs(
        Limits(timeout_s=0.5, workers=1, results_kept=2),
        on_state=lambda e: seen.append((e.id, e.state)),
    )
    j.seen = seen  # type: ignore[attr-defined]
    yield j
    j.shutdown()


def test_a_query_goes_queued_running_succeeded_and_keeps_its_rows(jobs):
    started = threading.Event()
    go = threading.Event()

    def work(ex: Execution) -> None:
        started.set()
        go.wait(5)
        ex.rows, ex.scanned = [["1"]], 42

    ex = execution()
    jobs.submit(ex, work)
    assert started.wait(5) and ex.state == "RUNNING"
    go.set()
    assert finished(ex).state == "SUCCEEDED" and ex.rows == [["1"]] and ex.reason is None
    assert jobs.seen == [("q0", "RUNNING"), ("q0", "SUCCEEDED")]
    stats = ex.statistics()
    assert stats["DataScannedInBytes"] == 42
    assert stats["TotalExecutionTimeInMillis"] >= stats["EngineExecutionTimeInMillis"] >= 0


def test_a_failing_query_is_failed_with_athenas_reason_and_error(jobs):
    def work(ex: Execution) -> None:
        ex.scanned = 99
        raise AthenaQueryError("COLUMN_NOT_FOUND", "line 1:8: Column 'x' cannot be resolved", 1004)

    ex = finished_after(jobs, work)
    assert (
        ex.state == "FAILED"
        and ex.reason == "COLUMN_NOT_FOUND: line 1:8: Column 'x' cannot be resolved"
    )
    assert ex.error == {
        "ErrorCategory": 2,
        "ErrorType": 1004,
        "Retryable": False,
        "ErrorMessage": ex.reason,
    }
    assert ex.scanned == 0 and ex.rows is None


def finished_after(jobs: Jobs, work, n: int = 0) -> Execution:
    ex = execution(n)
    jobs.submit(ex, work)
    return finished(ex)


def test_an_unexpected_error_is_failed_not_a_dead_thread(jobs):
    def work(ex: Execution) -> None:
        raise KeyError("boom")

    ex = finished_after(jobs, work)
    assert ex.state == "FAILED" and ex.reason.startswith("GENERIC_INTERNAL_ERROR: KeyError")
    assert ex.error["ErrorCategory"] == 1


def test_the_time_limit_interrupts_duckdb_and_fails_the_query(jobs):
    db = duckdb.connect()

    def work(ex: Execution) -> None:
        cur = db.cursor()
        ex.cursor = cur
        ex.check()
        cur.execute(
            "SELECT sum(a.range * b.range * c.range) FROM range(4000) a, range(4000) b, range(4000) c"
        )

    ex = finished_after(jobs, work)
    assert ex.state == "FAILED" and ex.reason.startswith("Query timeout: ")
    assert "0.5 seconds" in ex.reason
    assert ex.statistics()["EngineExecutionTimeInMillis"] < 5000


def test_stop_cancels_a_running_query_and_a_queued_one_never_runs(jobs):
    ran: list[str] = []

    def slow(ex: Execution) -> None:
        ran.append(ex.id)
        while True:
            ex.check()  # raises once stopped
            threading.Event().wait(0.01)

    first, second = execution(1), execution(2)
    jobs.submit(first, slow)
    jobs.submit(second, slow)  # one worker: waits QUEUED
    assert second.state == "QUEUED"
    assert jobs.cancel("q2") and finished(second).state == "CANCELLED"
    assert jobs.cancel("q1") and finished(first).state == "CANCELLED"
    assert first.reason == "Query was cancelled by user"
    assert ran == ["q1"] and not jobs.cancel("nope")
    assert jobs.cancel("q1") and first.state == "CANCELLED"  # a finished one stays as it is


def test_the_bytes_scanned_cutoff_cancels_the_query_with_athenas_reason(jobs):
    def work(ex: Execution) -> None:
        raise ScanLimitExceeded("Bytes scanned limit was exceeded: ...")

    ex = finished_after(jobs, work)
    assert ex.state == "CANCELLED" and ex.reason.startswith("Bytes scanned limit was exceeded")


def test_only_the_latest_results_keep_their_rows(jobs):
    def work(ex: Execution) -> None:
        ex.rows = [[ex.id]]

    done = [finished_after(jobs, work, n) for n in range(3)]
    assert [e.rows for e in done] == [None, [["q1"]], [["q2"]]]
    assert jobs.get("q0").state == "SUCCEEDED"  # the status stays


def test_the_time_limit_comes_from_the_environment():
    assert Limits.from_env({}).timeout_s == 30.0
    assert Limits.from_env({"IOTPIPE_LOCAL_ATHENA_TIMEOUT_S": "2.5"}).timeout_s == 2.5
    with pytest.raises(ValueError, match="IOTPIPE_LOCAL_ATHENA_TIMEOUT_S"):
        Limits.from_env({"IOTPIPE_LOCAL_ATHENA_TIMEOUT_S": "soon"})


# -- result shapes ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("duck", "athena"),
    [
        ("VARCHAR", ("varchar", 2147483647, 0)),
        ("BIGINT", ("bigint", 19, 0)),
        ("INTEGER", ("integer", 10, 0)),
        ("DOUBLE", ("double", 17, 0)),
        ("BOOLEAN", ("boolean", 0, 0)),
        ("TIMESTAMP", ("timestamp", 3, 0)),
        ("TIMESTAMP_MS", ("timestamp", 3, 0)),
        ("TIMESTAMP WITH TIME ZONE", ("timestamp with time zone", 3, 0)),
        ("DATE", ("date", 0, 0)),
        ("DECIMAL(10,2)", ("decimal", 10, 2)),
        ("DOUBLE[]", ("array", 0, 0)),
    ],
)
def test_duckdb_types_are_named_as_athena_names_them(duck, athena):
    assert res.athena_type(duck) == athena


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        (True, "true"),
        (7, "7"),
        (2.5, "2.5"),
        (1e10, "1.0E10"),
        (1.5e-5, "1.5E-5"),
        (dt.datetime(2026, 12, 1, 7, 0, 0, 123456), "2026-12-01 07:00:00.123"),
        (dt.datetime(2026, 12, 1, 7, tzinfo=dt.UTC), "2026-12-01 07:00:00.000 UTC"),
        (dt.date(2026, 12, 1), "2026-12-01"),
        (Decimal("1.50"), "1.50"),
        ([1, None], "[1, null]"),
    ],
)
def test_values_are_text_as_athena_prints_them(value, text):
    assert res.text(value) == text


def test_pages_start_with_the_header_row_and_count_it():
    names, rows = ["a", "b"], [["1", None], ["2", "x"], ["3", "y"]]
    first, nxt = res.page(names, rows, 0, 2)
    assert first == [
        {"Data": [{"VarCharValue": "a"}, {"VarCharValue": "b"}]},
        {"Data": [{"VarCharValue": "1"}, {}]},
    ]
    assert nxt == 2
    second, nxt = res.page(names, rows, 2, 2)
    assert [r["Data"][0]["VarCharValue"] for r in second] == ["2", "3"] and nxt is None
    token = res.page_token("q1", 2)
    assert res.page_offset("q1", token) == 2 and res.page_offset("q1", None) == 0
    with pytest.raises(ValueError):
        res.page_offset("q2", token)


def test_the_csv_quotes_every_value_and_leaves_nulls_empty():
    body = res.csv_bytes(["a", "b"], [['say "hi"', None]])
    assert body == b'"a","b"\n"say ""hi""",\n'


def test_duckdb_errors_read_like_athenas_and_hide_the_cache():
    e = res.athena_error(
        "SELECT nope FROM t", 'Binder Error: Referenced column "nope" not found in FROM clause!'
    )
    assert str(e) == (
        "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved or requester is not "
        "authorized to access requested resources"
    )
    e = res.athena_error(
        "SELECT 1",
        'IO Error: No files found that match "/home/x/athena-cache/a"',
        ["/home/x/athena-cache"],
    )
    assert "/home/x" not in str(e)


# -- the file cache --------------------------------------------------------------------
def test_objects_are_copied_once_per_version_and_stale_copies_removed(tmp_path: Path):
    store = {("b", "data/dt=2026-12-01/hour=07/a.parquet"): (b"one", "e1")}
    fetched: list[str] = []

    def fetch(f: S3File) -> tuple[bytes, str] | None:
        fetched.append(f.key)
        return store.get((f.bucket, f.key))

    cache = ObjectCache(tmp_path / "cache", fetch)
    want = S3File(
        "b", "data/dt=2026-12-01/hour=07/a.parquet", 3, "e1", ("dt=2026-12-01", "hour=07")
    )
    [(_, path)] = cache.files([want])
    assert path.read_bytes() == b"one" and path.parent.name == "hour=07"
    assert path.parent.parent.name == "dt=2026-12-01"
    cache.files([want])
    assert len(fetched) == 1  # the second read is the cached file
    cache.hold([path])
    store[("b", want.key)] = (b"two", "e2")
    [(f2, path2)] = cache.files([S3File("b", want.key, 3, "e2", want.segments)])
    assert path2.read_bytes() == b"two" and f2.etag == "e2"
    assert path.exists()  # a running query still reads the old copy
    cache.release([path])
    assert not path.exists()
    cache.retain("b", "data/", set())  # the object is gone from S3
    assert not path2.exists() and cache.cached() == 0


# -- the second gate: DuckDB itself ----------------------------------------------------
@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM read_csv('{outside}')",
        "SELECT * FROM read_text('{outside}')",
        "COPY (SELECT 1) TO '{outside}.copy'",
        "CREATE TABLE t AS SELECT 1",
        "ATTACH '{outside}.db' AS x",
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
    ],
)
def test_the_sandbox_reaches_only_the_cache_even_past_the_gate(tmp_path: Path, statement):
    from iotpipe.local.athenaplan import sandboxed

    cache = tmp_path / "cache"
    cache.mkdir()
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    inside = cache / "ok.csv"
    inside.write_text("a\n1\n")
    cur = sandboxed(cache).cursor()
    cur.execute("BEGIN TRANSACTION READ ONLY")
    with pytest.raises(duckdb.Error):
        cur.execute(statement.format(outside=outside, cache=cache))
    cur.execute("ROLLBACK")
    assert cur.execute(f"SELECT count(*) FROM read_csv('{inside}')").fetchone() == (1,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "secret.csv"]


@pytest.mark.parametrize(
    "statement", ["COPY (SELECT 1) TO '{cache}/w.csv'", "ATTACH '{cache}/x.db'"]
)
def test_duckdb_runs_a_select_only_even_inside_the_cache(tmp_path: Path, statement):
    """DuckDB may write inside the cache directory: its own parser refuses all but SELECT."""
    from iotpipe.local.athenaplan import AthenaEngine

    engine = AthenaEngine(tmp_path, Limits(workers=1))
    try:
        cur = engine._db.cursor()
        with pytest.raises(AthenaQueryError, match="NOT_SUPPORTED"):
            engine._run(execution(), None, cur, statement.format(cache=engine.cache.root))
        assert list(engine.cache.root.iterdir()) == []
    finally:
        engine.shutdown()
