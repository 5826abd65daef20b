"""`iotpipe demo` from a fresh checkout: the shipped config, no state, no emulator running.

Run as a subprocess, as a user would. The demo starts the embedded AWS itself and must stop
it again; the finalizer stops it anyway if the demo (or this test) fails half-way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from iotpipe.local.lifecycle import read_state, stop

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def test_demo_exits_0_from_a_fresh_checkout(tmp_path: Path) -> None:
    shutil.copytree(REPO / "config", tmp_path / "config")
    home = tmp_path / ".iotpipe"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IOTPIPE_"))}
    env["IOTPIPE_HOME"] = str(home)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "iotpipe", "demo", "--messages", "200", "-o", "json"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout)
        assert report["ok"] is True and report["error"] is None
        stages = {s["name"]: s for s in report["stages"]}
        assert list(stages) == [
            "up",
            "send-test",
            "wait for the pipeline",
            "query presets",
            "verify --probe",
            "down",
        ]
        assert all(s["ok"] for s in stages.values())
        assert report["send"]["sent"] == 200 and report["send"]["invalid_injected"] > 0
        assert {r["DeviceId"] for r in report["queries"]["by-device"]} == {
            "sensor001",
            "sensor002",
            "sensor003",
        }
        assert any(r["reason"] == "out_of_range" for r in report["queries"]["quality"])
        assert all(c["ok"] for c in report["checks"])
        assert read_state(home) is None  # the demo stopped the emulator it started
        assert not (home / "iot-telemetry.json").exists()  # and removed the deployment
    finally:
        stop(home)
