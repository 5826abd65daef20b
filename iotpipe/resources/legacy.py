"""The recipe's legacy AWS IoT Analytics channel -> pipeline -> datastore, kept for parity.

AWS IoT Analytics reached end of support on 2025-12-15 and its client was removed from
boto3 in 1.42.51, so in every current install this resource can only explain itself: the
engine calls :func:`legacy_available` and stops before any change when ``legacy.enabled``
is set, printing :data:`LEGACY_RETIRED_MESSAGE` and :func:`migration_notes`. Where an older
boto3 still has the client, the resources are created and deleted as the recipe did.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError, UnknownServiceError

from iotpipe.aws import Gateway, error_code, tag_list
from iotpipe.config import Config, SensorRange
from iotpipe.naming import Names
from iotpipe.resources.base import Props, Resource
from iotpipe.resources.common import deleted, get_or_none
from iotpipe.resources.errors import ServiceUnavailableError

SERVICE = "iotanalytics"
LEGACY_RETIRED_MESSAGE = (
    "AWS IoT Analytics reached end of support on 2025-12-15 and its client was removed from "
    "boto3 in 1.42.51, so its channel, pipeline and datastore cannot be created. Set "
    "`legacy.enabled: false` and `lake.enabled: true`: the lake is its replacement on AWS's "
    "migration path (Kinesis -> Firehose + transform Lambda -> S3 Parquet -> Glue + Athena), "
    "and the pipeline already does what the legacy activities did."
)
# The recipe's addAttributes activity, verbatim.
RECIPE_ATTRIBUTES = {"location": "factory_floor_1", "device_type": "temperature_sensor"}
RECIPE_TEMPERATURE = SensorRange(-50, 150)


def legacy_available(gateway: Gateway | None = None) -> bool:
    """Whether this boto3 can still build an IoT Analytics client."""
    try:
        if gateway is not None:
            gateway.client(SERVICE)
        else:
            boto3.session.Session().client(SERVICE, region_name="us-east-1")
    except UnknownServiceError:
        return False
    return True


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def temperature_filter(config: Config) -> str:
    """The recipe's filter, with the bounds of ``sensors.temperature`` when configured."""
    rng = config.sensors.get("temperature", RECIPE_TEMPERATURE)
    return f"temperature > {_num(rng.min)} AND temperature < {_num(rng.max)}"


def migration_notes(config: Config) -> list[str]:
    """How each legacy step maps onto the modern pipeline, one sentence per step."""
    ts, stream = config.timestream, config.stream
    rng = config.sensors.get("temperature")
    where = (
        f"`sensors.temperature` (min {_num(rng.min)}, max {_num(rng.max)})"
        if rng
        else "a `sensors.temperature` entry (add one with min -50, max 150)"
    )
    lake = config.lake
    return [
        "channel (raw message store) -> the Kinesis stream the IoT rule writes to "
        f"(retention {stream.retention_hours} h, `stream.retention_hours`).",
        "pipeline -> a Firehose delivery stream reading that stream, with the transform "
        "Lambda as its processor (`lake.enabled: true`; buffered "
        f"{lake.buffer_s} s / {lake.buffer_mb} MB, `lake.buffer_s` / `lake.buffer_mb`).",
        f"filter `{temperature_filter(config)}` -> {where}, checked by the processor and "
        "the transform; out-of-range readings go to the failure queue or the lake's "
        "`errors/` prefix with the reason instead of vanishing.",
        "addAttributes location/device_type -> per-device `location` and `device_type` in "
        f"`devices` ({len(config.devices)} configured), added by the functions (Timestream "
        "dimensions, lake columns).",
        "datastore -> Parquet files in the lake's S3 bucket, partitioned by event date and "
        f"hour (kept {lake.retention_days} d, `lake.retention_days`), and/or the Timestream "
        f"table `{ts.table}` (memory {ts.memory_retention_hours} h, "
        f"magnetic {ts.magnetic_retention_days} d) where the account still has Timestream.",
        "dataset (SQL over the datastore) -> the Glue table over that bucket, queried with "
        "Athena: `iotpipe query --store lake` (presets or raw SQL).",
    ]


def pipeline_activities(names: Names, config: Config) -> list[dict[str, Any]]:
    """The recipe's pipeline: channel -> filter -> addAttributes -> datastore."""
    return [
        {
            "channel": {
                "name": "ChannelActivity",
                "channelName": names.legacy("channel"),
                "next": "FilterActivity",
            }
        },
        {
            "filter": {
                "name": "FilterActivity",
                "filter": temperature_filter(config),
                "next": "AddAttributesActivity",
            }
        },
        {
            "addAttributes": {
                "name": "AddAttributesActivity",
                "attributes": dict(RECIPE_ATTRIBUTES),
                "next": "DatastoreActivity",
            }
        },
        {
            "datastore": {
                "name": "DatastoreActivity",
                "datastoreName": names.legacy("datastore"),
            }
        },
    ]


class LegacyAnalytics(Resource):
    """IoT Analytics channel, datastore and pipeline (only with ``legacy.enabled``)."""

    key = "legacy"
    label = "IoT Analytics (legacy)"
    # A retired service (no client in current boto3): the pipeline's own kinds find the
    # deployment, and ``down`` then deletes these where a client still exists.
    discovery = ()
    health = ()

    @property
    def name(self) -> str:
        return self.ctx.names.legacy("pipeline")

    def enabled(self) -> bool:
        return bool(self.ctx.config.legacy.enabled)

    def available(self) -> bool:
        return legacy_available(self.ctx.gateway)

    @property
    def _ia(self) -> Any:
        if not self.available():
            raise ServiceUnavailableError(LEGACY_RETIRED_MESSAGE)
        return self.ctx.client(SERVICE)

    @property
    def _names(self) -> dict[str, str]:
        return {k: self.ctx.names.legacy(k) for k in ("channel", "datastore", "pipeline")}

    def desired(self) -> Props:
        return {
            "channel": True,
            "datastore": True,
            "activities": pipeline_activities(self.ctx.names, self.ctx.config),
        }

    def describe(self) -> Props | None:
        if not self.available():
            return None  # nothing this boto3 could see or change
        n, ia = self._names, self._ia
        channel = get_or_none(lambda: ia.describe_channel(channelName=n["channel"]))
        store = get_or_none(lambda: ia.describe_datastore(datastoreName=n["datastore"]))
        pipeline = get_or_none(lambda: ia.describe_pipeline(pipelineName=n["pipeline"]))
        if channel is None and store is None and pipeline is None:
            return None
        return {
            "channel": channel is not None,
            "datastore": store is not None,
            "activities": None if pipeline is None else pipeline["pipeline"]["activities"],
        }

    def create(self) -> dict[str, Any]:
        return self.update({"channel": False, "datastore": False, "activities": None}, {})

    def update(self, current: Props, changes: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
        """Create what is missing; the pipeline is updated in place when it exists."""
        n, ia, tags = self._names, self._ia, tag_list(self.ctx.tags, "key", "value")
        keep = {"unlimited": True}  # as the recipe did; `down` removes them
        if not current.get("channel"):
            self._tolerate_exists(
                lambda: ia.create_channel(channelName=n["channel"], retentionPeriod=keep, tags=tags)
            )
        if not current.get("datastore"):
            self._tolerate_exists(
                lambda: ia.create_datastore(
                    datastoreName=n["datastore"], retentionPeriod=keep, tags=tags
                )
            )
        activities = self.desired()["activities"]
        if current.get("activities") is None:
            self._tolerate_exists(
                lambda: ia.create_pipeline(
                    pipelineName=n["pipeline"], pipelineActivities=activities, tags=tags
                )
            )
        elif current["activities"] != activities:
            ia.update_pipeline(pipelineName=n["pipeline"], pipelineActivities=activities)
        return self.outputs()

    @staticmethod
    def _tolerate_exists(call: Any) -> None:
        try:
            call()
        except ClientError as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise

    def delete(self) -> bool:
        """Pipeline first (it references the other two), then datastore, then channel."""
        if not self.available():
            return False
        n, ia = self._names, self._ia
        removed = [
            deleted(lambda: ia.delete_pipeline(pipelineName=n["pipeline"])),
            deleted(lambda: ia.delete_datastore(datastoreName=n["datastore"])),
            deleted(lambda: ia.delete_channel(channelName=n["channel"])),
        ]
        return any(removed)

    def outputs(self, current: Props | None = None) -> dict[str, Any]:
        return dict(self._names)
