"""`iotpipe local start|stop|status`: own emulators, own homes, nothing left behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner
from localaws_helpers import make_zip, wait_for

from iotpipe.cli.local import local
from iotpipe.local import lifecycle
from iotpipe.local.lifecycle import LocalError

pytestmark = pytest.mark.integration


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture
def home(tmp_path):
    yield tmp_path
    lifecycle.stop(tmp_path)  # whatever the test did, nothing keeps running


def test_start_status_stop_leaves_no_process(home):
    info = lifecycle.start(home)
    state = json.loads((home / "local.json").read_text())
    assert (
        state["pid"] == info.pid
        and state["endpoint"] == info.endpoint == f"http://127.0.0.1:{info.port}"
    )
    assert {"started_at", "log"} <= set(state)
    import boto3

    lam = boto3.client("lambda", endpoint_url=info.endpoint, region_name="us-east-1")
    iam = boto3.client("iam", endpoint_url=info.endpoint, region_name="us-east-1")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam.create_function(
        FunctionName="f",
        Runtime="python3.13",
        Role=role,
        Handler="fn.handler",
        Code={"ZipFile": make_zip({"fn.py": "def handler(e, c):\n    return 1\n"})},
    )
    assert json.loads(lam.invoke(FunctionName="f")["Payload"].read()) == 1
    status = lifecycle.status(home)
    assert (
        status["endpoint"] == info.endpoint
        and status["pid"] == info.pid
        and status["uptime_s"] >= 0
    )
    assert set(status["counts"]) == {
        "records_put",
        "invocations",
        "errors",
        "timestream_rows",
        "failure_queue_messages",
    }
    assert status["counts"]["invocations"] == 1
    worker = status["functions"][0]["pid"]
    assert worker and not gone(worker)
    assert lifecycle.stop(home) is True
    assert gone(info.pid) and gone(worker)
    assert not (home / "local.json").exists()
    assert lifecycle.status(home) is None and lifecycle.stop(home) is False


def test_ensure_running_starts_once(home):
    endpoint, started = lifecycle.ensure_running(home)
    assert started
    assert lifecycle.ensure_running(home) == (endpoint, False)
    with pytest.raises(LocalError, match="already running"):
        lifecycle.start(home)


def test_stale_pid_file_is_explained_and_cleaned(home, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (home / "local.json").write_text(
        json.dumps({"pid": dead.pid, "endpoint": "http://127.0.0.1:1", "port": 1})
    )
    assert lifecycle.status(home) is None
    assert "stale" in capsys.readouterr().err and not (home / "local.json").exists()


def test_live_pid_that_does_not_answer(home, monkeypatch):
    monkeypatch.setattr(lifecycle, "DYING_S", 0.2)  # it is not dying: no need to wait long
    (home / "local.json").write_text(
        json.dumps({"pid": os.getpid(), "endpoint": "http://127.0.0.1:1", "port": 1})
    )
    with pytest.raises(LocalError, match="does not answer"):
        lifecycle.status(home)
    (home / "local.json").unlink()


def test_port_in_use_is_a_clear_error(home):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(LocalError, match=f"port {port} .* in use"):
            lifecycle.start(home, port=port)


def test_changed_moto_fails_at_start_naming_the_version(tmp_path, monkeypatch, capsys):
    import moto

    from iotpipe.local import __main__ as entry
    from iotpipe.local import motointernals, patching

    bogus = patching.Service("renamed")
    bogus.patch(motointernals.Shard, "renamed_in_moto_6")(lambda self: None)
    monkeypatch.setitem(patching.SERVICES, "renamed", bogus)
    assert entry.main(["--home", str(tmp_path), "--port", "0"]) == 3
    err = capsys.readouterr().err
    assert f"moto {moto.__version__}" in err and "renamed_in_moto_6" in err


def test_cli_start_status_stop(home, monkeypatch):
    monkeypatch.setenv("IOTPIPE_HOME", str(home))
    runner = CliRunner()
    out = runner.invoke(local, ["start"])
    assert out.exit_code == 0, out.output
    assert "Started the embedded AWS at http://127.0.0.1:" in out.output
    again = runner.invoke(local, ["start"])
    assert again.exit_code == 1 and "already running" in again.output
    status = runner.invoke(local, ["status", "--output", "json"])
    assert status.exit_code == 0
    data = json.loads(status.output)
    assert {"endpoint", "pid", "uptime_s", "counts"} <= set(data)
    table = runner.invoke(local, ["status"])
    assert table.exit_code == 0 and "records put" in table.output
    stopped = runner.invoke(local, ["stop"])
    assert stopped.exit_code == 0 and "Stopped" in stopped.output
    wait_for(lambda: gone(data["pid"]), 5, "the emulator process to exit")
    assert runner.invoke(local, ["status"]).exit_code == 1
    assert runner.invoke(local, ["start", "--port", "70000"]).exit_code == 2


def test_cli_stop_asks_before_losing_what_the_emulator_holds(home, monkeypatch):
    """The walkthrough's worst find: `local stop` silently deleted a live deployment and its
    rows (the emulator kept everything in memory; it still does with --ephemeral). Now it
    names what a stop loses and, without a terminal, refuses unless --yes; the emulator and
    its data stay."""
    import boto3

    monkeypatch.setenv("IOTPIPE_HOME", str(home))
    info = lifecycle.start(home, ephemeral=True)
    kinesis = boto3.client(
        "kinesis",
        endpoint_url=info.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    kinesis.create_stream(StreamName="kept", ShardCount=1)
    kinesis.put_record(StreamName="kept", Data=b"{}", PartitionKey="k")
    runner = CliRunner()

    refused = runner.invoke(local, ["stop"])  # CliRunner's stdin is no terminal
    assert refused.exit_code == 2, refused.output
    assert "1 stream (1 record)" in refused.output and "--yes" in refused.output
    assert not gone(info.pid)
    assert kinesis.describe_stream_summary(StreamName="kept")["StreamDescriptionSummary"]

    stopped = runner.invoke(local, ["stop", "--yes"])
    assert stopped.exit_code == 0 and "Stopped the embedded AWS." in stopped.output
    wait_for(lambda: gone(info.pid), 5, "the emulator process to exit")


def test_cli_stop_of_an_empty_emulator_does_not_ask(home, monkeypatch):
    monkeypatch.setenv("IOTPIPE_HOME", str(home))
    info = lifecycle.start(home)
    assert lifecycle.status(home)["held"] == dict.fromkeys(lifecycle.status(home)["held"], 0)
    stopped = CliRunner().invoke(local, ["stop"])
    assert stopped.exit_code == 0 and "Stopped" in stopped.output
    wait_for(lambda: gone(info.pid), 5, "the emulator process to exit")
