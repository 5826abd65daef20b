"""Every bad input is one clear error (exit 2, file/line/key named), never a traceback,
never a hang, and touches no AWS. Each case here was a traceback or a wrong message once."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from iotpipe import checks, config
from iotpipe.cli import main
from iotpipe.config import ConfigError

BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)

BAD_YAML = {
    # case: (file bytes, line, key or "", words of the message)
    "nul byte": (b"name: a\x00b\n", 1, "", "U+0000"),
    "deep nesting": (b"tags: " + b"[" * 2000 + b"]" * 2000 + b"\n", 1, "", "nested more than"),
    "deep mapping": (b"a:" + b" {b:" * 2000 + b" 1" + b"}" * 2000 + b"\n", 1, "", "nested more"),
    "sensor not a mapping": (
        b"sensors: {temperature: 5}\n",
        1,
        "sensors.temperature",
        "not a mapping; allowed: a mapping of min, max, inclusive",
    ),
    "5000-digit integer": (
        b"function:\n  memory_mb: " + b"9" * 5000 + b"\n",
        2,
        "memory_mb",
        "5,000 digits",
    ),
    "float beyond range": (
        b"sensors:\n  t: {min: 0, max: 1.0e+400}\n",
        2,
        "sensors.t.max",
        "not a finite number",
    ),
    "alias bomb as a value": (
        BOMB.encode() + b"tags: {x: *i}\n",
        0,
        "",
        "aliases expand to more than 600,000",
    ),
    "self-referring alias": (b"tags: &a [*a]\n", 1, "", "aliases nest"),
    "latin-1 text": (b"name: caf\xe9\n", 1, "", "not UTF-8"),
    "unterminated default": (b"name: ${NAME:-abc\n", 1, "name", "missing its closing"),
    "complex key": (b"? [a, b]\n: 1\n", 1, "", "plain text"),
    "markup in a value": (b"name: '[/x] [bold]'\n", 1, "name", "[/x]"),
    # Both passed the config once and then failed every invocation in the function.
    "measure_name prefix": (
        b"sensors:\n  measure_name_x: {min: 0, max: 1}\n",
        2,
        "sensors.measure_name_x",
        "reserved name; allowed: a name not starting with ts_ or measure_name",
    ),
    "attribute named like a dimension": (
        b"devices:\n  s1:\n    location: hall\n    DeviceId: other\n",
        4,
        "devices.s1.DeviceId",
        "not a dimension name (DeviceId, Location, DeviceType)",
    ),
}


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("bad input must be refused before any AWS call")

    monkeypatch.setattr("iotpipe.cli.app.make_gateway", boom)
    monkeypatch.setenv("IOTPIPE_HOME", str(tmp_path / ".iotpipe"))
    monkeypatch.chdir(tmp_path)


def assert_clean(result: Result, code: int = 2) -> str:
    """The exit code, and no traceback: neither printed nor escaped to click."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.output


@pytest.mark.parametrize("case", sorted(BAD_YAML))
def test_bad_yaml_is_a_config_error_with_its_line(no_aws: None, tmp_path: Path, case: str) -> None:
    data, line, key, words = BAD_YAML[case]
    (tmp_path / "bad.yaml").write_bytes(data)
    started = time.monotonic()
    result = CliRunner().invoke(main, ["-c", "bad.yaml", "plan"])
    out = assert_clean(result)
    assert time.monotonic() - started < 20  # the alias bomb took 30 s and a MemoryError
    assert "Config error: bad.yaml:" in out and words in out, out
    if line:
        assert f"bad.yaml:{line}:" in out, out
    if key:
        assert f" {key}: " in out, out
    assert len(out) < 2000  # nothing echoed whole


@pytest.mark.parametrize(
    ("path", "words"),
    [("/dev/zero", "is a character device"), ("fifo.yaml", "is a named pipe (FIFO)")],
)
def test_config_that_is_not_a_file_says_what_it_is(
    no_aws: None, tmp_path: Path, path: str, words: str
) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")  # opening it would block: it must not be opened
    result = CliRunner().invoke(main, ["-c", path, "plan"])
    out = assert_clean(result)
    assert f"{path}: {words}, not a config file" in out and "not found" not in out


def test_a_huge_config_is_refused_by_its_size(no_aws: None, tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_bytes(b"# " + b"x" * (2 * 1024 * 1024) + b"\n")
    out = assert_clean(CliRunner().invoke(main, ["-c", "big.yaml", "plan"]))
    assert "too large for a config file" in out


def test_a_50_mb_value_is_cut_in_the_message(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: ${BIG}\ntags:\n  ${BIG}: x\n")
    big = "a" * 50_000_000
    with pytest.raises(ConfigError) as info:
        config.load(path, {"BIG": big})
    text = "\n".join(info.value.problems)
    assert "(50,000,000 characters)" in text and len(text) < 1000
    assert text.startswith(f"{path}:1: name: 'aaa")


def test_an_integer_too_long_to_print_is_described_not_printed(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("function:\n  memory_mb: 0x" + "f" * 2000 + "\n")
    with pytest.raises(ConfigError) as info:
        config.load(path, {})
    assert "an integer of 2,002 digits (at most 100) is too long" in info.value.problems[0]
    with pytest.raises(checks.Bad, match="integer of about 6,000 digits is out of range"):
        checks.integer(1, 10)(10**6000)  # str() of it raises ValueError


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("${A:-${B}}", {"B": "plant-b"}, "plant-b"),
        ("${A:-${B}}", {"A": "plant-a"}, "plant-a"),  # B need not be set: not evaluated
        ("${A:-${B:-plant-c}}", {}, "plant-c"),
        ("${A:-x-${B:-y}-z}", {}, "x-y-z"),
        ("${A:-$${B}}", {}, "${B}"),
    ],
)
def test_nested_env_defaults(tmp_path: Path, text: str, environ: dict, expected: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"devices:\n  s1: {{location: '{text}'}}\n")
    assert config.load(path, environ).devices["s1"].location == expected


def test_nested_default_with_an_iot_template_stays_a_template(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text('iot_rule:\n  partition_key: "${PK:-${deviceId}}"\n')
    assert config.load(path, {}).iot_rule.partition_key == "${deviceId}"


def test_nested_unset_variable_names_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("region: us-east-1\nname: ${A:-${B}}\n")
    with pytest.raises(ConfigError) as info:
        config.load(path, {})
    assert info.value.problems == [f"{path}:2: name: environment variable B is not set"]


def test_builtin_registry_is_the_recipes_three_devices() -> None:
    shipped = config.load(Path(__file__).resolve().parents[3] / "config/iotpipe.yaml", {})
    assert dict(config.Config().devices) == dict(shipped.devices)
    assert sorted(config.Config().devices) == ["sensor001", "sensor002", "sensor003"]
    assert config.Config().devices["sensor003"].location == "warehouse"


def test_without_a_config_the_function_gets_the_recipes_registry() -> None:
    from iotpipe.package import settings_from_config

    devices = settings_from_config(config.Config())["devices"]
    assert devices["sensor002"] == {
        "location": "factory_floor_2",
        "device_type": "temperature_sensor",
        "last_maintenance": "2026-08-15",
    }
