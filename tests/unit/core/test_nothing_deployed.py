"""A command that needs a deployment, in a folder with none, says so without starting the
embedded AWS (issue 8, item 12): it keeps everything in memory, so when it is not running
nothing is deployed on it, and starting it only left a process behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from iotpipe.cli import main


@pytest.fixture
def empty_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    started: list[Path] = []

    def ensure_running(home: Path) -> tuple[str, bool]:
        started.append(home)
        raise AssertionError("must not start the embedded AWS")

    monkeypatch.setattr("iotpipe.local.lifecycle.ensure_running", ensure_running)
    monkeypatch.setenv("IOTPIPE_HOME", str(tmp_path / ".iotpipe"))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("IOTPIPE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return started


@pytest.mark.parametrize(
    "args",
    [
        ["query", "recent"],
        ["query", "--sql", "SELECT 1"],
        ["verify"],
        ["verify", "--probe"],
        ["send-test", "--messages", "5"],
    ],
    ids=lambda a: " ".join(a),
)
def test_read_only_commands_say_nothing_deployed(empty_folder: list[Path], args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Nothing deployed" in result.output and "iotpipe up" in result.output
    assert "Traceback" not in result.output
    assert empty_folder == []


def test_down_in_an_empty_folder_has_nothing_to_delete(empty_folder: list[Path]) -> None:
    result = CliRunner().invoke(main, ["down", "--yes"])
    assert result.exit_code == 0, result.output
    assert "Nothing to delete" in result.output
    assert empty_folder == []
