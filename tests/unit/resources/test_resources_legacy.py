"""The retired IoT Analytics resource: how it explains itself, and the recipe's three steps
where a client exists (a botocore Stubber on a client built from a small fake model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from iotanalytics_fake_model import fake_iotanalytics_client
from resource_helpers import REGION, add_error, make_ctx

from iotpipe.aws import Gateway
from iotpipe.config import Config, Device, LegacyConfig, SensorRange
from iotpipe.resources.base import Context, diff
from iotpipe.resources.errors import ServiceUnavailableError
from iotpipe.resources.legacy import (
    LEGACY_RETIRED_MESSAGE,
    LegacyAnalytics,
    legacy_available,
    migration_notes,
)

ENABLED = Config(legacy=LegacyConfig(enabled=True))
RECIPE_ACTIVITY_KINDS = ["channel", "filter", "addAttributes", "datastore"]


def test_this_boto3_has_no_iot_analytics() -> None:
    assert legacy_available() is False
    assert legacy_available(Gateway(region=REGION, local=True)) is False


def test_unavailable_resource_reads_as_absent_and_refuses_to_create() -> None:
    res = LegacyAnalytics(make_ctx(ENABLED))
    assert res.enabled() is True
    assert LegacyAnalytics(make_ctx()).enabled() is False
    assert res.describe() is None
    assert res.delete() is False  # `down` carries on
    with pytest.raises(ServiceUnavailableError, match="end of support on 2025-12-15"):
        res.create()
    assert "1.42.51" in LEGACY_RETIRED_MESSAGE


def test_migration_notes_map_each_recipe_step() -> None:
    cfg = Config(
        sensors={"temperature": SensorRange(-40, 125)},
        devices={"sensor001": Device("factory_floor_1", "temperature_sensor")},
    )
    notes = "\n".join(migration_notes(cfg))
    assert "temperature > -40 AND temperature < 125" in notes
    assert "`sensors.temperature` (min -40, max 125)" in notes
    assert "`devices` (1 configured)" in notes
    assert "location" in notes and "device_type" in notes
    assert "sensor-data" in notes  # the datastore's replacement
    default_notes = "\n".join(migration_notes(Config(sensors={"humidity": SensorRange(0, 100)})))
    assert "temperature > -50 AND temperature < 150" in default_notes  # the recipe's own filter
    assert "add one with min -50, max 150" in default_notes


@pytest.fixture
def available(tmp_path: Path) -> tuple[Context, Stubber]:
    gateway = Gateway(region=REGION, local=False)
    client = fake_iotanalytics_client(tmp_path)
    gateway._clients["iotanalytics"] = client
    stubber = Stubber(client)
    stubber.activate()
    return make_ctx(ENABLED, gateway=gateway), stubber


def _all_missing(stubber: Stubber) -> None:
    for method in ("describe_channel", "describe_datastore", "describe_pipeline"):
        add_error(stubber, method, "ResourceNotFoundException", status=404)


def _all_present(stubber: Stubber, ctx: Context, activities: list[dict[str, Any]]) -> None:
    names = ctx.names
    stubber.add_response("describe_channel", {"channel": {"name": names.legacy("channel")}})
    stubber.add_response("describe_datastore", {"datastore": {"name": names.legacy("datastore")}})
    stubber.add_response(
        "describe_pipeline",
        {"pipeline": {"name": names.legacy("pipeline"), "activities": activities}},
    )


def test_available_path_creates_describes_and_deletes(available: tuple[Context, Stubber]) -> None:
    ctx, stubber = available
    names, res = ctx.names, LegacyAnalytics(ctx)
    tags = [{"key": "iotpipe:deployment", "value": names.deployment}]
    keep = {"unlimited": True}
    activities = res.desired()["activities"]
    assert [next(iter(a)) for a in activities] == RECIPE_ACTIVITY_KINDS
    assert activities[1]["filter"]["filter"] == "temperature > -50 AND temperature < 150"
    assert activities[2]["addAttributes"]["attributes"] == {
        "location": "factory_floor_1",
        "device_type": "temperature_sensor",
    }

    _all_missing(stubber)
    stubber.add_response(
        "create_channel",
        {},
        {"channelName": names.legacy("channel"), "retentionPeriod": keep, "tags": tags},
    )
    stubber.add_response(
        "create_datastore",
        {},
        {"datastoreName": names.legacy("datastore"), "retentionPeriod": keep, "tags": tags},
    )
    stubber.add_response(
        "create_pipeline",
        {},
        {"pipelineName": names.legacy("pipeline"), "pipelineActivities": activities, "tags": tags},
    )
    assert res.describe() is None
    assert res.create() == {
        "channel": names.legacy("channel"),
        "datastore": names.legacy("datastore"),
        "pipeline": names.legacy("pipeline"),
    }

    _all_present(stubber, ctx, activities)
    assert diff(res.desired(), res.describe() or {}) == {}

    # Pipeline first: it references the channel and the datastore.
    for method in ("delete_pipeline", "delete_datastore", "delete_channel"):
        stubber.add_response(method, {})
    assert res.delete() is True
    for method in ("delete_pipeline", "delete_datastore", "delete_channel"):
        add_error(stubber, method, "ResourceNotFoundException", status=404)
    assert res.delete() is False
    stubber.assert_no_pending_responses()


def test_available_path_updates_a_changed_pipeline_in_place(
    available: tuple[Context, Stubber],
) -> None:
    ctx, stubber = available
    res = LegacyAnalytics(ctx)
    old = res.desired()["activities"][:1] + res.desired()["activities"][3:]
    _all_present(stubber, ctx, old)
    current = res.describe()
    assert current is not None
    changes = diff(res.desired(), current)
    assert set(changes) == {"activities"}
    wanted = {
        "pipelineName": ctx.names.legacy("pipeline"),
        "pipelineActivities": res.desired()["activities"],
    }
    stubber.add_response("update_pipeline", {}, wanted)
    res.update(current, changes)
    stubber.assert_no_pending_responses()
