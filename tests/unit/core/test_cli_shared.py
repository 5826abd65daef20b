"""One CLI: every command takes the shared ``--output`` and fails through the one runner
(``cli/app.run_guarded``), the ``local`` subcommands included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from iotpipe.cli import main
from iotpipe.cli.local import local
from iotpipe.local.lifecycle import LocalError, LocalInfo


def leaf_commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += leaf_commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


def command_at(words: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for word in words:
        assert isinstance(command, click.Group)
        command = command.commands[word]
    return command


COMMANDS = leaf_commands(main)


def test_the_walk_sees_every_group() -> None:
    assert {("local", "start"), ("local", "stop"), ("local", "status"), ("up",)} <= set(COMMANDS)


@pytest.mark.parametrize("words", COMMANDS, ids=" ".join)
def test_every_command_takes_the_shared_output_option(words: tuple[str, ...]) -> None:
    params = {p.name: p for p in command_at(words).params}
    assert "output" in params, f"{' '.join(words)} has no --output"
    option = params["output"]
    assert isinstance(option, click.Option) and {"--output", "-o"} <= set(option.opts)
    assert isinstance(option.type, click.Choice) and "json" in option.type.choices


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IOTPIPE_HOME", str(tmp_path))
    return tmp_path


def fails(message: str) -> Any:
    def raise_(*a: object, **k: object) -> None:
        raise LocalError(message)

    return raise_


@pytest.mark.parametrize("sub", ["start", "stop", "status"])
def test_a_local_error_is_the_runners_one_line_and_exit_1(
    home: Path, monkeypatch: pytest.MonkeyPatch, sub: str
) -> None:
    monkeypatch.setattr("iotpipe.local.lifecycle.start", fails("cannot listen on [/x]"))
    monkeypatch.setattr("iotpipe.local.lifecycle.status", fails("cannot listen on [/x]"))
    result = CliRunner().invoke(main, ["local", sub], prog_name="iotpipe")
    assert result.exit_code == 1, result.output
    assert result.output == "Error: cannot listen on [/x]\n"  # markup-looking text kept
    assert "Traceback" not in result.output


def test_a_local_error_with_verbose_adds_the_traceback(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("iotpipe.local.lifecycle.status", fails("no status"))
    result = CliRunner().invoke(main, ["-v", "local", "status"], prog_name="iotpipe")
    assert result.exit_code == 1
    assert "Traceback" in result.output and result.output.endswith("Error: no status\n")


@pytest.mark.parametrize("args", [["local", "stop", "-o", "json"], ["-o", "json", "local", "stop"]])
def test_local_stop_json_is_a_result_on_stdout(
    home: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setattr("iotpipe.local.lifecycle.status", lambda h: None)
    monkeypatch.setattr("iotpipe.local.lifecycle.stop", lambda h: False)
    result = CliRunner().invoke(main, args, prog_name="iotpipe")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"stopped": False}


def test_local_start_json_says_where(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = LocalInfo("http://127.0.0.1:4566", 42, 4566, 1.5)
    monkeypatch.setattr(
        "iotpipe.local.lifecycle.start", lambda h, port, foreground, ephemeral=False: info
    )
    result = CliRunner().invoke(main, ["local", "start", "-o", "json"], prog_name="iotpipe")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "endpoint": "http://127.0.0.1:4566",
        "pid": 42,
        "port": 4566,
        "started_at": 1.5,
    }


def test_local_stop_without_a_terminal_refuses_in_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped: list[Path] = []
    monkeypatch.setattr(
        "iotpipe.local.lifecycle.status", lambda h: {"held": {"streams": 1, "stream_records": 2}}
    )
    monkeypatch.setattr("iotpipe.local.lifecycle.stop", stopped.append)
    result = CliRunner().invoke(main, ["local", "stop"], prog_name="iotpipe")
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ")
    assert "1 stream (2 records)" in result.output and "--yes" in result.output
    assert stopped == []


def test_the_local_group_alone_still_renders_with_the_shared_option(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invoked without ``main`` (as the lifecycle tests do), it gets a default App."""
    monkeypatch.setattr("iotpipe.local.lifecycle.status", lambda h: None)
    result = CliRunner().invoke(local, ["status", "--output", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"running": False}


def test_a_format_local_cannot_make_is_a_usage_error(home: Path) -> None:
    result = CliRunner().invoke(main, ["-o", "csv", "local", "status"], prog_name="iotpipe")
    assert result.exit_code == 2 and "--output" in result.output
