"""moto's internals the embedded Athena reads: review this file on a moto upgrade.

Athena's executions and workgroups, Glue's databases and tables (S3's objects are read
through `motointernals_lake`, the lake's other reader): none of it is a public API of
moto, so every read is here, behind a function that says what it reads (the rule of
`motointernals`). Values handed back are plain Python (copies), so callers never hold
moto's objects while moto's request threads change them.
"""

from __future__ import annotations

import copy
from typing import Any

from iotpipe.local.patching import moto_imports

with moto_imports():
    from moto.athena.models import AthenaBackend, Execution, athena_backends
    from moto.athena.responses import AthenaResponse
    from moto.core.exceptions import JsonRESTError
    from moto.glue.models import glue_backends

__all__ = ["AthenaBackend", "AthenaResponse", "JsonRESTError"]


# -- Athena ----------------------------------------------------------------------------
def athena_backend(account: str, region: str) -> AthenaBackend:
    return athena_backends[account][region]


def workgroup_configuration(account: str, region: str, name: str) -> dict[str, Any] | None:
    """A copy of the workgroup's Configuration, None if there is no such workgroup."""
    group = athena_backend(account, region).work_groups.get(name)
    return None if group is None else copy.deepcopy(group.configuration or {})


def new_execution(
    account: str,
    region: str,
    query: str,
    context: dict[str, Any],
    result_configuration: dict[str, Any],
    workgroup: str,
) -> str:
    """Register an execution in moto (ListQueryExecutions sees it) and return its id.

    moto's Execution appends ``<id>.csv`` to the OutputLocation it is given; moto's
    ``start_query_execution`` is not used: it also parses CREATE/DROP DATABASE.
    """
    backend = athena_backend(account, region)
    execution = Execution(
        query=query,
        # moto annotates context as str; its responder passes the request's dict.
        context=context,  # type: ignore[arg-type]
        config=result_configuration,
        workgroup=backend.work_groups.get(workgroup),
        execution_parameters=None,
    )
    execution.status = "QUEUED"
    backend.executions[execution.id] = execution
    return str(execution.id)


def execution_output(account: str, region: str, execution_id: str) -> str | None:
    """The execution's ``s3://.../<id>.csv`` (moto appended the id), None if unknown."""
    execution = athena_backend(account, region).executions.get(execution_id)
    if execution is None:
        return None
    return str((execution.config or {}).get("OutputLocation") or "") or None


def set_execution_state(account: str, region: str, execution_id: str, state: str) -> None:
    execution = athena_backend(account, region).executions.get(execution_id)
    if execution is not None:
        execution.status = state


# -- Glue ------------------------------------------------------------------------------
def _glue_databases(account: str, region: str) -> dict[str, Any]:
    found: dict[str, Any] = glue_backends[account][region].databases
    return found


def _named(items: dict[str, Any], name: str) -> Any:
    """Glue names are case-insensitive (Glue lower-cases them; moto keeps them as given)."""
    if name in items:
        return items[name]
    return next((v for k, v in list(items.items()) if k.lower() == name.lower()), None)


def glue_database_exists(account: str, region: str, database: str) -> bool:
    return _named(_glue_databases(account, region), database) is not None


def glue_table(account: str, region: str, database: str, name: str) -> dict[str, Any] | None:
    """A copy of the table's latest TableInput, None if the table (or database) is missing."""
    db = _named(_glue_databases(account, region), database)
    table = None if db is None else _named(db.tables, name)
    if table is None:
        return None
    latest = table.get_version(str(table._current_version))
    return copy.deepcopy(dict(latest))


def workgroup(account: str, region: str, name: str) -> Any:
    """moto's WorkGroup (``configuration`` and ``description`` are plain attributes)."""
    return athena_backend(account, region).work_groups.get(name)
