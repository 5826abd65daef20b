"""iotpipe run as a user runs it: a subprocess in a folder of its own, with an environment
that has none of the caller's AWS or iotpipe settings (so no test can reach a real account
or another test's emulator), no standard input, and a bound on its time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def user_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IOTPIPE_"))}
    env["IOTPIPE_HOME"] = str(home)
    env.update(extra)
    return env


def run_iotpipe(
    cwd: Path, env: dict[str, str], *args: str, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iotpipe", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
