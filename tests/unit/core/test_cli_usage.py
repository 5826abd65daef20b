"""Bad config and bad usage: exit 2, a clear line, and not a single AWS call."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from iotpipe import aws
from iotpipe.cli import main


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Record any attempt to build an AWS client or start the embedded AWS."""
    attempts: list[str] = []
    monkeypatch.setattr(aws.Gateway, "client", lambda self, service: attempts.append(service))
    import iotpipe.target as target

    def no_local(config, opts, announce=None):  # type: ignore[no-untyped-def]
        attempts.append("local")
        raise AssertionError("must not start the embedded AWS")

    monkeypatch.setattr(target, "make_gateway", no_local)
    monkeypatch.setattr("iotpipe.cli.app.make_gateway", no_local)
    monkeypatch.setenv("IOTPIPE_HOME", str(tmp_path / ".iotpipe"))
    monkeypatch.chdir(tmp_path)
    return attempts


BAD_CONFIGS = {
    "batch size": ("event_source:\n  batch_size: 0\n", "event_source.batch_size"),
    "unknown key": ("timestream:\n  retention: 5\n", "timestream.retention"),
    "sql breakout": ("iot_rule:\n  topic: \"a/b' OR '1'='1\"\n", "iot_rule.topic"),
    "bad name": ("name: 'x;rm'\n", "name"),
    "duplicate": ("name: a1\nname: b2\n", "name"),
    "wrong type": ("function: 5\n", "function"),
    "env unset": ("region: ${NO_SUCH_REGION_VAR}\n", "region"),
}


@pytest.mark.parametrize("command", [["up"], ["plan"], ["down", "--yes"]])
@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_exits_2_names_key_and_touches_nothing(
    no_aws: list[str], tmp_path: Path, command: list[str], case: str
) -> None:
    text, key = BAD_CONFIGS[case]
    (tmp_path / "bad.yaml").write_text(text)
    result = CliRunner().invoke(main, ["-c", "bad.yaml", *command])
    assert result.exit_code == 2, result.output
    assert "bad.yaml:" in result.output and f" {key}:" in result.output
    assert "Nothing was changed" in result.output
    assert no_aws == []
    assert not (tmp_path / ".iotpipe").exists()


def test_missing_config_file_exits_2(no_aws: list[str]) -> None:
    result = CliRunner().invoke(main, ["-c", "absent.yaml", "plan"])
    assert result.exit_code == 2 and "config file not found" in result.output
    assert no_aws == []


def test_unknown_option_is_click_usage_error(no_aws: list[str]) -> None:
    result = CliRunner().invoke(main, ["up", "--batch-size", "5"])
    assert result.exit_code == 2 and "No such option" in result.output


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and "iotpipe, version" in result.output
