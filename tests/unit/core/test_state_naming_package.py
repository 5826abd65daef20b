"""State file atomicity, name/ARN derivation and the deterministic package."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from iotpipe.cli import main
from iotpipe.config import Config, TimestreamConfig
from iotpipe.naming import Names, new_suffix
from iotpipe.package import build_function_zip, settings_from_config
from iotpipe.state import State


def test_state_is_written_atomically_and_reloaded(tmp_path: Path) -> None:
    state = State.for_deployment("demo", tmp_path)
    state.set(suffix="abc123")
    state.record("stream", {"arn": "arn:aws:kinesis:us-east-1:1:stream/s"})
    again = State.for_deployment("demo", tmp_path)
    assert again.suffix == "abc123" and again.resources["stream"]["arn"].endswith("/s")
    assert [p.name for p in tmp_path.iterdir()] == ["demo.json"]  # no temp files left
    again.record("stream", None)
    assert json.loads((tmp_path / "demo.json").read_text())["resources"] == {}


def test_corrupt_state_is_treated_as_absent(tmp_path: Path) -> None:
    (tmp_path / "demo.json").write_text("{not json")
    assert State.for_deployment("demo", tmp_path).suffix is None


def test_names_fit_every_service_limit_for_the_longest_name() -> None:
    names = Names.of(Config(name="a" * 23 + "b"), "abcdefgh", "123456789012")
    assert len(names.function) <= 64 and len(names.function_role) <= 64
    assert len(names.rule_role) <= 64 and len(names.queue) <= 80
    assert re.fullmatch(r"[A-Za-z0-9_]+", names.rule)
    assert re.fullmatch(r"[A-Za-z0-9_]+", names.legacy("channel"))


def test_arns_use_the_partition_from_sts() -> None:
    names = Names.of(Config(region="cn-north-1"), "abc123", "123456789012", "aws-cn")
    for arn in (
        names.stream_arn,
        names.table_arn,
        names.queue_arn,
        names.rule_arn,
        names.function_arn,
        names.log_group_arn,
        names.role_arn("r"),
    ):
        assert arn.startswith("arn:aws-cn:"), arn
    assert names.role_arn("r") == "arn:aws-cn:iam::123456789012:role/r"
    assert names.tags({"team": "x"}) == {"team": "x", "iotpipe:deployment": "iot-telemetry-abc123"}


def test_new_suffix_shape() -> None:
    suffixes = {new_suffix() for _ in range(50)}
    assert all(re.fullmatch(r"[a-z0-9]{6}", s) for s in suffixes) and len(suffixes) > 45


def test_function_zip_is_deterministic_and_carries_settings() -> None:
    cfg = Config(timestream=TimestreamConfig(record_model="single"))
    first = build_function_zip(settings_from_config(cfg))
    assert first == build_function_zip(settings_from_config(cfg))
    with zipfile.ZipFile(io.BytesIO(first)) as zf:
        names = zf.namelist()
        settings = json.loads(zf.read("lambda_handler/settings.json"))
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert names == sorted(names)
    assert "lambda_handler/handler.py" in names and "lambda_handler/__init__.py" in names
    assert not any("__pycache__" in n for n in names)
    assert settings["record_model"] == "single"
    assert settings["sensors"]["temperature"] == {"min": -50.0, "max": 150.0, "inclusive": True}
    other = build_function_zip(settings_from_config(Config()))
    assert other != first  # a config change is a code change for Lambda


def test_the_settings_carry_the_tables_retention_and_the_function_reads_them() -> None:
    """Issue 8 item 7: magnetic_retention_days reached the function as null before."""
    from lambda_handler import settings as function_settings

    cfg = Config(
        timestream=TimestreamConfig(
            magnetic_writes=True, magnetic_retention_days=30, memory_retention_hours=12
        )
    )
    with zipfile.ZipFile(io.BytesIO(build_function_zip(settings_from_config(cfg)))) as zf:
        doc = json.loads(zf.read("lambda_handler/settings.json"))
    assert (doc["magnetic_retention_days"], doc["memory_retention_hours"]) == (30, 12)
    loaded = function_settings.from_dict(doc)
    assert (loaded.magnetic_writes, loaded.magnetic_retention_days) == (True, 30)
    default = settings_from_config(Config())
    assert default["magnetic_retention_days"] == Config().timestream.magnetic_retention_days


def test_missing_credentials_for_aws_target_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("IOTPIPE_HOME", str(tmp_path / "home"))
    (tmp_path / "c.yaml").write_text("target: aws\n")
    result = CliRunner().invoke(main, ["-c", str(tmp_path / "c.yaml"), "plan"])
    assert result.exit_code == 2, result.output
    assert "No AWS credentials found" in result.output


def test_role_names_carry_the_region_and_fit_iam_for_the_longest_inputs() -> None:
    """IAM is global: the same name and suffix in two regions must not share a role."""
    longest = Config(name="a" * 23 + "b")
    east = Names.of(longest, "abcdefgh", "123456789012", region="us-east-1")
    far = Names.of(longest, "abcdefgh", "123456789012", region="x" * 15 + "-ab-1")  # 20 chars
    assert east.function_role.endswith("-fn-role-us-east-1-abcdefgh")
    assert east.rule_role.endswith("-rule-role-us-east-1-abcdefgh")
    assert far.function_role != east.function_role and far.rule_role != east.rule_role
    assert len(far.function_role) <= 64 and len(far.rule_role) <= 64
    assert east.retired_roles() == (
        f"{longest.name}-fn-role-abcdefgh",
        f"{longest.name}-rule-role-abcdefgh",
    )


def test_names_use_the_effective_region_not_the_configs() -> None:
    names = Names.of(Config(region="us-east-1"), "abc123", "123456789012", region="eu-west-1")
    assert names.region == "eu-west-1" and ":eu-west-1:" in names.stream_arn
