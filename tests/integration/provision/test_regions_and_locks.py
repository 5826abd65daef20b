"""Issue 8, items 2 and 3 against a moto server: `--region` next to a deployment in the
config's region, roles named before they carried the region, and two `up` at once.

The CLI runs as a user runs it (``iotpipe --endpoint-url ... --region ... up``) in this
process through click's runner, or as real processes for the concurrent case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto_fixtures import moto_http_server
from provision_helpers import aws_config

from iotpipe.aws import Gateway
from iotpipe.cli import main
from iotpipe.engine import Engine
from iotpipe.naming import Names
from iotpipe.target import resolve

REPO = Path(__file__).resolve().parents[3]
CONFIG = "name: iot-telemetry\ntarget: aws\nregion: us-east-1\n"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with moto_http_server() as endpoint:
        yield endpoint


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder: its config, its own state home, and a fresh moto server state."""
    (tmp_path / "iotpipe.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IOTPIPE_HOME", str(tmp_path / ".iotpipe"))
    monkeypatch.delenv("IOTPIPE_CONFIG", raising=False)
    return tmp_path


@pytest.fixture(autouse=True)
def _reset(server: str) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{server}/moto-api/reset", method="POST"))


def cli(server: str, *args: str) -> Any:
    result = CliRunner().invoke(main, ["--endpoint-url", server, "-o", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def client(server: str, service: str, region: str) -> Any:
    return boto3.client(service, endpoint_url=server, region_name=region)


def inventory(server: str, region: str) -> dict[str, list[str]]:
    """What exists in one region, plus every IAM role (global)."""
    lam = client(server, "lambda", region)
    return {
        "streams": client(server, "kinesis", region).list_streams()["StreamNames"],
        "functions": [f["FunctionName"] for f in lam.list_functions()["Functions"]],
        "mappings": [m["UUID"] for m in lam.list_event_source_mappings()["EventSourceMappings"]],
        "queues": client(server, "sqs", region).list_queues().get("QueueUrls", []),
        "rules": [r["ruleName"] for r in client(server, "iot", region).list_topic_rules()["rules"]],
        "databases": [
            d["DatabaseName"]
            for d in client(server, "timestream-write", region).list_databases()["Databases"]
        ],
        "roles": sorted(r["RoleName"] for r in client(server, "iam", region).list_roles()["Roles"]),
    }


def test_region_option_up_and_down_next_to_the_configs_region(server: str, folder: Path) -> None:
    home = cli(server, "up")
    assert home["region"] == "us-east-1"
    before = inventory(server, "us-east-1")
    assert len(before["streams"]) == 1 and len(before["roles"]) == 2

    # `down` in another region, where nothing is deployed: deletes nothing of the first.
    gone = cli(server, "--region", "eu-west-1", "down", "--yes")
    assert gone == {"deployment": None, "deleted": []}
    assert inventory(server, "us-east-1") == before

    # `up` with --region: a working pipeline in that region, every ARN in it.
    other = cli(server, "--region", "eu-west-1", "up")
    assert other["region"] == "eu-west-1" and other["deployment"] != home["deployment"]
    for out in other["resources"].values():
        if "arn" in out and ":iam::" not in out["arn"]:
            assert ":eu-west-1:" in out["arn"], out
    lam = client(server, "lambda", "eu-west-1")
    (mapping,) = lam.list_event_source_mappings()["EventSourceMappings"]
    assert mapping["EventSourceArn"].startswith("arn:aws:kinesis:eu-west-1:")
    fn = lam.get_function_configuration(FunctionName=other["resources"]["function"]["name"])
    assert fn["Role"].endswith(f"-fn-role-eu-west-1-{other['deployment'].rsplit('-', 1)[1]}")
    verified = CliRunner().invoke(
        main, ["--endpoint-url", server, "--region", "eu-west-1", "-o", "json", "verify"]
    )
    assert verified.exit_code == 0, verified.output

    # ... and its `down` removes exactly it: the us-east-1 deployment is untouched.
    removed = cli(server, "--region", "eu-west-1", "down", "--yes")
    assert removed["deployment"] == other["deployment"] and removed["region"] == "eu-west-1"
    assert inventory(server, "us-east-1") == before
    assert inventory(server, "eu-west-1")["streams"] == []
    again = cli(server, "up")  # the next `up` in the config's region: same suffix, no changes
    assert again["deployment"] == home["deployment"] and again["changed"] == []


def _old_style_up(server: str, config: Any, region: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A deployment made by the previous iotpipe: role names without the region."""
    with monkeypatch.context() as m:
        m.setattr(Names, "function_role", property(lambda n: n.retired_roles()[0]))
        m.setattr(Names, "rule_role", property(lambda n: n.retired_roles()[1]))
        dep = resolve(
            config, Gateway(region=region, endpoint_url=server, local=True), create_suffix=True
        )
        Engine(dep, sleep=lambda s: None).apply()
    return dep


def test_roles_named_without_region_are_replaced_by_up_and_spared_elsewhere(
    server: str, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same fixed suffix in two regions: the old role names were identical, so the
    # eu-west-1 deployment's `down` used to delete the us-east-1 deployment's roles.
    cfg = aws_config(suffix="fixed1")
    east = _old_style_up(server, cfg, "us-east-1", monkeypatch)
    old_roles = set(east.names.retired_roles())
    assert old_roles <= set(inventory(server, "us-east-1")["roles"])

    west = resolve(
        cfg, Gateway(region="eu-west-1", endpoint_url=server, local=True), create_suffix=True
    )
    Engine(west, sleep=lambda s: None).apply()
    Engine(west, sleep=lambda s: None).destroy()
    assert old_roles <= set(inventory(server, "us-east-1")["roles"])  # spared

    # `up` with this version upgrades us-east-1 in place: new roles in use, old ones gone.
    now = resolve(cfg, east.gateway, create_suffix=True)
    plan = Engine(now, sleep=lambda s: None).plan()
    actions = {s.key: s.action for s in plan.steps}
    assert actions["retired_roles"] == "delete" and actions["function_role"] == "create"
    assert actions["function"] == "update" and actions["rule"] == "update"
    Engine(now, sleep=lambda s: None).apply(plan)
    roles = set(inventory(server, "us-east-1")["roles"])
    assert not roles & old_roles and {now.names.function_role, now.names.rule_role} <= roles
    fn = client(server, "lambda", "us-east-1").get_function_configuration(
        FunctionName=now.names.function
    )
    assert fn["Role"] == now.names.role_arn(now.names.function_role)


def test_two_up_at_once_take_turns_and_share_one_suffix(server: str, folder: Path) -> None:
    """Threads of one process against one moto server: the second waits for the first."""
    cfg = aws_config()
    first_holds = threading.Event()
    second_waits = threading.Event()
    results: dict[str, Any] = {}

    def run(who: str) -> None:
        gw = Gateway(region="us-east-1", endpoint_url=server, local=True)
        on_wait = (lambda text: second_waits.set()) if who == "second" else None
        with resolve(cfg, gw, create_suffix=True, lock=True, on_wait=on_wait) as dep:
            if who == "first":
                first_holds.set()
                assert second_waits.wait(20), "the second command did not wait"
            engine = Engine(dep, sleep=lambda s: None)
            plan = engine.plan()
            engine.apply(plan)
            results[who] = (dep.names.suffix, len(plan.changes))

    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert first_holds.wait(20)
    second = threading.Thread(target=run, args=("second",))
    second.start()
    first.join(60)
    second.join(60)
    assert results["first"][0] == results["second"][0]  # one suffix
    assert results["first"][1] > 0 and results["second"][1] == 0  # one set of resources
    assert len(inventory(server, "us-east-1")["streams"]) == 1


def test_two_up_processes_at_once_make_one_deployment(server: str, folder: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTPIPE_")}
    env.update(IOTPIPE_HOME=str(folder / ".iotpipe"), PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "iotpipe", "--endpoint-url", server, "-o", "json", "up"]
    procs = [
        subprocess.Popen(
            cmd, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    deployments = {json.loads(out)["deployment"] for out, _ in outs}
    assert len(deployments) == 1
    have = inventory(server, "us-east-1")
    assert (len(have["streams"]), len(have["functions"]), len(have["roles"])) == (1, 1, 2)


def test_up_while_another_holds_the_deployment_names_the_holder(
    server: str, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = Gateway(region="us-east-1", endpoint_url=server, local=True)
    with resolve(aws_config(), gw, create_suffix=True, lock=True) as held:
        assert held.lock is not None
        monkeypatch.setenv("IOTPIPE_LOCK_TIMEOUT", "0.3")
        result = CliRunner().invoke(main, ["--endpoint-url", server, "up"])
        assert result.exit_code == 1, result.output
        assert f"busy: pid {os.getpid()}" in result.output
        assert "since 20" in result.output and "IOTPIPE_LOCK_TIMEOUT" in result.output
        assert "Traceback" not in result.output
        assert inventory(server, "us-east-1")["streams"] == []  # it changed nothing
