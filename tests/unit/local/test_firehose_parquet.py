"""Record format conversion: JSON records + Glue columns -> Parquet, as Firehose converts."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from iotpipe.local import parquet

COLUMNS = [
    ("time", "timestamp"),
    ("device_id", "string"),
    ("temperature", "double"),
    ("count", "int"),
    ("total", "bigint"),
]


def rec(**values: Any) -> bytes:
    return (json.dumps(values) + "\n").encode()


def read(data: bytes | None, tmp_path: Path) -> duckdb.DuckDBPyRelation:
    assert data is not None
    path = tmp_path / "o.parquet"
    path.write_bytes(data)
    return duckdb.sql(f"SELECT * FROM read_parquet('{path}')")


def test_columns_are_typed_as_the_glue_table_says(tmp_path):
    out = parquet.convert(
        [
            rec(
                time="2025-12-01 07:00:00.123",
                device_id="d1",
                temperature=21.5,
                count=3,
                total=2**40,
            )
        ],
        COLUMNS,
    )
    assert (out.rows, out.failures) == (1, [])
    rel = read(out.data, tmp_path)
    assert rel.columns == ["time", "device_id", "temperature", "count", "total"]
    assert [str(t) for t in rel.types] == ["TIMESTAMP", "VARCHAR", "DOUBLE", "INTEGER", "BIGINT"]
    ((time, device, temp, count, total),) = rel.fetchall()
    assert str(time) == "2025-12-01 07:00:00.123000"
    assert (device, temp, count, total) == ("d1", 21.5, 3, 2**40)


def test_the_object_is_snappy_parquet(tmp_path):
    out = parquet.convert([rec(device_id="d")], COLUMNS)
    assert out.data is not None and out.data[:4] == b"PAR1" and out.data[-4:] == b"PAR1"
    path = tmp_path / "o.parquet"
    path.write_bytes(out.data)
    codecs = duckdb.sql(f"SELECT DISTINCT compression FROM parquet_metadata('{path}')").fetchall()
    assert codecs == [("SNAPPY",)]


def test_keys_without_a_column_are_dropped_matching_ignores_case_missing_is_null(tmp_path):
    out = parquet.convert([rec(DEVICE_ID="d1", extra="x", nested={"a": 1})], COLUMNS)
    rel = read(out.data, tmp_path)
    assert "extra" not in rel.columns and "nested" not in rel.columns
    assert rel.fetchall() == [(None, "d1", None, None, None)]


def test_concatenated_objects_in_one_record_are_rows():
    out = parquet.convert([b'{"device_id":"a"}{"device_id":"b"}\n{"device_id":"c"}'], COLUMNS)
    assert (out.rows, out.failures) == (3, [])


def test_compatible_values_are_converted_like_the_serde():
    out = parquet.convert([rec(device_id=7, temperature="2.5", count="4", total=5.0)], COLUMNS)
    assert (out.rows, out.failures) == (1, [])


@pytest.mark.parametrize(
    "bad",
    [
        rec(time="2025-13-01 07:00:00"),  # the right shape, no such month
        rec(time="yesterday"),
        rec(time=1764572400000),  # epoch numbers are not the contract's form
        rec(temperature="warm"),
        rec(temperature=True),
        rec(count=2**31),  # out of int range
        rec(count=1.5),
        b"[1, 2]",  # not an object
        b'{"device_id": ',  # not JSON
        b"\xff\xfe",  # not UTF-8
        b"   ",  # nothing
    ],
)
def test_a_bad_record_is_a_failure_of_its_own_never_a_crashed_batch(bad, tmp_path):
    good = rec(time="2025-12-01 07:00:00.000", device_id="ok")
    out = parquet.convert([good, bad, good], COLUMNS)
    assert [i for i, _ in out.failures] == [1]
    assert out.rows == 2
    assert read(out.data, tmp_path).fetchall()[0][1] == "ok"


def test_only_bad_records_write_no_object():
    out = parquet.convert([b"[]", rec(count="x")], COLUMNS)
    assert out.data is None and out.rows == 0 and [i for i, _ in out.failures] == [0, 1]


def test_an_unknown_glue_type_is_a_schema_error():
    with pytest.raises(parquet.SchemaError, match="map<string,int>"):
        parquet.convert([rec(a=1)], [("a", "map<string,int>")])
    with pytest.raises(parquet.SchemaError):
        parquet.convert([rec(a=1)], [])


def test_the_format_conversion_failed_record_has_firehose_shape():
    table = parquet.catalog_table(
        {"DatabaseName": "db", "TableName": "telemetry", "VersionId": "LATEST"},
        "123456789012",
        "us-east-1",
    )
    line = json.loads(parquet.conversion_failed(b'{"x":1}', 5, "bad", "49", table, 9))
    assert line["ErrorCode"] == "DataFormatConversion.MalformedData"
    assert line["ErrorMessage"] == "bad" and line["attemptsMade"] == 1
    assert base64.b64decode(line["rawData"]) == b'{"x":1}' and line["sequenceNumber"] == "49"
    assert line["dataCatalogTable"] == {
        "catalogId": "123456789012",
        "databaseName": "db",
        "tableName": "telemetry",
        "region": "us-east-1",
        "versionId": "LATEST",
        "catalogArn": "arn:aws:glue:us-east-1:123456789012:catalog",
    }
