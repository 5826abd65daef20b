"""Three separate CLI processes (`up`, `send-test`, `query`) share one embedded AWS, which
the first one starts on demand; `local stop` then leaves no process behind.

Each command runs as its own `python -m iotpipe` subprocess, exactly as a user types them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from cli_process import run_iotpipe, user_env

from iotpipe.local.lifecycle import read_state, stop

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for an init that may never reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line mentions ``text`` (the emulator and its function workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline and entry.name != str(os.getpid()):
                found.append(int(entry.name))
    return found


def test_up_send_query_as_three_processes_on_one_emulator(tmp_path: Path) -> None:
    shutil.copytree(REPO / "config", tmp_path / "config")
    home = tmp_path / ".iotpipe"
    env = user_env(home)

    def iotpipe(*args: str) -> subprocess.CompletedProcess[str]:
        return run_iotpipe(tmp_path, env, *args)

    try:
        up = iotpipe("up", "-o", "json")
        assert up.returncode == 0, up.stderr
        assert "Started the embedded AWS" in up.stderr
        emulator = read_state(home)
        assert emulator is not None
        outputs: dict[str, Any] = json.loads(up.stdout)["resources"]
        database, table = outputs["timestream"]["database"], outputs["timestream"]["table"]

        sent = iotpipe("send-test", "--messages", "60", "--invalid-ratio", "0", "-o", "json")
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout)["sent"] == 60
        assert "Started the embedded AWS" not in sent.stderr

        sql = f'SELECT count(*) AS n FROM "{database}"."{table}"'
        deadline = time.monotonic() + 60
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            query = iotpipe("query", "--sql", sql, "-o", "json")
            assert query.returncode == 0, query.stderr
            rows = json.loads(query.stdout)
            if rows and rows[0]["n"] == 60:
                break
        assert rows == [{"n": 60}]  # one multi-measure record per message, none lost
        assert read_state(home) == emulator  # still the one `up` started

        assert iotpipe("down", "--yes").returncode == 0
        stopped = iotpipe("local", "stop")
        assert stopped.returncode == 0, stopped.stderr
        assert not alive(emulator["pid"])
        assert processes_mentioning(str(home)) == []
    finally:
        stop(home)
