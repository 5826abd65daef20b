"""The lake's read side (Athena over the Parquet in S3), through the ``Store`` interface.

Three parts, each in its module so that each stays small: ``athena`` (start, wait, pages,
types), ``lakesql`` (the presets' Trino SQL, pure) and ``lakeerrors`` (``quality`` from the
error prefix). This class binds them to one deployment: its workgroup and database, its
bucket, its validation settings, and a clock that tests replace.

Results speak Timestream's vocabulary where the concept is the same (``DeviceId``,
``avg_<measure>``, ``measure``, ``minute``...), so renderers and scripts need nothing new.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from iotpipe import lakeschema, poll
from iotpipe.errors import IotpipeError
from iotpipe.package import settings_from_config
from iotpipe.stores import athena, lakeerrors, lakesql
from iotpipe.stores.base import Result, seconds
from iotpipe.target import Deployment
from lambda_handler.settings import Settings, from_dict

_NOT_RESOLVED = re.compile(r"column '([^']+)' cannot be resolved", re.IGNORECASE)
_TABLE_MISSING = re.compile(r"table '[^']*' does not exist|TABLE_NOT_FOUND", re.IGNORECASE)
_TIMESTREAM_WORDS = {"deviceid", "devicetype", "measure_name", "measure_value"}


def renamed(result: Result, names: dict[str, str]) -> Result:
    """The same result with columns renamed (``names``: old -> new; others kept)."""
    cols = [names.get(c, c) for c in result.columns]
    rows = [{names.get(k, k): v for k, v in row.items()} for row in result.rows]
    return Result(cols, result.types, rows, result.notes)


class LakeReader:
    """This deployment's lake, read through :class:`iotpipe.stores.base.Store`."""

    def __init__(
        self,
        dep: Deployment,
        *,
        clock: poll.Clock | None = None,
        now: Callable[[], datetime] = lakeerrors.now_utc,
        timeout_s: float = athena.DEFAULT_TIMEOUT_S,
    ) -> None:
        self._dep = dep
        names = dep.names
        self.database, self.table, self.bucket = names.lake_database, names.lake_table, names.bucket
        self.measures = tuple(dep.config.sensors)
        self.attributes = tuple(lakeschema.attribute_names(dep.config))
        self.where = athena.Where(
            names.workgroup, self.database, timeout_s=timeout_s, clock=clock or poll.Clock()
        )
        self._now = now

    @property
    def _client(self) -> Any:
        return self._dep.gateway.client("athena")

    def run(self, sql: str) -> Result:
        return athena.run(self._client, sql, self.where)

    def user_sql(self, sql: str) -> Result:
        try:
            result = self.run(sql)
        except athena.AthenaQueryError as exc:
            hint = self.hint(exc.reason, sql)
            if not hint:
                raise
            raise IotpipeError(f"{exc}\n{hint}") from exc
        if not result.rows:
            result.notes.append("The query returned no rows.")
        if "dt" not in re.findall(r"\w+", sql.lower()):
            result.notes.append(
                "Athena bills what it reads: WHERE dt >= 'YYYY-MM-DD' (and hour) lets it "
                "skip the other days' objects."
            )
        return result

    def preset(self, name: str, *, since: str, device: str | None, limit: int) -> Result:
        scope = lakesql.LakeScope(
            self.database,
            self.table,
            self.measures,
            self._now(),
            self.attributes,
            since,
            device,
            limit,
        )
        try:
            result = self.run(lakesql.SQL_PRESETS[name](scope))
        except athena.AthenaQueryError as exc:
            if _TABLE_MISSING.search(exc.reason):
                raise IotpipeError(
                    f"The table {self.database}.{self.table} does not exist: run 'iotpipe up' "
                    "with lake.enabled: true (or pick the deployment with -c/--config)."
                ) from exc
            raise
        result = renamed(result, lakesql.renames(self.measures))
        if name == "by-device":
            result = result.drop_empty("avg_")
        if not result.rows:
            result.notes.append(self.empty_note(since, device))
        return result

    def empty_note(self, since: str, device: str | None) -> str:
        who = f" for device {device}" if device else ""
        buffer_s = self._dep.config.lake.buffer_s
        return (
            f"No rows in {self.database}.{self.table}{who} in the last {since}: send data "
            f"with 'iotpipe send-test' (rows reach the lake after Firehose's {buffer_s} s "
            "buffer, lake.buffer_s), or widen --since."
        )

    def settings(self) -> Settings:
        """The function's own settings, as the transform loads them from its zip."""
        return from_dict(settings_from_config(self._dep.config), source="the deployment's config")

    def quality(self, *, since: str | None, device: str | None) -> Result:
        oldest = self._now() - timedelta(seconds=seconds(since)) if since else None
        s3 = self._dep.gateway.client("s3")
        found = lakeerrors.scan(s3, self.bucket, self.settings(), oldest)
        result = lakeerrors.report(found, device)
        label = f"the last {since}" if since else "the bucket's error prefix"
        where = f"s3://{self.bucket}/{lakeschema.ERROR_PREFIX}"
        result.notes.append(
            f"Counted from {found.objects} error object(s) under {where} in {label}; each "
            "reason recomputed from the record's original bytes with the deployment's "
            "validation settings."
        )
        if found.capped:
            result.notes.append(
                f"Capped at {lakeerrors.MAX_OBJECTS} objects / {lakeerrors.MAX_RECORDS} "
                "records (newest first): the counts are a lower bound; narrow --since."
            )
        if not result.rows:
            result.notes.append(
                f"Nothing refused in {label}: every message was valid, or none was sent "
                f"(errors, like rows, wait for Firehose's {self._dep.config.lake.buffer_s} s "
                "buffer)."
            )
        return result

    def count(self, since: str) -> int:
        rows = self.run(lakesql.count_sql(self.database, self.table, since, self._now())).rows
        return int(rows[0]["n"]) if rows and rows[0]["n"] is not None else 0

    def probe_rows(self, device: str, measure: str) -> list[dict[str, Any]]:
        sql = lakesql.probe_sql(self.database, self.table, device, measure, self._now())
        return self.run(sql).rows

    def refused(self, token: str, oldest: datetime) -> lakeerrors.Refusal | None:
        """``verify --probe``: the error record carrying ``token``, if Firehose wrote it."""
        s3 = self._dep.gateway.client("s3")
        return lakeerrors.find_marked(s3, self.bucket, self.settings(), token, oldest)

    def hint(self, reason: str, sql: str) -> str:
        """What usually went wrong, for Athena's terse errors (empty: no idea)."""
        source = lakesql.source(self.database, self.table)
        missing = _NOT_RESOLVED.search(reason)
        if missing:
            name = missing.group(1)
            if f'"{name.lower()}"' in sql.lower():
                return (
                    f"In Athena \"{name}\" names a column; a string is in single quotes: '{name}'."
                )
            cols = ", ".join(c for c, _ in lakeschema.columns(self._dep.config))
            extra = (
                " (Timestream's DeviceId and measure_name are device_id and one column per "
                "measure here)"
                if name.lower() in _TIMESTREAM_WORDS
                else ""
            )
            return f"The lake's columns{extra}: {cols}, dt, hour."
        if _TABLE_MISSING.search(reason):
            return (
                f"The lake's table is {source} (queries run in the database {self.database}, "
                f"so {self.table} alone works too); run 'iotpipe up' if it is missing."
            )
        lowered = reason.lower()
        if "'ago'" in lowered or "'bin'" in lowered:
            return (
                "That is Timestream's SQL; in Athena write time > current_timestamp - "
                "INTERVAL '1' HOUR and date_trunc('minute', time)."
            )
        return ""
