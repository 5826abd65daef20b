"""Ctrl-C: one line, exit 130, and what running the command again really does."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from iotpipe.cli import main
from iotpipe.local.lifecycle import read_state, stop

# The console script's own code, with an import that is interrupted half-way (as Ctrl-C
# during the second or so that boto3, rich and moto take to import).
INTERRUPTED_IMPORT = """
import sys

class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == "botocore":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupt())
from iotpipe.cli import main
sys.exit(main())
"""


def test_ctrl_c_during_start_up_is_one_line_and_130(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_IMPORT, "plan"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == "Interrupted while starting; nothing was done.\n"


def wait_until_reading_a_pipe(pid: int, budget_s: float = 5.0) -> None:
    """Until ``pid`` sleeps in a pipe read (Linux's wchan), so the SIGINT interrupts that
    read. Sent a moment earlier (the FIFO opened, the read not yet begun) CPython only sets
    its flag, and the read it then enters waits for input that never comes: CPython's
    signal race, seen as a 60 s hang about once in 20 runs on a loaded machine. Where the
    kernel hides wchan (it reads "0", as for a running process) this waits out the budget."""
    wchan = Path(f"/proc/{pid}/wchan")
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        try:
            if "pipe" in wchan.read_text():
                return
        except OSError:
            return
        time.sleep(0.01)


def test_sigint_while_waiting_for_input_exits_130_with_one_line(tmp_path: Path) -> None:
    """A real SIGINT: send-test blocks reading a FIFO nobody writes to yet."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    env = {**os.environ, "IOTPIPE_HOME": str(tmp_path / ".iotpipe")}
    cmd = [sys.executable, "-m", "iotpipe", "send-test", "--file", str(fifo)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    writer = None
    deadline = time.monotonic() + 60
    while writer is None:  # a non-blocking open for writing succeeds once the reader is in
        try:
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            assert exc.errno == errno.ENXIO and time.monotonic() < deadline
            assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
            time.sleep(0.02)
    try:
        wait_until_reading_a_pipe(proc.pid)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        os.close(writer)
        assert proc.returncode == 130, err
        assert err == "Error: Interrupted. Nothing was sent.\n"
        assert read_state(tmp_path / ".iotpipe") is None  # nothing deployed: none started
    finally:
        stop(tmp_path / ".iotpipe")  # an emulator this test made never outlives it


@pytest.fixture
def interrupted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def ctrl_c(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("iotpipe.cli.app.App.deployment", ctrl_c)
    monkeypatch.setattr("iotpipe.cli.app.App.gateway", ctrl_c)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["up"], "Run 'iotpipe up' again: it keeps what was already created and does the rest."),
        (["down", "--yes"], "Run 'iotpipe down' again: it deletes what is left."),
        (["send-test"], "Nothing was sent."),
        (["query"], "Run 'iotpipe query' again to start over."),
        (["verify"], "Run 'iotpipe verify' again to start over."),
    ],
)
def test_each_command_says_what_a_rerun_does(interrupted: None, args: list[str], says: str) -> None:
    result = CliRunner().invoke(main, args, prog_name="iotpipe")
    assert result.exit_code == 130, result.output
    assert result.output == f"Error: Interrupted. {says}\n"
    assert "continue where it stopped" not in result.output


def test_ctrl_c_outside_a_guarded_body_is_130_not_clicks_aborted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The group's own start-up (building the App) runs before any guarded body."""

    def ctrl_c(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("iotpipe.cli.App", ctrl_c)
    result = CliRunner().invoke(main, ["local", "status"], prog_name="iotpipe")
    assert result.exit_code == 130, result.output
    assert result.output == "Interrupted. Run 'iotpipe local status' again to start over.\n"


def test_ctrl_c_in_a_local_subcommand_is_the_runners_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``local`` goes through the same runner as every command: the same line, 130."""

    def ctrl_c(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("iotpipe.local.lifecycle.status", ctrl_c)
    result = CliRunner().invoke(main, ["local", "status"], prog_name="iotpipe")
    assert result.exit_code == 130, result.output
    assert result.output == "Error: Interrupted. Run 'iotpipe local status' again to start over.\n"
