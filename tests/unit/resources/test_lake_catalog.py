"""The Glue catalog and the Athena workgroup against moto in-process.

The table must carry exactly the columns, partitions, Parquet classes and projection the
rest of the lake agrees on (lakeschema), change its schema in place when the sensors
change, and both kinds must be found again without state.
"""

from __future__ import annotations

from typing import Any

import pytest
from resource_helpers import SUFFIX, make_ctx

from iotpipe import lakeschema
from iotpipe.config import DEFAULT_SENSORS, Config, LakeConfig, SensorRange
from iotpipe.discover import find_suffixes
from iotpipe.resources.base import Context, diff
from iotpipe.resources.catalog import LakeCatalog, table_health
from iotpipe.resources.workgroup import Workgroup, workgroup_health

pytestmark = pytest.mark.usefixtures("moto")


def lake_config(**overrides: Any) -> Config:
    return Config(lake=LakeConfig(enabled=True, retention_days=30), **overrides)


def glue_table(ctx: Context) -> dict[str, Any]:
    names = ctx.names
    found = ctx.client("glue").get_table(DatabaseName=names.lake_database, Name=names.lake_table)
    return dict(found["Table"])


# --- Glue ----------------------------------------------------------------------------------
def test_catalog_creates_the_projected_parquet_table_over_the_data_prefix() -> None:
    ctx = make_ctx(lake_config())
    catalog = LakeCatalog(ctx)
    assert catalog.name == f"iot_telemetry_lake_{SUFFIX}/telemetry"
    assert catalog.describe() is None
    out = catalog.create()
    assert out == catalog.outputs()
    assert out["table_arn"].endswith(f":table/iot_telemetry_lake_{SUFFIX}/telemetry")

    table = glue_table(ctx)
    sd = table["StorageDescriptor"]
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == lakeschema.columns(ctx.config)
    assert [(c["Name"], c["Type"]) for c in table["PartitionKeys"]] == [
        ("dt", "string"),
        ("hour", "int"),
    ]
    assert sd["Location"] == f"s3://{ctx.names.bucket}/data/"
    assert sd["InputFormat"] == lakeschema.PARQUET_INPUT
    assert sd["SerdeInfo"]["SerializationLibrary"] == lakeschema.PARQUET_SERDE
    params = table["Parameters"]
    assert params["classification"] == "parquet"
    assert params["projection.enabled"] == "true"
    assert params["projection.dt.range"] == "NOW-30DAYS,NOW+1DAYS"
    template = f"s3://{ctx.names.bucket}/data/dt=${{dt}}/hour=${{hour}}/"
    assert params["storage.location.template"] == template

    arn = ctx.names.glue_arn(f"database/{ctx.names.lake_database}")
    assert ctx.client("glue").get_tags(ResourceArn=arn)["Tags"] == ctx.tags
    assert diff(catalog.desired(), catalog.describe() or {}) == {}
    assert table_health(ctx).ok is True


def test_a_changed_sensor_list_updates_the_schema_in_place_as_a_new_version() -> None:
    ctx = make_ctx(lake_config())
    LakeCatalog(ctx).create()
    before = glue_table(ctx)
    sensors = {**DEFAULT_SENSORS, "co2": SensorRange(0, 5000)}
    changed = LakeCatalog(make_ctx(lake_config(sensors=sensors), gateway=ctx.gateway))
    current = changed.describe()
    assert current is not None
    changes = diff(changed.desired(), current)
    assert set(changes) == {"columns"}
    assert changes["columns"][1][-1] == ["co2", "double"]
    assert changed.recreates(changes) is False  # the data and Firehose's schema stay
    changed.update(current, changes)

    after = glue_table(ctx)
    assert after["CreateTime"] == before["CreateTime"]  # the same table, not a new one
    assert ["co2", "double"] in [
        [c["Name"], c["Type"]] for c in after["StorageDescriptor"]["Columns"]
    ]
    names = ctx.names
    versions = ctx.client("glue").get_table_versions(
        DatabaseName=names.lake_database, TableName=names.lake_table
    )["TableVersions"]
    assert len(versions) == 2
    assert diff(changed.desired(), changed.describe() or {}) == {}


def test_a_turned_off_projection_is_a_parameter_diff_and_a_failed_health_check() -> None:
    ctx = make_ctx(lake_config())
    catalog = LakeCatalog(ctx)
    catalog.create()
    table = glue_table(ctx)
    params = {**table["Parameters"], "projection.enabled": "false", "by.another.tool": "x"}
    keep = ("Name", "TableType", "StorageDescriptor", "PartitionKeys")
    table_input = {k: table[k] for k in keep} | {"Parameters": params}
    ctx.client("glue").update_table(DatabaseName=ctx.names.lake_database, TableInput=table_input)
    changes = diff(catalog.desired(), catalog.describe() or {})
    assert set(changes) == {"parameters"}
    assert "by.another.tool" not in changes["parameters"][0]  # not ours to compare
    assert table_health(ctx).ok is False
    catalog.update(catalog.describe() or {}, changes)
    assert table_health(ctx).ok is True


def test_catalog_second_create_reconciles_and_delete_takes_table_then_database() -> None:
    ctx = make_ctx(lake_config())
    catalog = LakeCatalog(ctx)
    catalog.create()
    sensors = {"temperature": SensorRange(-40, 85)}
    again = LakeCatalog(make_ctx(lake_config(sensors=sensors), gateway=ctx.gateway))
    again.create()  # both exist already: tolerated, and the table is brought up to date
    assert diff(again.desired(), again.describe() or {}) == {}

    assert again.delete() is True
    assert again.describe() is None
    assert ctx.client("glue").get_databases()["DatabaseList"] == []
    assert again.delete() is False  # EntityNotFoundException = done


def test_a_database_without_its_table_reads_as_missing_and_create_finishes_it() -> None:
    ctx = make_ctx(lake_config())
    ctx.client("glue").create_database(DatabaseInput={"Name": ctx.names.lake_database})
    catalog = LakeCatalog(ctx)
    assert catalog.describe() is None  # a half-finished `up`
    catalog.create()
    assert diff(catalog.desired(), catalog.describe() or {}) == {}


# --- Athena --------------------------------------------------------------------------------
def test_workgroup_is_created_enforced_with_its_results_location_and_cutoff() -> None:
    ctx = make_ctx(lake_config(tags={"team": "iot"}))
    wg = Workgroup(ctx)
    assert wg.name == f"iot-telemetry-athena-{SUFFIX}"
    assert wg.describe() is None
    assert wg.create() == wg.outputs()
    config = ctx.client("athena").get_work_group(WorkGroup=wg.name)["WorkGroup"]["Configuration"]
    assert config["ResultConfiguration"] == {
        "OutputLocation": f"s3://{ctx.names.bucket}/athena-results/",
        "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
    }
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == 10 * 1024**3
    assert config["PublishCloudWatchMetricsEnabled"] is True
    assert config["EngineVersion"]["SelectedEngineVersion"] == "Athena engine version 3"
    current = wg.describe() or {}
    assert current["tags"] == {"team": "iot", "iotpipe:deployment": f"iot-telemetry-{SUFFIX}"}
    assert diff(wg.desired(), current) == {}
    assert workgroup_health(ctx).ok is True

    wg.create()  # a repeated `up`: "already exists", nothing differs, nothing to update
    assert diff(wg.desired(), wg.describe() or {}) == {}


def test_workgroup_tags_update_on_moto_and_delete_is_idempotent() -> None:
    ctx = make_ctx(lake_config(tags={"team": "iot", "old": "1"}))
    Workgroup(ctx).create()
    changed = Workgroup(make_ctx(lake_config(tags={"team": "lake"}), gateway=ctx.gateway))
    current = changed.describe()
    assert current is not None
    changes = diff(changed.desired(), current)
    assert set(changes) == {"tags"}  # moto has no UpdateWorkGroup: see the Stubber tests
    changed.update(current, changes)
    assert diff(changed.desired(), changed.describe() or {}) == {}

    assert changed.delete() is True
    assert changed.describe() is None
    assert changed.delete() is False
    assert workgroup_health(ctx).ok is False


def test_a_changed_scan_limit_is_a_field_diff() -> None:
    ctx = make_ctx(lake_config())
    Workgroup(ctx).create()
    cfg = Config(lake=LakeConfig(enabled=True, scan_limit_gb=2))
    changed = Workgroup(make_ctx(cfg, gateway=ctx.gateway))
    changes = diff(changed.desired(), changed.describe() or {})
    assert changes == {"bytes_scanned_cutoff": (10 * 1024**3, 2 * 1024**3)}


# --- discovery -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", [LakeCatalog, Workgroup])
def test_discovery_finds_the_kind_alone(kind: type[LakeCatalog | Workgroup]) -> None:
    ctx = make_ctx(lake_config())
    kind(ctx).create()
    ident = ctx.gateway.identity()
    assert find_suffixes(ctx.config, ctx.gateway, ident, kinds=[kind]) == [SUFFIX]


@pytest.mark.parametrize("kind", [LakeCatalog, Workgroup])
def test_enabled_follows_the_lake_switch(kind: type[LakeCatalog | Workgroup]) -> None:
    assert kind(make_ctx(lake_config())).enabled() is True
    assert kind(make_ctx(Config())).enabled() is False
    assert kind.depends_on == ("lake_bucket",)
