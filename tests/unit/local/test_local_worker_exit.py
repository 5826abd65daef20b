"""A function worker dies with the emulator, also in the middle of an invocation."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

PARENT = """
import json, subprocess, sys
worker = subprocess.Popen([sys.executable, "-m", "iotpipe.local.worker", "slow.handler"],
                          cwd=sys.argv[1], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
request = {"id": 1, "event": {}, "deadline_ms": 2**62, "request_id": "r1"}
worker.stdin.write((json.dumps(request) + "\\n").encode()); worker.stdin.flush()
print(worker.pid, flush=True)
worker.wait()
"""


def test_worker_exits_when_the_emulator_is_killed_mid_invocation(tmp_path: Path) -> None:
    started = tmp_path / "started"
    (tmp_path / "slow.py").write_text(
        "import pathlib, time\n"
        "def handler(event, context):\n"
        f"    pathlib.Path({str(started)!r}).write_text('yes')\n"
        "    time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path)], stdout=subprocess.PIPE, env=env
    )
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    watch = os.pidfd_open(worker)
    while not started.exists():  # the handler is running (its own sleep: 120 s)
        assert not select.select([watch], [], [], 0.05)[0], "the worker died early"
    os.kill(parent.pid, signal.SIGKILL)  # the worker still holds its stdin: no EOF
    parent.wait()
    assert select.select([watch], [], [], 20)[0], "the worker outlived its parent"
    os.close(watch)
