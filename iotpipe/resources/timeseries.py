"""The Timestream database and table, one resource because a table cannot outlive its db.

Timestream for LiveAnalytics is closed to new customers since 2025-06-20: a new account is
refused with an access error on the first call. That is turned into a
:class:`ServiceUnavailableError` with a sentence that tells the user what to do, instead of
a stack trace that looks like an IAM mistake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from iotpipe import policies
from iotpipe.aws import Gateway, error_code, tag_list
from iotpipe.resources.base import UP, Context, Discovery, Grant, Props, Resource
from iotpipe.resources.common import deleted, get_or_none
from iotpipe.resources.errors import TIMESTREAM_CLOSED, ServiceUnavailableError
from iotpipe.verdict import Check

T = TypeVar("T")
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


def list_databases(gateway: Gateway, prefix: str) -> Iterator[str]:
    """Every database name (no boto3 paginator for this one); none when Timestream is
    closed to this account, since nothing of ours can be there then."""
    ts = gateway.client("timestream-write")
    token: dict[str, str] = {}
    try:
        while True:
            page = ts.list_databases(**token)
            yield from (d["DatabaseName"] for d in page["Databases"])
            if not page.get("NextToken"):
                return
            token = {"NextToken": page["NextToken"]}
    except ClientError:
        return


def table_health(ctx: Context) -> Check:
    table = ctx.client("timestream-write").describe_table(
        DatabaseName=ctx.names.database, TableName=ctx.names.table
    )["Table"]
    status = table.get("TableStatus", "?")
    ret = table.get("RetentionProperties", {})
    detail = (
        f"{status}, memory {ret.get('MemoryStoreRetentionPeriodInHours')} h, "
        f"magnetic {ret.get('MagneticStoreRetentionPeriodInDays')} d"
    )
    ok = status == "ACTIVE"
    return Check("Timestream table is ACTIVE", ok, detail, "" if ok else UP)


class Timestream(Resource):
    """Database ``<name>-db-<suffix>`` and its table (``timestream.table`` in the config).

    The database is this deployment's own (named from it), so every table in it is too:
    one the config no longer names (Timestream cannot rename a table, so changing
    ``timestream.table`` makes a new one) is kept by ``up``, because it holds the data, and
    deleted by ``down``, which cannot delete a database that still has tables.
    """

    key = "timestream"
    label = "Timestream database and table"
    stray_holder = "database"
    discovery = (Discovery(lambda n: n.database, list_databases),)
    health = (table_health,)
    grants = (Grant("function_role", policies.write_table),)

    def enabled(self) -> bool:
        """``timestream.enabled: false`` for accounts LiveAnalytics refuses (the lake
        stores instead): no database, table, processor, mapping or their role and group."""
        return self.ctx.config.timestream.enabled

    def _unless_closed(self, call: Callable[[], T], absent: T) -> T:
        """With Timestream off, a closed service reads as absent: an account that
        LiveAnalytics refuses never had a database of ours (so a lake-only ``up`` and
        ``down`` work there). With it on, the refusal is the answer and is raised."""
        try:
            return call()
        except ServiceUnavailableError:
            if self.enabled():
                raise
            return absent

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
        return self._unless_closed(self._describe, None)

    def _describe(self) -> Props | None:
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

    def tables(self) -> list[str] | None:
        """Every table in the database (ListTables, all pages); None: no database."""
        db = self.ctx.names.database
        found: list[str] = []
        params: dict[str, Any] = {"DatabaseName": db}
        with closed_service_guard():
            while True:
                page = get_or_none(lambda: self._ts.list_tables(**params))
                if page is None:
                    return found or None  # no database (or gone since the first page)
                found += [t["TableName"] for t in page.get("Tables", [])]
                if not page.get("NextToken"):
                    return found
                params["NextToken"] = page["NextToken"]

    def strays(self) -> list[str]:
        tables = self._unless_closed(self.tables, None) or []
        return [f"table {t}" for t in tables if t != self.ctx.names.table]

    def delete(self) -> bool:
        return self._unless_closed(self._delete, False)

    def _delete(self) -> bool:
        names = self.ctx.names
        with closed_service_guard():
            # Asked first: moto's DeleteDatabase on a missing database is a server error.
            if get_or_none(lambda: self._ts.describe_database(DatabaseName=names.database)) is None:
                return False
            # DeleteDatabase refuses a database with tables: the configured one and any the
            # config no longer names (they are this deployment's: the database is).
            for table in self.tables() or []:
                deleted(
                    partial(self._ts.delete_table, DatabaseName=names.database, TableName=table)
                )
            return deleted(lambda: self._ts.delete_database(DatabaseName=names.database))

    def outputs(self, current: Props | None = None) -> dict[str, Any]:
        names = self.ctx.names
        return {"database": names.database, "table": names.table, "table_arn": names.table_arn}
