"""The control plane survives: a deployed pipeline across stop/start and kill -9, a crash
mid-snapshot, a damaged or foreign snapshot, `local reset`, and `--ephemeral`.

The pipeline is deployed as a user deploys it (`iotpipe up` as a subprocess in its own
folder with IOTPIPE_HOME), with Timestream and the lake on, so every kind of resource
exists: IAM, Kinesis, Lambda (code and mappings), Timestream, SQS, logs, IoT, S3, Glue,
Athena, Firehose.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_process import run_iotpipe, user_env
from click.testing import CliRunner
from localaws_helpers import aws, wait_for

from iotpipe.cli import local as local_cli
from iotpipe.local import lifecycle

pytestmark = pytest.mark.integration

CONFIG = """\
name: persist
target: local
event_source:
  batching_window_s: 0
lake:
  enabled: true
  buffer_s: 1
"""


def inventory(endpoint: str) -> dict[str, Any]:
    """Every control-plane resource by name (and each function's code hash)."""
    c = {s: aws(endpoint, s) for s in ("iam", "kinesis", "lambda", "timestream-write", "sqs")}
    c |= {s: aws(endpoint, s) for s in ("logs", "iot", "s3", "glue", "athena", "firehose")}
    functions = c["lambda"].list_functions()["Functions"]
    dbs = [d["DatabaseName"] for d in c["timestream-write"].list_databases()["Databases"]]
    return {
        "roles": sorted(r["RoleName"] for r in c["iam"].list_roles()["Roles"]),
        "policies": sorted(
            p["PolicyName"] for p in c["iam"].list_policies(Scope="Local")["Policies"]
        ),
        "streams": sorted(c["kinesis"].list_streams()["StreamNames"]),
        "functions": sorted((f["FunctionName"], f["CodeSha256"]) for f in functions),
        "mappings": sorted(
            (m["UUID"], m["State"])
            for m in c["lambda"].list_event_source_mappings()["EventSourceMappings"]
        ),
        "tables": sorted(
            (db, t["TableName"])
            for db in dbs
            for t in c["timestream-write"].list_tables(DatabaseName=db)["Tables"]
        ),
        "queues": sorted(c["sqs"].list_queues().get("QueueUrls", [])),
        "log_groups": sorted(
            g["logGroupName"] for g in c["logs"].describe_log_groups()["logGroups"]
        ),
        "rules": sorted(r["ruleName"] for r in c["iot"].list_topic_rules()["rules"]),
        "iot_policies": sorted(p["policyName"] for p in c["iot"].list_policies()["policies"]),
        "things": sorted(t["thingName"] for t in c["iot"].list_things()["things"]),
        "thing_groups": sorted(g["groupName"] for g in c["iot"].list_thing_groups()["thingGroups"]),
        "certificates": sorted(
            x["certificateId"] for x in c["iot"].list_certificates()["certificates"]
        ),
        "buckets": sorted(b["Name"] for b in c["s3"].list_buckets()["Buckets"]),
        "glue": sorted(
            (d["Name"], t["Name"])
            for d in c["glue"].get_databases()["DatabaseList"]
            for t in c["glue"].get_tables(DatabaseName=d["Name"])["TableList"]
        ),
        "workgroups": sorted(w["Name"] for w in c["athena"].list_work_groups()["WorkGroups"]),
        "delivery_streams": sorted(c["firehose"].list_delivery_streams()["DeliveryStreamNames"]),
    }


class Deployed:
    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work, self.env = work, env
        self.home = Path(env["IOTPIPE_HOME"])

    @property
    def endpoint(self) -> str:
        state = lifecycle.read_state(self.home)
        assert state is not None
        return str(state["endpoint"])

    def cli(self, *args: str) -> Any:
        return run_iotpipe(self.work, self.env, *args, timeout=240)

    def send(self, count: int, seed: int) -> int:
        sent = json.loads(
            self.cli("send-test", "-n", str(count), "--seed", str(seed), "-o", "json").stdout
        )
        assert sent["failed"] == 0
        return int(sent["sent"] - sent["invalid_injected"])

    def lake_rows(self) -> int:
        """Distinct (device, time) rows Athena counts in the lake table."""
        athena, glue = aws(self.endpoint, "athena"), aws(self.endpoint, "glue")
        db = next(d["Name"] for d in glue.get_databases()["DatabaseList"])
        wg = next(
            w["Name"] for w in athena.list_work_groups()["WorkGroups"] if w["Name"] != "primary"
        )
        sql = f'SELECT count(*) FROM (SELECT DISTINCT device_id, time FROM "{db}"."telemetry")'
        qid = athena.start_query_execution(QueryString=sql, WorkGroup=wg)["QueryExecutionId"]
        done = wait_for(lambda: _finished(athena, qid), 30, "an Athena query")
        assert done["Status"]["State"] == "SUCCEEDED", done["Status"]
        rows = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
        return int(rows[1]["Data"][0].get("VarCharValue") or 0)

    def snapshot_writes(self) -> int:
        data = lifecycle.status(self.home)
        assert data is not None
        return int(data["persistence"]["snapshot"]["writes"])


def _finished(athena: Any, qid: str) -> dict[str, Any] | None:
    execution = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    return execution if execution["Status"]["State"] not in ("QUEUED", "RUNNING") else None


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    work = tmp_path_factory.mktemp("persist")
    (work / "iotpipe.yaml").write_text(CONFIG)
    env = user_env(work / ".iotpipe")
    try:
        up = run_iotpipe(work, env, "up", "-o", "json", timeout=240)
        assert up.returncode == 0, up.stderr
        yield Deployed(work, env)
    finally:
        lifecycle.stop(work / ".iotpipe")


def _devices_and_a_managed_policy(endpoint: str) -> None:
    """What `up` does not make but a user's fleet has: things, certificates, a policy."""
    iot = aws(endpoint, "iot")
    iot.create_thing(thingName="sensor-1")
    cert = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    iot.attach_thing_principal(thingName="sensor-1", principal=cert)
    aws(endpoint, "iam").create_policy(PolicyName="extra", PolicyDocument=POLICY)


POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
)


def _delivered(home: Path) -> dict[str, str] | None:
    """The Firehose delivery's per-shard checkpoints once it delivered something."""
    streams = (lifecycle.status(home) or {}).get("delivery_streams") or [{}]
    return streams[0].get("checkpoints") if streams[0].get("delivered_rows") else None


def test_a_deployed_pipeline_survives_stop_and_start(deployed):
    _devices_and_a_managed_policy(deployed.endpoint)
    valid = deployed.send(30, seed=1)
    wait_for(lambda: _delivered(deployed.home), 60, "a Firehose delivery")
    before = inventory(deployed.endpoint)
    assert all(before.values()), {k: v for k, v in before.items() if not v}
    valid += deployed.send(30, seed=2)  # stopped before Firehose's next flush (buffer_s 1)
    assert lifecycle.stop(deployed.home)
    lifecycle.start(deployed.home)
    assert inventory(deployed.endpoint) == before
    # Firehose resumes at its saved checkpoint, not at the shard's end: nothing skipped
    wait_for(lambda: deployed.lake_rows() >= valid, 60, f"{valid} rows in the lake")
    assert deployed.lake_rows() == valid

    verify = deployed.cli("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    plan = json.loads(deployed.cli("plan", "-o", "json").stdout)
    actions = [s["action"] for s in plan["steps"]]
    assert set(actions) <= {"unchanged", "absent"} and actions.count("unchanged") >= 15, plan
    writes = deployed.snapshot_writes()
    up = deployed.cli("up", "-o", "json")
    assert up.returncode == 0 and json.loads(up.stdout)["changed"] == [], up.stdout
    assert deployed.snapshot_writes() == writes  # not one mutating control-plane call

    # the function workers come back from the restored code: records are processed
    sent = json.loads(deployed.cli("send-test", "-n", "20", "-o", "json").stdout)
    assert sent["failed"] == 0
    wait_for(
        lambda: any(
            f.get("invocations") for f in (lifecycle.status(deployed.home) or {})["functions"]
        ),
        timeout=60,
        what="an invocation of a restored function",
    )


def test_a_persistent_stop_does_not_ask(tmp_path):
    home = _home(tmp_path)
    info = lifecycle.start(home)
    aws(info.endpoint, "kinesis").create_stream(StreamName="kept", ShardCount=1)
    stopped = run_iotpipe(tmp_path, user_env(home), "local", "stop")  # no terminal
    assert stopped.returncode == 0 and "Stopped" in stopped.stdout, stopped.stderr
    assert "lose" not in stopped.stderr


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


def test_kill_9_right_after_a_create_keeps_it(tmp_path):
    home = _home(tmp_path)
    info = lifecycle.start(home)
    try:
        aws(info.endpoint, "kinesis").create_stream(StreamName="acked", ShardCount=1)
        aws(info.endpoint, "sqs").create_queue(QueueName="acked-q")
        os.kill(info.pid, signal.SIGKILL)
        wait_for(lambda: not lifecycle._alive(info.pid), 5, "the emulator to die")
        assert (home / "local.json").exists()  # stale: must not block the start
        again = lifecycle.start(home)
        assert "acked" in aws(again.endpoint, "kinesis").list_streams()["StreamNames"]
        assert aws(again.endpoint, "sqs").list_queues()["QueueUrls"][0].endswith("/acked-q")
    finally:
        lifecycle.stop(home)


def _with_a_stream(home: Path) -> Path:
    info = lifecycle.start(home)
    aws(info.endpoint, "kinesis").create_stream(StreamName="kept", ShardCount=1)
    lifecycle.stop(home)
    return home / "data" / "control" / "snapshot.pickle"


def test_a_crash_mid_snapshot_leaves_the_previous_one(tmp_path):
    home = _home(tmp_path)
    snap = _with_a_stream(home)
    (snap.parent / ".snapshot.pickle.tmp").write_bytes(snap.read_bytes()[:100])  # half-written
    info = lifecycle.start(home)
    try:
        assert aws(info.endpoint, "kinesis").list_streams()["StreamNames"] == ["kept"]
    finally:
        lifecycle.stop(home)


def test_a_truncated_snapshot_stops_the_start_with_a_way_out(tmp_path):
    home = _home(tmp_path)
    snap = _with_a_stream(home)
    snap.write_bytes(snap.read_bytes()[:-50])
    damaged = hashlib.sha256(snap.read_bytes()).hexdigest()
    with pytest.raises(lifecycle.LocalError) as err:
        lifecycle.start(home)
    message = str(err.value)
    assert "truncated or corrupt" in message and "iotpipe local reset" in message
    assert "Traceback" not in message and "\n" not in message
    assert hashlib.sha256(snap.read_bytes()).hexdigest() == damaged  # never wiped

    cli = run_iotpipe(tmp_path, user_env(home), "local", "start")
    assert cli.returncode == 1 and "truncated or corrupt" in cli.stderr, cli.stderr
    assert "Traceback" not in cli.stderr
    assert lifecycle.read_state(home) is None


def test_a_snapshot_of_another_moto_version_is_refused(tmp_path):
    home = _home(tmp_path)
    snap = _with_a_stream(home)
    data = snap.read_bytes()
    magic, _, rest = data.partition(b"\n")
    head, _, body = rest.partition(b"\n")
    header = {**json.loads(head), "moto": "4.0.0"}
    snap.write_bytes(magic + b"\n" + json.dumps(header).encode() + b"\n" + body)
    with pytest.raises(lifecycle.LocalError, match=r"moto 4\.0\.0.*--ephemeral"):
        lifecycle.start(home)


def test_reset_asks_refuses_without_a_terminal_and_deletes_with_yes(tmp_path, monkeypatch):
    home = _home(tmp_path)
    _with_a_stream(home)
    info = lifecycle.start(home)
    env = user_env(home)
    refused = run_iotpipe(tmp_path, env, "local", "reset")
    assert refused.returncode == 2 and "--yes" in refused.stderr, refused.stderr
    assert (home / "data").exists() and lifecycle.status(home) is not None

    monkeypatch.setenv("IOTPIPE_HOME", str(home))
    monkeypatch.setattr(local_cli, "_interactive", lambda: True)
    said_no = CliRunner().invoke(local_cli.local, ["reset"], input="n\n")
    assert said_no.exit_code == 0 and "KB" in said_no.output and "stopped first" in said_no.output
    assert (home / "data").exists()

    said_yes = CliRunner().invoke(local_cli.local, ["reset"], input="y\n")
    assert said_yes.exit_code == 0, said_yes.output
    assert not (home / "data").exists()
    wait_for(lambda: not lifecycle._alive(info.pid), 10, "the emulator to stop")

    again = lifecycle.start(home)
    try:
        assert aws(again.endpoint, "kinesis").list_streams()["StreamNames"] == []
        done = run_iotpipe(tmp_path, env, "local", "reset", "--yes")
        assert done.returncode == 0 and not (home / "data").exists()
    finally:
        lifecycle.stop(home)


def test_ephemeral_writes_nothing_and_leaves_saved_state_alone(tmp_path):
    home = _home(tmp_path)
    snap = _with_a_stream(home)
    before = {p: p.read_bytes() for p in (home / "data").rglob("*") if p.is_file()}
    info = lifecycle.start(home, ephemeral=True)
    try:
        kinesis = aws(info.endpoint, "kinesis")
        assert kinesis.list_streams()["StreamNames"] == []  # in memory, as before
        kinesis.create_stream(StreamName="forgotten", ShardCount=1)
        assert lifecycle.status(home)["persistence"]["persistent"] is False
    finally:
        lifecycle.stop(home)
    after = {p: p.read_bytes() for p in (home / "data").rglob("*") if p.is_file()}
    assert after == before and snap in after
    info = lifecycle.start(home)
    try:
        assert aws(info.endpoint, "kinesis").list_streams()["StreamNames"] == ["kept"]
    finally:
        lifecycle.stop(home)

    fresh = tmp_path / "fresh"
    lifecycle.start(fresh, ephemeral=True)
    lifecycle.stop(fresh)
    assert not (fresh / "data").exists()
