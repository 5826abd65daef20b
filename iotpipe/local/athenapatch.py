"""Replacements for moto's Athena query responses, declared against them.

moto runs no query: an execution reads SUCCEEDED at once with no rows (or canned rows
queued through its moto-api), the workgroup's output location is ignored, no header row,
no statistics. These make StartQueryExecution, GetQueryExecution, GetQueryResults and
StopQueryExecution answer for real, on `athenaplan.AthenaEngine` (DuckDB over the
Parquet objects in moto's S3, planned from moto's Glue). The engine is set by
`server.Emulator` (`use`); the other Athena calls (workgroups, named queries...) stay
moto's.
"""

from __future__ import annotations

import json
from typing import Any

from iotpipe.local import athenaresults, athenaworkgroups
from iotpipe.local import motointernals as moto
from iotpipe.local import motointernals_athena as moto_athena
from iotpipe.local.athenajobs import Execution
from iotpipe.local.athenaplan import AthenaEngine, RequestError
from iotpipe.local.patching import service

ATHENA = service("athena")
_Response = moto_athena.AthenaResponse
_ENGINE: list[AthenaEngine] = []


def use(engine: AthenaEngine | None) -> None:
    """The engine the patched calls use (None: none, e.g. after the emulator stopped)."""
    _ENGINE[:] = [] if engine is None else [engine]


def _engine() -> AthenaEngine:
    if not _ENGINE:
        raise _invalid("The embedded Athena is not running.")
    return _ENGINE[0]


def _invalid(message: str) -> moto_athena.JsonRESTError:
    err = moto_athena.JsonRESTError("InvalidRequestException", message)
    err.description = json.dumps({"__type": "InvalidRequestException", "Message": message})
    return err


def _execution(self: Any, body: dict[str, Any]) -> Execution:
    execution_id = str(body.get("QueryExecutionId") or "")
    ex = _engine().jobs.get(execution_id)
    if ex is None or (ex.account, ex.region) != (self.current_account, self.region):
        raise _invalid(f"QueryExecution {execution_id} was not found")
    return ex


@ATHENA.patch(_Response, "start_query_execution")
def start_query_execution(self: Any) -> str:
    body = moto.request_body(self)
    try:
        execution_id = _engine().start(
            self.current_account,
            self.region,
            str(body.get("QueryString") or ""),
            body.get("QueryExecutionContext"),
            body.get("ResultConfiguration"),
            body.get("WorkGroup"),
            body.get("ClientRequestToken"),
            body.get("ExecutionParameters"),
        )
    except RequestError as e:
        raise _invalid(str(e)) from None
    return json.dumps({"QueryExecutionId": execution_id})


@ATHENA.patch(_Response, "get_query_execution")
def get_query_execution(self: Any) -> str:
    ex = _execution(self, moto.request_body(self))
    return json.dumps({"QueryExecution": describe(ex)})


def describe(ex: Execution) -> dict[str, Any]:
    """A QueryExecution as GetQueryExecution returns it."""
    status: dict[str, Any] = {"State": ex.state, "SubmissionDateTime": ex.submitted}
    if ex.completed is not None:
        status["CompletionDateTime"] = ex.completed
    if ex.reason:
        status["StateChangeReason"] = ex.reason
    if ex.error:
        status["AthenaError"] = ex.error
    first = ex.query.lstrip().split(None, 1)[0].upper() if ex.query.strip() else ""
    ddl = first in ("CREATE", "DROP", "ALTER", "SHOW", "DESCRIBE", "MSCK")
    result_configuration = {**ex.result_configuration, "OutputLocation": ex.output}
    found: dict[str, Any] = {
        "QueryExecutionId": ex.id,
        "Query": ex.query,
        "StatementType": "DDL" if ddl else "DML",
        "ResultConfiguration": result_configuration,
        "ResultReuseConfiguration": {"ResultReuseByAgeConfiguration": {"Enabled": False}},
        "QueryExecutionContext": ex.context,
        "Status": status,
        "Statistics": ex.statistics(),
        "WorkGroup": ex.workgroup,
        "EngineVersion": {
            "SelectedEngineVersion": "AUTO",
            "EffectiveEngineVersion": "Athena engine version 3",
        },
    }
    if ex.parameters:
        found["ExecutionParameters"] = ex.parameters
    if first in ("SELECT", "WITH", "("):
        found["SubstatementType"] = "SELECT"
    return found


@ATHENA.patch(_Response, "get_query_results")
def get_query_results(self: Any) -> str:
    body = moto.request_body(self)
    ex = _execution(self, body)
    max_results = body.get("MaxResults", 1000)
    if not isinstance(max_results, int) or not 1 <= max_results <= 1000:
        raise _invalid("MaxResults must be between 1 and 1000.")
    if ex.state in ("QUEUED", "RUNNING"):
        raise _invalid(f"Query has not yet finished. Current state: {ex.state}")
    if ex.state != "SUCCEEDED":
        raise _invalid(
            f"Query did not finish successfully. Final query state: {ex.state}"
            + (f"\n{ex.reason}" if ex.reason else "")
        )
    rows = ex.rows
    if rows is None:
        raise _invalid(
            f"The results of query {ex.id} are no longer held by the embedded AWS: "
            f"read {ex.output} or run the query again."
        )
    try:
        offset = athenaresults.page_offset(ex.id, body.get("NextToken"))
    except ValueError as e:
        raise _invalid(str(e)) from None
    page, nxt = athenaresults.page(ex.names, rows, offset, max_results)
    result: dict[str, Any] = {
        "UpdateCount": 0,
        "ResultSet": {"Rows": page, "ResultSetMetadata": {"ColumnInfo": ex.columns}},
    }
    if nxt is not None:
        result["NextToken"] = athenaresults.page_token(ex.id, nxt)
    return json.dumps(result)


@ATHENA.patch(_Response, "stop_query_execution")
def stop_query_execution(self: Any) -> str:
    ex = _execution(self, moto.request_body(self))
    _engine().jobs.cancel(ex.id)
    return "{}"


@ATHENA.add(_Response, "update_work_group")
def update_work_group(self: Any) -> str:
    """UpdateWorkGroup (moto has none): see `athenaworkgroups`."""
    body = moto.request_body(self)
    name = str(body.get("WorkGroup") or "")
    group = moto_athena.workgroup(self.current_account, self.region, name)
    if group is None:
        raise _invalid(f"WorkGroup {name} is not found.")
    group.configuration = athenaworkgroups.updated(
        group.configuration, body.get("ConfigurationUpdates") or {}
    )
    if "Description" in body:
        group.description = body["Description"]
    if "State" in body:
        group.state = body["State"]
    return "{}"
