"""The Timestream database and table, one resource because a table cannot outlive its db.

Timestream for LiveAnalytics is closed to new customers since 2025-06-20: a new account is
refused with an access error on the first call. That is turned into a
:class:`ServiceUnavailableError` with a sentence that tells the user what to do, instead of
a stack trace that looks like an IAM mistake.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from iotpipe.aws import error_code
from iotpipe.resources.base import Props, Resource
from iotpipe.resources.common import deleted, get_or_none, tag_list
from iotpipe.resources.errors import TIMESTREAM_CLOSED, ServiceUnavailableError

# What an account without access to Timestream for LiveAnalytics gets back.
CLOSED_CODES = frozenset({"AccessDeniedException", "SubscriptionRequiredException"})


@contextmanager
def closed_service_guard() -> Iterator[None]:
    """Re-raise the 'no access to this service' family as ServiceUnavailableError."""
    try:
        yield
    except ClientError as exc:
        if error_code(exc) in CLOSED_CODES:
            raise ServiceUnavailableError(TIMESTREAM_CLOSED, cause=exc) from exc
        raise


class Timestream(Resource):
    """Database ``<name>-db-<suffix>`` and its table (``timestream.table`` in the config)."""

    key = "timestream"
    label = "Timestream database and table"

    @property
    def name(self) -> str:
        return f"{self.ctx.names.database}/{self.ctx.names.table}"

    @property
    def _ts(self) -> Any:
        return self.ctx.client("timestream-write")

    def desired(self) -> Props:
        cfg = self.ctx.config.timestream
        return {
            "memory_retention_hours": cfg.memory_retention_hours,
            "magnetic_retention_days": cfg.magnetic_retention_days,
            "magnetic_writes": cfg.magnetic_writes,
        }

    def _table_params(self) -> dict[str, Any]:
        want = self.desired()
        return {
            "DatabaseName": self.ctx.names.database,
            "TableName": self.ctx.names.table,
            "RetentionProperties": {
                "MemoryStoreRetentionPeriodInHours": want["memory_retention_hours"],
                "MagneticStoreRetentionPeriodInDays": want["magnetic_retention_days"],
            },
            "MagneticStoreWriteProperties": {"EnableMagneticStoreWrites": want["magnetic_writes"]},
        }

    def describe(self) -> Props | None:
        names = self.ctx.names
        with closed_service_guard():
            if get_or_none(lambda: self._ts.describe_database(DatabaseName=names.database)) is None:
                return None
            found = get_or_none(
                lambda: self._ts.describe_table(DatabaseName=names.database, TableName=names.table)
            )
        if found is None:
            return None  # a half-finished `up`: create() tolerates the existing database
        table = found["Table"]
        retention = table.get("RetentionProperties", {})
        magnetic = table.get("MagneticStoreWriteProperties", {})
        return {
            "memory_retention_hours": retention.get("MemoryStoreRetentionPeriodInHours"),
            "magnetic_retention_days": retention.get("MagneticStoreRetentionPeriodInDays"),
            "magnetic_writes": bool(magnetic.get("EnableMagneticStoreWrites", False)),
        }

    def create(self) -> dict[str, Any]:
        tags = tag_list(self.ctx.tags)
        with closed_service_guard():
            try:
                self._ts.create_database(DatabaseName=self.ctx.names.database, Tags=tags)
            except ClientError as exc:
                if error_code(exc) != "ConflictException":  # exists: a repeated `up`
                    raise
            self._ts.create_table(**self._table_params(), Tags=tags)
        return self.outputs()

    def update(self, current: Props, changes: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
        # Both properties are sent every time: moto (and a partial update) would otherwise
        # reset the retention it was not given.
        with closed_service_guard():
            self._ts.update_table(**self._table_params())
        return self.outputs()

    def delete(self) -> bool:
        names = self.ctx.names
        with closed_service_guard():
            # Asked first: moto's DeleteDatabase on a missing database is a server error.
            if get_or_none(lambda: self._ts.describe_database(DatabaseName=names.database)) is None:
                return False
            deleted(
                lambda: self._ts.delete_table(DatabaseName=names.database, TableName=names.table)
            )
            return deleted(lambda: self._ts.delete_database(DatabaseName=names.database))

    def outputs(self) -> dict[str, Any]:
        names = self.ctx.names
        return {"database": names.database, "table": names.table, "table_arn": names.table_arn}
