"""The Glue database and table over the lake's Parquet, one kind: a table cannot outlive
its database (DeleteDatabase takes its tables with it).

The table is *external* and *projected*: its data is the bucket's ``data/`` prefix, which
Firehose fills and the lifecycle rule expires, and Athena computes partitions from the
table's parameters (:func:`iotpipe.lakeschema.projection`). Nothing is registered per
hour, so nothing here runs after ``up``.

A changed ``sensors`` list (or a device with a new attribute) changes the columns: that is
an UpdateTable, which Glue keeps as a new table version. It is never a replace: dropping
the table would not lose the Parquet files, but Firehose's format conversion reads the
schema from it (``VersionId: LATEST``) and would fail every record in between.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from iotpipe import lakeschema
from iotpipe.aws import Gateway, error_code
from iotpipe.resources.base import UP, Changes, Context, Discovery, Props, Resource
from iotpipe.resources.common import deleted, get_or_none
from iotpipe.resources.lakeroles import lake_enabled
from iotpipe.verdict import Check

# Glue's NotFound (not in iotpipe.aws's list: no other kind uses Glue).
GLUE_NOT_FOUND = "EntityNotFoundException"
EXISTS = "AlreadyExistsException"
TABLE_TYPE = "EXTERNAL_TABLE"
# Parameters that are ours to compare: what desired() sets, and any projection key (a
# leftover one can break Athena's projection); other keys are Glue's or another tool's.
PROJECTION_KEY = "projection."


def list_databases(gateway: Gateway, prefix: str) -> Iterator[str]:
    for page in gateway.client("glue").get_paginator("get_databases").paginate():
        yield from (d["Name"] for d in page.get("DatabaseList", []) if d["Name"].startswith(prefix))


def _column_pairs(columns: list[dict[str, Any]]) -> list[list[str]]:
    return [[c["Name"], c["Type"]] for c in columns]


def table_health(ctx: Context) -> Check:
    names = ctx.names
    table = ctx.client("glue").get_table(DatabaseName=names.lake_database, Name=names.lake_table)
    params = table["Table"].get("Parameters", {})
    projected = params.get("projection.enabled") == "true"
    detail = (
        "partition projection enabled"
        if projected
        else "partition projection is OFF: Athena would see no partitions"
    )
    return Check("Glue table uses partition projection", projected, detail, "" if projected else UP)


class LakeCatalog(Resource):
    """Glue database ``<name>_lake_<suffix>`` and its table ``telemetry``."""

    key = "lake_catalog"
    label = "Glue database and table"
    depends_on = ("lake_bucket",)
    shown_on_create = ("columns", "location")
    discovery = (Discovery(lambda n: n.lake_database, list_databases),)
    health = (table_health,)
    fixes = {
        "columns": (
            "The Glue table's columns differ from the config's sensors and attributes: run "
            "'iotpipe up' to update the schema in place (a new table version; data stays)."
        ),
    }

    @property
    def name(self) -> str:
        return f"{self.ctx.names.lake_database}/{self.ctx.names.lake_table}"

    def enabled(self) -> bool:
        return lake_enabled(self.ctx)

    @property
    def _glue(self) -> Any:
        return self.ctx.client("glue")

    @property
    def _database_arn(self) -> str:
        return self.ctx.names.glue_arn(f"database/{self.ctx.names.lake_database}")

    def desired(self) -> Props:
        bucket = self.ctx.names.bucket
        return {
            "table_type": TABLE_TYPE,
            "columns": [[n, t] for n, t in lakeschema.columns(self.ctx.config)],
            "partition_keys": [[n, t] for n, t in lakeschema.PARTITION_KEYS],
            "location": lakeschema.data_location(bucket),
            "input_format": lakeschema.PARQUET_INPUT,
            "output_format": lakeschema.PARQUET_OUTPUT,
            "serde": lakeschema.PARQUET_SERDE,
            "parameters": {
                "classification": "parquet",
                "EXTERNAL": "TRUE",
                **lakeschema.projection(bucket, self.ctx.config.lake.retention_days),
            },
            "tags": dict(self.ctx.tags),
        }

    def _table_input(self) -> dict[str, Any]:
        want = self.desired()
        return {
            "Name": self.ctx.names.lake_table,
            "TableType": want["table_type"],
            "PartitionKeys": [{"Name": n, "Type": t} for n, t in want["partition_keys"]],
            "StorageDescriptor": {
                "Columns": [{"Name": n, "Type": t} for n, t in want["columns"]],
                "Location": want["location"],
                "InputFormat": want["input_format"],
                "OutputFormat": want["output_format"],
                "SerdeInfo": {
                    "SerializationLibrary": want["serde"],
                    "Parameters": {"serialization.format": "1"},
                },
            },
            "Parameters": want["parameters"],
        }

    def describe(self) -> Props | None:
        names = self.ctx.names
        if (
            get_or_none(lambda: self._glue.get_database(Name=names.lake_database), GLUE_NOT_FOUND)
            is None
        ):
            return None
        found = get_or_none(
            lambda: self._glue.get_table(DatabaseName=names.lake_database, Name=names.lake_table),
            GLUE_NOT_FOUND,
        )
        if found is None:
            return None  # a half-finished `up`: create() tolerates the existing database
        table = found["Table"]
        sd = table.get("StorageDescriptor", {})
        want = set(self.desired()["parameters"])
        params = {
            k: v
            for k, v in table.get("Parameters", {}).items()
            if k in want or k.startswith(PROJECTION_KEY)
        }
        tags = self._glue.get_tags(ResourceArn=self._database_arn).get("Tags", {})
        return {
            "table_type": table.get("TableType"),
            "columns": _column_pairs(sd.get("Columns", [])),
            "partition_keys": _column_pairs(table.get("PartitionKeys", [])),
            "location": sd.get("Location"),
            "input_format": sd.get("InputFormat"),
            "output_format": sd.get("OutputFormat"),
            "serde": sd.get("SerdeInfo", {}).get("SerializationLibrary"),
            "parameters": params,
            "tags": dict(tags),
            "version": table.get("VersionId"),
        }

    def create(self) -> dict[str, Any]:
        names = self.ctx.names
        try:
            self._glue.create_database(
                DatabaseInput={
                    "Name": names.lake_database,
                    "Description": f"iotpipe lake of {names.deployment}",
                },
                Tags=dict(self.ctx.tags),
            )
        except ClientError as exc:
            if error_code(exc) != EXISTS:  # a repeated `up`
                raise
            self._retag(self.desired()["tags"])
        try:
            self._glue.create_table(
                DatabaseName=names.lake_database, TableInput=self._table_input()
            )
        except ClientError as exc:
            if error_code(exc) != EXISTS:
                raise
            self._update_table()  # a repeated `up` after the table was made: reconcile
        return self.outputs()

    def _update_table(self) -> None:
        """The whole TableInput: UpdateTable replaces the table's definition."""
        self._glue.update_table(
            DatabaseName=self.ctx.names.lake_database, TableInput=self._table_input()
        )

    def _retag(self, want: dict[str, str]) -> None:
        have = self._glue.get_tags(ResourceArn=self._database_arn).get("Tags", {})
        gone = [k for k in have if k not in want]
        if gone:
            self._glue.untag_resource(ResourceArn=self._database_arn, TagsToRemove=gone)
        if any(have.get(k) != v for k, v in want.items()):
            self._glue.tag_resource(ResourceArn=self._database_arn, TagsToAdd=want)

    def update(self, current: Props, changes: Changes) -> dict[str, Any]:
        if set(changes) - {"tags"}:
            self._update_table()
        if "tags" in changes:
            self._retag(self.desired()["tags"])
        return self.outputs()

    def delete(self) -> bool:
        names = self.ctx.names
        deleted(
            lambda: self._glue.delete_table(
                DatabaseName=names.lake_database, Name=names.lake_table
            ),
            GLUE_NOT_FOUND,
        )
        return deleted(lambda: self._glue.delete_database(Name=names.lake_database), GLUE_NOT_FOUND)

    def outputs(self, current: Props | None = None) -> dict[str, Any]:
        names = self.ctx.names
        return {
            "database": names.lake_database,
            "table": names.lake_table,
            "table_arn": names.glue_arn(f"table/{names.lake_database}/{names.lake_table}"),
        }
