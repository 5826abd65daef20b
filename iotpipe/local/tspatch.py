"""Replacements for moto's Timestream write/query responses and backend, declared against them.

moto drops ``CommonAttributes``, answers every query with no rows, hands out an AWS
hostname from DescribeEndpoints (which breaks clients configured only through
``AWS_ENDPOINT_URL``: botocore still runs endpoint discovery for Timestream) and silently
replaces a database or table created twice, and has no CancelQuery. These functions fix
that on top of `tsstore` (DuckDB) and `tsquery`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from iotpipe.local import motointernals as moto
from iotpipe.local.durable import disk_full
from iotpipe.local.patching import service
from iotpipe.local.runtime import RUNTIME
from iotpipe.local.segments import DiskFull
from iotpipe.local.tsquery import QueryFailed, QueryValidation
from iotpipe.local.tsstore import RejectedRecords, WriteValidation

log = logging.getLogger("iotpipe.local")
TIMESTREAM = service("timestream")
_Response, _Backend = moto.TimestreamWriteResponse, moto.TimestreamWriteBackend


def _error(code: str, message: str, **extra: Any) -> moto.JsonRESTError:
    err = moto.JsonRESTError(code, message)
    err.description = json.dumps({"__type": code, "message": message, **extra})
    return err


@TIMESTREAM.patch(_Response, "write_records")
def write_records(self: Any) -> str:
    body = moto.request_body(self)  # once: moto's _get_param parses the body per call
    db, table = body.get("DatabaseName"), body.get("TableName")
    records = body.get("Records") or []
    common = body.get("CommonAttributes") or {}
    t = self.timestreamwrite_backend.describe_table(db, table)  # ResourceNotFound as on AWS
    if not isinstance(records, list) or not records or len(records) > 100:
        raise _error("ValidationException", "Records must contain between 1 and 100 records.")
    props = t.retention_properties or {}
    magnetic = bool((t.magnetic_store_write_properties or {}).get("EnableMagneticStoreWrites"))
    try:
        written = RUNTIME.store.write(
            self.current_account,
            self.region,
            db,
            table,
            records,
            common,
            retention_hours=props.get("MemoryStoreRetentionPeriodInHours"),
            magnetic_writes=magnetic,
        )
    except WriteValidation as e:
        raise _error("ValidationException", str(e)) from None
    except RejectedRecords as e:
        message = "One or more records have been rejected. See RejectedRecords for details."
        raise _error("RejectedRecordsException", message, RejectedRecords=e.rejected) from None
    except Exception as e:
        if not (isinstance(e, DiskFull) or disk_full(e)):
            raise
        raise moto.Unavailable(
            f"the embedded AWS's disk is full ({e}): free space there and retry; "
            "rows acknowledged before are kept"
        ) from None
    return json.dumps(
        {"RecordsIngested": {"Total": written, "MemoryStore": written, "MagneticStore": 0}}
    )


@TIMESTREAM.patch(_Response, "describe_endpoints")
def describe_endpoints(self: Any) -> str:
    """Point endpoint discovery back at this server, whatever address the client used."""
    host = self.headers.get("Host") or "127.0.0.1"
    return json.dumps({"Endpoints": [{"Address": f"http://{host}", "CachePeriodInMinutes": 1440}]})


@TIMESTREAM.patch(_Response, "query")
def query(self: Any) -> str:
    query_string = moto.request_param(self, "QueryString")
    if not query_string:
        raise _error("ValidationException", "QueryString is required.")
    try:
        result = RUNTIME.engine.query(
            self.current_account,
            self.region,
            query_string,
            next_token=moto.request_param(self, "NextToken"),
            max_rows=moto.request_param(self, "MaxRows"),
            client_token=moto.request_param(self, "ClientToken"),
        )
    except QueryValidation as e:
        raise _error("ValidationException", str(e)) from None
    except QueryFailed as e:
        raise _error(e.code, str(e)) from None
    except Exception as e:  # a query must never turn into an HTTP 500
        log.exception("Timestream query failed")
        raise _error("InternalServerException", f"The query failed: {type(e).__name__}") from None
    return json.dumps(result)


@TIMESTREAM.add(_Response, "cancel_query")
def cancel_query(self: Any) -> str:
    """CancelQuery (moto has none): stops a running query; a repeat says so."""
    query_id = moto.request_param(self, "QueryId")
    if not query_id:
        raise _error("ValidationException", "QueryId is required.")
    try:
        message = RUNTIME.engine.cancel(query_id)
    except QueryValidation as e:
        raise _error("ValidationException", str(e)) from None
    return json.dumps({"CancellationMessage": message} if message else {})


@TIMESTREAM.patch(_Backend, "create_database", pass_original=True)
def create_database(
    original: Callable[..., Any],
    self: Any,
    database_name: str,
    kms_key_id: str,
    tags: list[dict[str, str]],
) -> Any:
    if database_name in self.databases:
        raise _error("ConflictException", f"Database {database_name} already exists.")
    database = original(self, database_name, kms_key_id, tags)
    RUNTIME.store.create_database(self.account_id, self.region_name, database_name)
    return database


@TIMESTREAM.patch(_Backend, "create_table", pass_original=True)
def create_table(
    original: Callable[..., Any],
    self: Any,
    database_name: str,
    table_name: str,
    retention_properties: dict[str, int],
    tags: list[dict[str, str]],
    magnetic_store_write_properties: dict[str, Any],
    schema: dict[str, Any],
) -> Any:
    database = self.describe_database(database_name)
    if table_name in database.tables:
        raise _error("ConflictException", f"Table {table_name} already exists.")
    table = original(
        self,
        database_name,
        table_name,
        retention_properties,
        tags,
        magnetic_store_write_properties,
        schema,
    )
    RUNTIME.store.create_table(self.account_id, self.region_name, database_name, table_name)
    return table


@TIMESTREAM.patch(_Backend, "delete_table", pass_original=True)
def delete_table(
    original: Callable[..., None], self: Any, database_name: str, table_name: str
) -> None:
    database = self.describe_database(database_name)
    if table_name not in database.tables:
        raise moto.ResourceNotFound(f"The table {table_name} does not exist.")
    original(self, database_name, table_name)
    RUNTIME.store.drop_table(self.account_id, self.region_name, database_name, table_name)


@TIMESTREAM.patch(_Backend, "delete_database", pass_original=True)
def delete_database(original: Callable[..., None], self: Any, database_name: str) -> None:
    database = self.describe_database(database_name)  # ResourceNotFound instead of a 500
    if database.tables:
        raise _error(
            "ValidationException",
            f"Database {database_name} still has tables; delete them first.",
        )
    original(self, database_name)
    RUNTIME.store.drop_database(self.account_id, self.region_name, database_name)
