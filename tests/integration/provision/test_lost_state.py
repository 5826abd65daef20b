"""A lost state file, as a new user loses it: `plan` and `up` find the deployment by its
resources' names instead of inventing a second one, and `down` after a `plan` that only
recorded a suffix does not claim to have removed anything.

The CLI runs as a user runs it (``iotpipe [--endpoint-url URL] plan``) against moto, in
this process and over HTTP; what exists is checked with boto3 as a user's script would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from provision_helpers import CallLog

from iotpipe.aws import Gateway
from iotpipe.cli import main

CONFIG = "name: iot-telemetry\ntarget: aws\nregion: us-east-1\n"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """A project folder with its config; state under the ``home`` fixture."""
    (tmp_path / "iotpipe.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IOTPIPE_CONFIG", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return tmp_path


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> CallLog:
    """Every AWS call any command's gateway makes from here on."""
    log = CallLog()
    seen: set[int] = set()
    original = Gateway.client

    def client(self: Gateway, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)
        if id(made) not in seen:
            seen.add(id(made))
            log.attach(made)
        return made

    monkeypatch.setattr(Gateway, "client", client)
    return log


def run(endpoint: str | None, *args: str) -> Any:
    where = ["--endpoint-url", endpoint] if endpoint else []
    return CliRunner().invoke(main, [*where, *args])


def cli_json(endpoint: str | None, *args: str) -> Any:
    result = run(endpoint, "-o", "json", *args)
    assert result.exit_code == 0, result.output
    return result, json.loads(result.stdout)


def lose_state(home: Path) -> None:
    files = list(home.glob("iot-telemetry.*.json"))
    assert files, list(home.iterdir())
    for path in files:
        path.unlink()


def boto(endpoint: str | None, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


def test_plan_and_up_after_a_lost_state_file_use_the_existing_deployment(
    aws_endpoint: str | None, folder: Path, home: Path, calls: CallLog
) -> None:
    _, first = cli_json(aws_endpoint, "up")
    deployment = first["deployment"]
    lose_state(home)

    planned, plan = cli_json(aws_endpoint, "plan")
    assert plan["deployment"] == deployment
    actions = {s["resource"]: s["action"] for s in plan["steps"]}
    assert set(actions.values()) <= {"unchanged", "absent"}, actions
    note = f"Found deployment {deployment} by its resources (no state file here): using it."
    assert note in planned.stderr
    assert list(home.glob("iot-telemetry.*.json")), "the recovered suffix is kept"

    lose_state(home)  # `up` finds it too, and changes nothing
    calls.calls.clear()
    upped, again = cli_json(aws_endpoint, "up")
    assert again["deployment"] == deployment and again["changed"] == []
    assert calls.mutating == [], calls.mutating
    assert note in upped.stderr
    assert boto(aws_endpoint, "kinesis").list_streams()["StreamNames"] == [
        f"iot-telemetry-stream-{deployment.rsplit('-', 1)[1]}"
    ]

    _, gone = cli_json(aws_endpoint, "down", "--yes")
    assert gone["deployment"] == deployment
    # the nine pipeline resources, the device policy and the (empty) device thing group
    assert len(gone["deleted"]) == 11, gone["deleted"]
    assert {"device_policy", "things"} <= {d["resource"] for d in gone["deleted"]}
    assert boto(aws_endpoint, "kinesis").list_streams()["StreamNames"] == []
    assert boto(aws_endpoint, "lambda").list_functions()["Functions"] == []


def test_two_deployments_and_no_state_plan_and_up_say_which_to_choose(
    aws_endpoint: str | None, folder: Path, home: Path, calls: CallLog
) -> None:
    sqs = boto(aws_endpoint, "sqs")  # two deployments' leftovers, as discovery sees them
    for suffix in ("aaaa11", "bbbb22"):
        sqs.create_queue(QueueName=f"iot-telemetry-failures-{suffix}")
    calls.calls.clear()

    for command in ("plan", "up"):
        result = run(aws_endpoint, command)
        assert result.exit_code == 2, result.output
        assert "aaaa11" in result.output and "bbbb22" in result.output
        assert "suffix:" in result.output and "Traceback" not in result.output
    assert calls.mutating == [], calls.mutating
    assert not home.exists() or not list(home.glob("iot-telemetry.*.json"))

    result = run(aws_endpoint, "down", "--yes")  # down has --suffix, and says so
    assert result.exit_code == 2, result.output
    assert "--suffix" in result.output


def test_down_after_a_plan_only_state_has_nothing_to_delete(
    aws_endpoint: str | None, folder: Path, home: Path
) -> None:
    _, plan = cli_json(aws_endpoint, "plan")  # an empty account: a new suffix, recorded
    actions = {s["resource"]: s["action"] for s in plan["steps"]}
    assert set(actions.values()) <= {"create", "absent"}, actions
    assert list(home.glob("iot-telemetry.*.json"))

    result = run(aws_endpoint, "down", "--yes")
    assert result.exit_code == 0, result.output
    assert (
        f"Nothing to delete: deployment {plan['deployment']} has no resources here."
        in result.stdout
    )
    assert "removed" not in result.output


def test_a_first_plan_on_an_empty_account_then_up_keep_one_suffix(
    aws_endpoint: str | None, folder: Path, home: Path, calls: CallLog
) -> None:
    _, plan = cli_json(aws_endpoint, "plan")
    calls.calls.clear()
    _, up = cli_json(aws_endpoint, "up")
    assert up["deployment"] == plan["deployment"]
    # the state knows the suffix: no discovery (iot's ListTopicRules) before creating
    assert ("iot", "ListTopicRules") not in calls.calls, calls.calls
