"""The exercise commands' option handling: bad usage exits 2 before any AWS call."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from iotpipe.cli import main
from iotpipe.cli.render import cell
from iotpipe.config import Config
from iotpipe.errors import UsageError
from iotpipe.fleet import SendOptions, message_source


@pytest.fixture(autouse=True)
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach AWS (or start the embedded one) fails the test."""

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("usage errors must be reported before any AWS call")

    monkeypatch.setattr("iotpipe.cli.app.App.deployment", boom)
    monkeypatch.setattr("iotpipe.cli.app.App.gateway", boom)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["send-test", "--messages", "5", "--duration", "3", "--rate", "1"], "not both"),
        (["send-test", "--duration", "3"], "--duration needs --rate"),
        (["send-test", "--invalid-ratio", "2"], "fraction from 0 to 1"),
        (["send-test", "--via", "smtp"], "'smtp' is not one of"),
        (["query", "--since", "1hour"], "not a duration"),
        (["query", "nonsense"], "is not one of"),
        (["query", "-o", "xml"], "is not one of"),
        (["verify", "--probe-timeout", "0"], "x>=1"),
        (["query", "--sql", ""], "--sql needs a query"),
        (["query", "--sql", "  "], "--sql needs a query"),
        (["query", "by-device", "--sql", "SELECT 1"], "a preset (by-device) or --sql, not both"),
        (["query", "recent", "--sql", "SELECT 1"], "a preset (recent) or --sql, not both"),
    ],
)
def test_bad_usage_exits_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_file_replay_refuses_fleet_options(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"deviceId": "a"}\n')
    result = CliRunner().invoke(main, ["send-test", "--file", str(data), "--devices", "4"])
    assert result.exit_code == 2 and "--devices do not apply" in result.output


def test_send_options_count_and_sources(tmp_path: Path) -> None:
    assert SendOptions().count() == 100
    assert SendOptions(duration=2.5, rate=10).count() == 25
    data = tmp_path / "d.jsonl"
    data.write_text("".join(f'{{"deviceId": "d{i}"}}\n' for i in range(5)))
    opts = SendOptions(file=data, messages=3)
    assert opts.count() == 3
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert [m.device_id for m in message_source(Config(), opts, 0, now)] == ["d0", "d1", "d2"]
    fleet = list(message_source(Config(), SendOptions(messages=10, invalid_ratio=0), 1, now))
    assert len(fleet) == 10 and not any(m.invalid for m in fleet)
    with pytest.raises(UsageError):
        SendOptions(file=data, seed=3).check()


def test_table_cells_are_short() -> None:
    assert cell(None) == "null"
    assert cell(22.123456) == "22.123" and cell(20.0) == "20"
    assert cell("2026-11-27 01:45:00.000000000", "TIMESTAMP") == "2026-11-27 01:45:00"
    assert cell("2026-11-27 01:45:00.120000000", "TIMESTAMP") == "2026-11-27 01:45:00.120"
    assert cell("2026-11-27 01:45:00.213000000", "TIMESTAMP") == "2026-11-27 01:45:00.213"
    assert cell("2026-11-27 01:45:00.213400000", "TIMESTAMP") == "2026-11-27 01:45:00.213400"
    assert cell("2026-11-27 01:45:00.000000001", "TIMESTAMP") == "2026-11-27 01:45:00.000000001"
