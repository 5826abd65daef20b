"""`plan` shows a changed document as the leaves that differ, and failures read cleanly.

The walkthrough renamed the Timestream table and got ``policy: {'Version': '2012-10-17',
'Statement': [{'Sid': 'ReadStream… -> {'Version': ...`` (both sides cut before the change),
and a failed `down` ended "delete them first.. ... or 'iotpipe down' to remove everything."
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from rich.console import Console

from iotpipe.cli.app import App
from iotpipe.cli.provision import render_plan
from iotpipe.diff import MISSING, clip_pair, describe_leaf, field_leaves, leaves
from iotpipe.engine import Plan, Step, StepFailed

ARN = "arn:aws:timestream:us-east-1:123456789012:database/iot-telemetry-db-9cysbi/table/{}"


def policy(table: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadStream", "Effect": "Allow", "Action": ["kinesis:GetRecords"]},
            {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:PutLogEvents"]},
            {"Sid": "Write", "Effect": "Allow", "Resource": [ARN.format(table)]},
        ],
    }


def env(table: str, **more: str) -> dict[str, str]:
    return {"TIMESTREAM_DATABASE": "iot-telemetry-db-9cysbi", "TIMESTREAM_TABLE": table, **more}


def test_nested_documents_differ_only_at_their_leaves() -> None:
    assert leaves(policy("sensor-data"), policy("other-data"), "policy") == [
        ("policy.Statement[2].Resource[0]", ARN.format("sensor-data"), ARN.format("other-data"))
    ]
    assert field_leaves("environment", env("sensor-data"), env("other-data")) == [
        ("environment.TIMESTREAM_TABLE", "sensor-data", "other-data")
    ]


def test_added_removed_and_retyped_leaves() -> None:
    assert leaves(env("t"), env("t", FAILURE_QUEUE_URL="https://q"), "environment") == [
        ("environment.FAILURE_QUEUE_URL", MISSING, "https://q")
    ]
    assert leaves([1, 2, 3], [1, 2], "xs") == [("xs[2]", 3, MISSING)]
    assert leaves({"a b": 1}, {"a b": 2}, "m") == [("m['a b']", 1, 2)]
    assert field_leaves("policy", None, {"Version": "1"}) == [("policy", None, {"Version": "1"})]
    assert field_leaves("memory_mb", 256, 512) == [("memory_mb", 256, 512)]
    assert describe_leaf("environment.X", MISSING, "v") == "environment.X: (none) -> v"


def test_long_strings_are_cut_after_their_common_start_so_the_change_shows() -> None:
    old, new = clip_pair(ARN.format("sensor-data"), ARN.format("other-data"))
    assert old.startswith("…") and old.endswith("table/sensor-data")
    assert new.startswith("…") and new.endswith("table/other-data")
    assert len(old) <= 60 and len(new) <= 60
    assert clip_pair("short", "also short") == ("short", "also short")
    cut, _ = clip_pair("x" * 100, "y")
    assert len(cut) == 60 and cut.endswith("…")


def resource(key: str, label: str, name: str) -> Any:
    return SimpleNamespace(key=key, label=label, name=name, enabled=lambda: True)


def rename_plan() -> Plan:
    fn_role = resource("function_role", "IAM role (function)", "iot-telemetry-fn-role-9cysbi")
    function = resource("function", "Lambda function", "iot-telemetry-processor-9cysbi")
    ts = resource("timestream", "Timestream database and table", "iot-telemetry-db-9cysbi/o")
    ts.stray_holder = "database"
    return Plan(
        [
            Step(fn_role, "update", {"policy": (policy("sensor-data"), policy("other-data"))}),
            Step(function, "update", {"environment": (env("sensor-data"), env("other-data"))}),
            Step(ts, "create", kept=["table sensor-data"]),
        ]
    )


@pytest.mark.parametrize("width", [80, 200])
def test_render_plan_shows_the_changed_leaves_by_path(width: int) -> None:
    console = Console(width=width, record=True, force_terminal=False)
    render_plan(App(out=console, err=console), rename_plan(), "Plan")
    lines = console.export_text().splitlines()
    assert all(len(line) <= width for line in lines), lines
    # The changed leaf fits on one line, even at 80 columns: the shared ARN start is cut.
    leaf = "policy.Statement[2].Resource[0]: …/table/sensor-data -> …/table/other-data"
    assert any(line.strip().endswith(leaf) for line in lines), lines
    text = " ".join(" ".join(lines).split())
    assert "environment.TIMESTREAM_TABLE: sensor-data -> other-data" in text
    assert "policy.Statement[2].Resource[0]: …" in text
    assert "table/sensor-data -> …" in text and text.count("table/other-data") == 1
    assert "'Statement'" not in text and "TIMESTREAM_DATABASE" not in text
    assert (
        "kept: table sensor-data (no longer in the config; `down` deletes it with the database)"
        in text
    )


def test_plan_json_keeps_old_and_new_whole_and_adds_the_leaves() -> None:
    data = json.loads(json.dumps(rename_plan().as_dict()))
    env_change = data[1]["changes"]["environment"]
    assert env_change["old"] == env("sensor-data") and env_change["new"] == env("other-data")
    assert env_change["detail"] == [
        {"path": "environment.TIMESTREAM_TABLE", "old": "sensor-data", "new": "other-data"}
    ]
    assert data[2]["kept"] == ["table sensor-data"]


def failed(error: str, cause: BaseException, command: str = "up") -> StepFailed:
    ts = resource("timestream", "Timestream database and table", "db/other-data")
    step = Step(ts, "delete", error=error)
    return StepFailed([step], cause, command)


def test_a_failed_step_message_has_one_full_stop_and_down_advice_is_not_circular() -> None:
    cause = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "DeleteTable"
    )
    msg = str(failed("DeleteTable: AccessDeniedException: no access.", cause, "down"))
    assert ".." not in msg
    assert "Allow DeleteTable for these credentials" in msg
    assert "run 'iotpipe down' again" in msg and "to remove everything" not in msg
    up = str(failed("CreateTable: ValidationException: bad name.", cause))
    assert "bad name. What was done is recorded" in up and ".." not in up
    assert "or 'iotpipe down' to remove everything" in up
