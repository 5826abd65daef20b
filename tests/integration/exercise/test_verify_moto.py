"""verify against a moto server: it catches each broken resource in turn (exit 3, with the
fix), and passes again once 'up' has repaired it. The probe needs records to flow, so it is
tested on the embedded AWS (tests/e2e)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from iotpipe.aws import Gateway
from iotpipe.cli import main
from iotpipe.config import Config
from iotpipe.engine import Engine
from iotpipe.target import Deployment, resolve
from iotpipe.verify import verify

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployed(
    moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, Path]]:
    home = tmp_path_factory.mktemp("home")
    mp = pytest.MonkeyPatch()
    mp.setenv("IOTPIPE_HOME", str(home / ".iotpipe"))
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        mp.setenv(k, "testing")
    config_file = home / "iotpipe.yaml"
    config_file.write_text("name: verifyme\ntarget: aws\nregion: us-east-1\n")
    config = Config(name="verifyme", target="aws", source=str(config_file))
    gateway = Gateway(region="us-east-1", endpoint_url=moto_endpoint, local=True)
    dep = resolve(config, gateway, create_suffix=True)
    Engine(dep, sleep=lambda s: None).apply()
    try:
        yield dep, config_file
    finally:
        Engine(dep, sleep=lambda s: None).destroy()
        mp.undo()


def cli_verify(dep: Deployment, config_file: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        main,
        [
            "-c",
            str(config_file),
            "--endpoint-url",
            dep.gateway.endpoint_url,
            "verify",
            "-o",
            "json",
        ],
    )
    return result.exit_code, json.loads(result.stdout)


def other_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(
            "lambda_handler/handler.py", "def lambda_handler(event, context):\n    return {}\n"
        )
    return buf.getvalue()


def delete_mapping(dep: Deployment) -> None:
    lam = dep.gateway.client("lambda")
    for m in lam.list_event_source_mappings(FunctionName=dep.names.function)["EventSourceMappings"]:
        lam.delete_event_source_mapping(UUID=m["UUID"])


def disable_rule(dep: Deployment) -> None:
    dep.gateway.client("iot").disable_topic_rule(ruleName=dep.names.rule)


def change_code(dep: Deployment) -> None:
    dep.gateway.client("lambda").update_function_code(
        FunctionName=dep.names.function, ZipFile=other_zip()
    )


def drop_table(dep: Deployment) -> None:
    dep.gateway.client("timestream-write").delete_table(
        DatabaseName=dep.names.database, TableName=dep.names.table
    )


BREAKS: list[tuple[Callable[[Deployment], None], str, str, str]] = [
    (delete_mapping, "Lambda event source mapping", "missing", "iotpipe up"),
    (disable_rule, "IoT topic rule", "disabled: True (expected False)", "rule is disabled"),
    (change_code, "Lambda function", "code_sha256", "not this checkout's package"),
    (drop_table, "Timestream database and table", "missing", "iotpipe up"),
]


def test_healthy_deployment_passes(deployed: tuple[Deployment, Path]) -> None:
    dep, config_file = deployed
    checks = verify(dep)
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    names = " | ".join(c.name for c in checks)
    for expected in (
        "Kinesis stream is ACTIVE",
        "Timestream table is ACTIVE",
        "Event source mapping is Enabled",
        "Lambda function is Active",
        "Failure queue depth",
        "IAM role (function)",
        "IAM role (IoT rule)",
    ):
        assert expected in names
    code, out = cli_verify(dep, config_file)
    assert code == 0 and out["ok"] is True


@pytest.mark.parametrize(
    ("breaker", "check", "detail", "fix"), BREAKS, ids=[b[0].__name__ for b in BREAKS]
)
def test_each_broken_resource_fails_with_exit_3_and_a_fix(
    deployed: tuple[Deployment, Path],
    breaker: Callable[[Deployment], None],
    check: str,
    detail: str,
    fix: str,
) -> None:
    dep, config_file = deployed
    breaker(dep)
    try:
        code, out = cli_verify(dep, config_file)
        assert code == 3 and out["ok"] is False
        failed = [c for c in out["checks"] if not c["ok"]]
        assert len(failed) == 1, failed
        assert failed[0]["name"].startswith(check)
        assert detail in failed[0]["detail"] and fix in failed[0]["fix"]
    finally:
        Engine(dep, sleep=lambda s: None).apply()  # repair for the next case
    assert all(c.ok for c in verify(dep))


def test_unhealthy_mapping_state_is_reported(deployed: tuple[Deployment, Path]) -> None:
    dep, _ = deployed
    lam = dep.gateway.client("lambda")
    uuid = lam.list_event_source_mappings(FunctionName=dep.names.function)["EventSourceMappings"][
        0
    ]["UUID"]
    lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    try:
        failed = [c for c in verify(dep) if not c.ok]
        assert [c.name for c in failed] == ["Event source mapping is Enabled"]
        assert "Disabled" in failed[0].detail and "iotpipe up" in failed[0].fix
    finally:
        lam.update_event_source_mapping(UUID=uuid, Enabled=True)


def test_answering_no_to_down_deletes_nothing_and_exits_0(
    deployed: tuple[Deployment, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A "no" is an answer, not a failure: it used to print click's "Aborted!", exit 1."""
    import types

    dep, config_file = deployed
    monkeypatch.setattr(
        "iotpipe.cli.provision.sys",
        types.SimpleNamespace(stdin=types.SimpleNamespace(isatty=lambda: True)),
    )
    args = ["-c", str(config_file), "--endpoint-url", dep.gateway.endpoint_url, "down"]
    result = CliRunner().invoke(main, args, input="n\n")
    assert result.exit_code == 0, result.output
    assert "Nothing was deleted." in result.output and "Aborted" not in result.output
    assert dep.names.stream in dep.gateway.client("kinesis").list_streams()["StreamNames"]
