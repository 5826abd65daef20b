"""Changing `timestream.table` against moto, in-process and over HTTP: `up` keeps the old
table (it holds the data and Timestream cannot rename), `plan` and `up` say so, and `down`
deletes every table of the deployment's database before the database.

moto deletes a database that still has tables and replaces (empties) one created again;
AWS (and the embedded AWS) refuse with a ValidationException and a ConflictException.
``strict_timestream`` gives moto AWS's rules, so a `down` that leaves a table behind fails
here as it fails for a user, and a second `up` keeps the old table as AWS does.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto_fixtures import moto_http_server
from provision_helpers import CallLog, aws_config, make_deployment

from iotpipe.cli import main
from iotpipe.config import TimestreamConfig
from iotpipe.engine import Engine, StepFailed

KEPT = "kept: table sensor-data (no longer in the config; `down` deletes it with the database)"


@pytest.fixture(autouse=True)
def strict_timestream(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.timestreamwrite.models import TimestreamWriteBackend

    delete, create = TimestreamWriteBackend.delete_database, TimestreamWriteBackend.create_database

    def delete_database(self: Any, database_name: str) -> None:
        if self.describe_database(database_name).tables:
            raise JsonRESTError(
                "ValidationException",
                f"Database {database_name} still has tables; delete them first.",
            )
        delete(self, database_name)

    def create_database(self: Any, database_name: str, *args: Any, **kwargs: Any) -> Any:
        if database_name in self.databases:
            raise JsonRESTError("ConflictException", f"Database {database_name} already exists.")
        return create(self, database_name, *args, **kwargs)

    monkeypatch.setattr(TimestreamWriteBackend, "delete_database", delete_database)
    monkeypatch.setattr(TimestreamWriteBackend, "create_database", create_database)


def renamed() -> Any:
    return aws_config(timestream=TimestreamConfig(table="other-data"))


def tables(dep: Any) -> list[str]:
    ts = dep.gateway.client("timestream-write")
    return sorted(t["TableName"] for t in ts.list_tables(DatabaseName=dep.names.database)["Tables"])


def test_renamed_table_is_kept_noted_and_deleted_by_down(
    aws_endpoint: str | None, home: Path
) -> None:
    Engine(make_deployment(aws_config(), aws_endpoint), sleep=lambda s: None).apply()
    dep = make_deployment(renamed(), aws_endpoint)
    plan = Engine(dep, sleep=lambda s: None).plan()
    steps = {s.key: s for s in plan.steps}
    assert steps["timestream"].action == "create"
    assert steps["timestream"].kept == ["table sensor-data"]
    assert plan.notes == [KEPT]
    assert steps["timestream"].as_dict()["kept"] == ["table sensor-data"]

    Engine(dep, sleep=lambda s: None).apply()
    assert tables(dep) == ["other-data", "sensor-data"]  # the old table and its data stay
    assert Engine(dep).plan().notes == [KEPT]  # still said, with nothing to change
    assert Engine(dep).strays() == {"timestream": ["table sensor-data"]}

    log = CallLog()
    report = Engine(make_deployment(renamed(), aws_endpoint, log), sleep=lambda s: None).destroy()
    entry = next(r for r in report if r["resource"] == "timestream")
    assert entry["deleted"] is True and entry["also"] == ["table sensor-data"]
    ts_calls = [op for svc, op in log.mutating if svc == "timestream-write"]
    assert sorted(ts_calls[:2]) == ["DeleteTable", "DeleteTable"]
    assert ts_calls[2:] == ["DeleteDatabase"]
    databases = dep.gateway.client("timestream-write").list_databases()["Databases"]
    assert dep.names.database not in [d["DatabaseName"] for d in databases]


def test_plan_of_the_rename_shows_the_leaves_that_changed(
    aws_endpoint: str | None, home: Path
) -> None:
    Engine(make_deployment(aws_config(), aws_endpoint), sleep=lambda s: None).apply()
    dep = make_deployment(renamed(), aws_endpoint)
    steps = {s.key: s for s in Engine(dep).plan().steps}
    assert ("environment.TIMESTREAM_TABLE", "sensor-data", "other-data") in steps[
        "function"
    ].leaves()
    arn = dep.names.table_arn
    policy = [(p, o, n) for p, o, n in steps["function_role"].leaves()]
    assert len(policy) == 1, policy
    path, old, new = policy[0]
    assert path.startswith("policy.Statement[") and path.endswith("].Resource[0]")
    assert (old, new) == (arn.replace("other-data", "sensor-data"), arn)
    detail = steps["function"].as_dict()["changes"]["environment"]["detail"]
    assert {"path": "environment.TIMESTREAM_TABLE", "old": "sensor-data", "new": "other-data"} in (
        detail
    )


def test_a_failed_down_says_what_to_fix_not_to_run_down(
    aws_endpoint: str | None, home: Path
) -> None:
    Engine(make_deployment(aws_config(), aws_endpoint), sleep=lambda s: None).apply()
    log = CallLog()
    log.fail_at = ("timestream-write", "DeleteDatabase")
    dep = make_deployment(aws_config(), aws_endpoint, log)
    with pytest.raises(StepFailed) as info:
        Engine(dep, sleep=lambda s: None).destroy()
    message = str(info.value)
    assert "injected failure at timestream-write DeleteDatabase. What was deleted" in message
    assert "then run 'iotpipe down' again" in message and ".." not in message
    assert "'iotpipe down' to remove everything" not in message
    Engine(dep, sleep=lambda s: None).destroy()  # the cause gone, down finishes


# --- the walkthrough, through the CLI as a user runs it --------------------------------------

CONFIG = "name: iot-telemetry\ntarget: aws\nregion: us-east-1\ntimestream:\n  table: {table}\n"


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IOTPIPE_HOME", str(tmp_path / ".iotpipe"))
    monkeypatch.delenv("IOTPIPE_CONFIG", raising=False)
    with moto_http_server() as endpoint:
        # moto's backends are per process, not per server: start from an empty account.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
        yield endpoint


def run(server: str, table: str, *args: str) -> Any:
    Path("iotpipe.yaml").write_text(CONFIG.format(table=table))
    return CliRunner(env={"COLUMNS": "100"}).invoke(main, ["--endpoint-url", server, *args])


def test_cli_plan_up_and_down_after_changing_the_table(server: str) -> None:
    assert run(server, "sensor-data", "up").exit_code == 0

    plan = run(server, "other-data", "plan")
    assert plan.exit_code == 0, plan.output
    out = " ".join(plan.stdout.split())  # the table may wrap a long line
    assert KEPT in out
    assert "environment.TIMESTREAM_TABLE: sensor-data -> other-data" in out
    assert "table/sensor-data -> " in out and "table/other-data" in out
    assert "'Statement': [{" not in out  # no document cut before its change

    as_json = json.loads(run(server, "other-data", "-o", "json", "plan").stdout)
    assert as_json["notes"] == [KEPT]
    fn = next(s for s in as_json["steps"] if s["resource"] == "function")
    assert set(fn["changes"]["environment"]) == {"old", "new", "detail"}

    up = run(server, "other-data", "up")
    assert up.exit_code == 0, up.output
    assert KEPT in " ".join(up.stderr.split())

    down = run(server, "other-data", "down", "--yes")
    assert down.exit_code == 0, down.output
    said = " ".join(down.output.split())
    assert "including table sensor-data, which the config no longer names" in said
    assert "resources deleted, including table sensor-data, which the config" in said
    assert "still has tables" not in said
    ts = boto3.client("timestream-write", endpoint_url=server, region_name="us-east-1")
    assert ts.list_databases()["Databases"] == []  # the database went, with both tables


def test_down_asks_about_the_tables_the_config_no_longer_names(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    assert run(server, "sensor-data", "up").exit_code == 0
    assert run(server, "other-data", "up").exit_code == 0
    no_terminal = run(server, "other-data", "down")
    assert no_terminal.exit_code == 2
    assert "including table sensor-data, which the config no longer names" in no_terminal.output

    terminal = types.SimpleNamespace(stdin=types.SimpleNamespace(isatty=lambda: True))
    monkeypatch.setattr("iotpipe.cli.provision.sys", terminal)
    Path("iotpipe.yaml").write_text(CONFIG.format(table="other-data"))
    asked = CliRunner().invoke(main, ["--endpoint-url", server, "down"], input="n\n")
    prompt = " ".join(asked.output.split())
    assert (
        "and all its data, including table sensor-data, which the config no longer names?" in prompt
    )
    ts = boto3.client("timestream-write", endpoint_url=server, region_name="us-east-1")
    assert len(ts.list_databases()["Databases"]) == 1  # answered no: nothing deleted


def test_down_yes_after_renaming_the_table_deletes_everything(server: str) -> None:
    """The walkthrough's failure: exit 1, "still has tables; delete them first.." every time."""
    assert run(server, "sensor-data", "up").exit_code == 0
    assert run(server, "other-data", "up").exit_code == 0
    down = run(server, "other-data", "down", "--yes")
    assert down.exit_code == 0, down.output
    ts = boto3.client("timestream-write", endpoint_url=server, region_name="us-east-1")
    assert ts.list_databases()["Databases"] == []
    assert run(server, "other-data", "down", "--yes").exit_code == 0  # nothing left: fine
