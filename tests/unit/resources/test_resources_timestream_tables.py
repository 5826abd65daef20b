"""The deployment's Timestream database holds every table it ever had: `down` deletes them all.

A changed ``timestream.table`` leaves the old table in the database (`up` keeps it: it holds
the data). AWS refuses DeleteDatabase while a table is left, so ``delete()`` lists every
table (all pages) and deletes each first; ``strays()`` names the ones the config no longer
names, for `plan`, `up` and `down`'s confirmation.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from resource_helpers import FakeClock, Stubbed, add_error, make_ctx

from iotpipe.config import Config, TimestreamConfig
from iotpipe.resources.base import Context
from iotpipe.resources.timeseries import Timestream


def _ts(s: Stubbed) -> Any:
    # An explicit endpoint turns off Timestream's endpoint discovery (no DescribeEndpoints).
    return s.stub(
        "timestream-write", endpoint_url="https://ingest.timestream.us-east-1.amazonaws.com"
    )


def with_table(ctx: Context, table: str) -> Context:
    cfg = dataclasses.replace(ctx.config, timestream=TimestreamConfig(table=table))
    return make_ctx(cfg, gateway=ctx.gateway)


def test_delete_removes_every_table_over_all_pages_then_the_database(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    ctx = make_ctx(Config(), gateway=stubbed.gateway, clock=clock)
    db = ctx.names.database
    ts = _ts(stubbed)
    ts.add_response("describe_database", {"Database": {"DatabaseName": db}})
    ts.add_response(
        "list_tables",
        {"Tables": [{"TableName": "sensor-data"}], "NextToken": "page2"},
        {"DatabaseName": db},
    )
    ts.add_response(
        "list_tables",
        {"Tables": [{"TableName": "old-data"}, {"TableName": "older"}]},
        {"DatabaseName": db, "NextToken": "page2"},
    )
    ts.add_response("delete_table", {}, {"DatabaseName": db, "TableName": "sensor-data"})
    ts.add_response("delete_table", {}, {"DatabaseName": db, "TableName": "old-data"})
    add_error(ts, "delete_table", "ResourceNotFoundException")  # gone meanwhile: done
    ts.add_response("delete_database", {}, {"DatabaseName": db})
    assert Timestream(ctx).delete() is True


def test_strays_are_the_tables_the_config_no_longer_names(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    ctx = make_ctx(Config(), gateway=stubbed.gateway, clock=clock)
    ts = _ts(stubbed)
    ts.add_response(
        "list_tables", {"Tables": [{"TableName": "sensor-data"}, {"TableName": "old-data"}]}
    )
    add_error(ts, "list_tables", "ResourceNotFoundException")
    assert Timestream(ctx).strays() == ["table old-data"]
    assert Timestream(ctx).strays() == []  # no database: nothing


@pytest.mark.usefixtures("moto")
def test_renamed_table_is_a_stray_until_down_deletes_both() -> None:
    ctx = make_ctx()
    Timestream(ctx).create()
    renamed = Timestream(with_table(ctx, "other-data"))
    assert renamed.describe() is None  # the new table: `up` creates it
    assert renamed.strays() == ["table sensor-data"]
    assert Timestream(ctx).strays() == []
    # As `up` makes it on AWS (moto's CreateDatabase would empty the existing database).
    renamed.ctx.client("timestream-write").create_table(**renamed._table_params())
    assert sorted(renamed.tables() or []) == ["other-data", "sensor-data"]
    assert renamed.delete() is True
    assert renamed.tables() is None and renamed.delete() is False
