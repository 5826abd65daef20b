"""Config validation: every bad value names file, line, key and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from iotpipe import config
from iotpipe.config import ConfigError

REPO = Path(__file__).resolve().parents[3]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "iotpipe.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, text), environ or {})
    return info.value.problems


def test_shipped_configs_load_with_design_defaults() -> None:
    local = config.load(REPO / "config/iotpipe.yaml", {})
    aws = config.load(REPO / "config/aws.example.yaml", {})
    assert local.target == "local" and aws.target == "aws"
    assert local.event_source.starting_position == "TRIM_HORIZON"
    assert local.event_source.max_retry_attempts == 5
    assert local.event_source.bisect_on_error is True
    assert local.iot_rule.partition_key == "${deviceId}"  # not taken for an env var
    assert local.devices["sensor001"].attributes == {"last_maintenance": "2026-09-01"}
    assert set(local.sensors) == {"temperature", "humidity", "pressure", "vibration"}


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, ""), {})
    assert cfg.name == "iot-telemetry" and cfg.suffix is None and cfg.target == "local"
    assert cfg.timestream.record_model == "multi"


@pytest.mark.parametrize(
    ("text", "line", "key", "allowed"),
    [
        ("event_source:\n  batch_size: 20000\n", 2, "event_source.batch_size", "1 to 10000"),
        (
            "event_source:\n  batching_window_s: 301\n",
            2,
            "event_source.batching_window_s",
            "0 to 300",
        ),
        (
            "event_source:\n  max_retry_attempts: -2\n",
            2,
            "event_source.max_retry_attempts",
            "or -1",
        ),
        (
            "event_source:\n  max_record_age_s: 30\n",
            2,
            "event_source.max_record_age_s",
            "60 to 604800",
        ),
        (
            "event_source:\n  starting_position: AT_NOON\n",
            2,
            "event_source.starting_position",
            "TRIM_HORIZON",
        ),
        (
            "timestream:\n  memory_retention_hours: 9000\n",
            2,
            "timestream.memory_retention_hours",
            "1 to 8766",
        ),
        (
            "timestream:\n  magnetic_retention_days: 0\n",
            2,
            "timestream.magnetic_retention_days",
            "1 to 73000",
        ),
        ("timestream:\n  record_model: wide\n", 2, "timestream.record_model", "multi, single"),
        ("function:\n  memory_mb: '256'\n", 2, "function.memory_mb", "not an integer"),
        ("function:\n  runtime: python2.7\n", 2, "function.runtime", "python3.13"),
        ("stream:\n  retention_hours: true\n", 2, "stream.retention_hours", "not an integer"),
        ("name: Iot_Telemetry\n", 1, "name", "a-z 0-9 -"),
        ("name: a-very-long-deployment-name-indeed\n", 1, "name", "2-24"),
        ("suffix: ABC\n", 1, "suffix", "4-8 of a-z 0-9"),
        ("target: cloud\n", 1, "target", "local, aws"),
        ("region: mars\n", 1, "region", "AWS Region"),
        ('iot_rule:\n  topic: "iot/x\' OR 1=1 --"\n', 2, "iot_rule.topic", "allowed per level"),
        ("iot_rule:\n  topic: iot/#/data\n", 2, "iot_rule.topic", "# as the last level"),
        ("iot_rule:\n  topic: a/b/c/d/e/f/g/h/i\n", 2, "iot_rule.topic", "8 levels"),
        ('iot_rule:\n  partition_key: "a\\"b"\n', 2, "iot_rule.partition_key", "templates"),
        ("timestream:\n  table: 'a b'\n", 2, "timestream.table", "3-256"),
        ("sensors:\n  time: {min: 0, max: 1}\n", 2, "sensors.time", "measure name"),
        ("sensors:\n  DeviceId: {min: 0, max: 1}\n", 2, "sensors.DeviceId", "reserved"),
        ("sensors:\n  measure_name2: {min: 0, max: 1}\n", 2, "sensors.measure_name2", "reserved"),
        ("devices:\n  s1: {DeviceType: x}\n", 2, "devices.s1.DeviceType", "reserved"),
        ("devices:\n  s1: {ts_zone: x}\n", 2, "devices.s1.ts_zone", "not starting with ts_"),
        (
            f"devices:\n  s1: {{{'a' * 61}: x}}\n",
            2,
            f"devices.s1.{'a' * 37}... (61 characters)",
            "at most 60",
        ),
        ("devices:\n  s1: {humidity: x}\n", 2, "devices.s1.humidity", "is also a sensor name"),
        ("sensors:\n  t: {min: 5, max: 1}\n", 2, "sensors.t", "must be below max"),
        ("sensors:\n  t: {min: 0}\n", 2, "sensors.t", "'max' is required"),
        ("sensors:\n  t: {min: 0, max: .nan}\n", 2, "sensors.t.max", "finite number"),
        ("devices:\n  'bad id!': {location: x}\n", 2, "devices.bad id!", "device ids"),
        ("devices:\n  s1: {location: ''}\n", 2, "devices.s1.location", "not blank"),
        ("tags:\n  'aws:owner': me\n", 2, "tags.aws:owner", "reserved"),
        ("legacy:\n  enabled: yes please\n", 2, "legacy.enabled", "true or false"),
        ("colour: blue\n", 1, "colour", "allowed: name, suffix"),
        (
            "stream:\n  shard_count: 2\n",
            2,
            "stream.shard_count",
            "allowed: kms_key, mode, retention_hours, shards",
        ),
    ],
)
def test_bad_values_name_line_key_and_what_is_allowed(
    tmp_path: Path, text: str, line: int, key: str, allowed: str
) -> None:
    found = problems(tmp_path, text)
    assert len(found) == 1, found
    assert found[0].startswith(f"{tmp_path / 'iotpipe.yaml'}:{line}: {key}: "), found[0]
    assert allowed in found[0]


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    found = problems(tmp_path, "name: X\nevent_source:\n  batch_size: 0\n  bogus: 1\n")
    assert [p.split(": ")[1] for p in found] == [
        "name",
        "event_source.batch_size",
        "event_source.bogus",
    ]


def test_duplicate_keys_are_an_error_not_last_wins(tmp_path: Path) -> None:
    found = problems(tmp_path, "function:\n  memory_mb: 256\n  memory_mb: 512\n")
    assert found == [
        f"{tmp_path / 'iotpipe.yaml'}:3: memory_mb: duplicate key 'memory_mb' (first on line 2)"
    ]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    found = problems(tmp_path, "name: a\nstream: [unclosed\n")
    assert "invalid YAML" in found[0]
    assert found[0].split(":")[1] in {"2", "3"}  # PyYAML marks the end of the broken flow


def test_env_interpolation_types_and_defaults(tmp_path: Path) -> None:
    text = (
        "name: ${NAME}\n"
        'function:\n  memory_mb: ${MEM:-512}\n  timeout_s: "${TIMEOUT}"\n'
        "tags:\n  owner: team-${TEAM}\n"
        'devices:\n  s1: {location: "hall-$${NOT_A_VAR}"}\n'
    )
    cfg = config.load(write(tmp_path, text), {"NAME": "plant-a", "TIMEOUT": "30", "TEAM": "ops"})
    assert cfg.name == "plant-a"
    assert cfg.function.memory_mb == 512 and cfg.function.timeout_s == 30
    assert cfg.tags == {"owner": "team-ops"}
    assert cfg.devices["s1"].location == "hall-${NOT_A_VAR}"


def test_unset_env_var_names_key_and_line(tmp_path: Path) -> None:
    found = problems(tmp_path, "region: us-east-1\nname: ${DEPLOYMENT_NAME}\n")
    assert found == [
        f"{tmp_path / 'iotpipe.yaml'}:2: name: environment variable DEPLOYMENT_NAME is not set"
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.yaml", {})


def test_find_config_prefers_explicit_then_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert config.find_config(None) is None
    (tmp_path / "config").mkdir()
    (tmp_path / "config/iotpipe.yaml").write_text("")
    assert config.find_config(None) == Path("config/iotpipe.yaml")
    (tmp_path / "iotpipe.yaml").write_text("")
    assert config.find_config(None) == Path("iotpipe.yaml")
    assert config.find_config("other.yaml") == Path("other.yaml")
