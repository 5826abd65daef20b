"""`iotpipe demo` from a fresh checkout: the shipped config, no state, no emulator running.

Run as a subprocess, as a user would. The demo starts the embedded AWS itself and must stop
it again; the finalizer stops it anyway if the demo (or this test) fails half-way.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from cli_process import run_iotpipe, user_env

from iotpipe.local.lifecycle import read_state, stop

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def test_demo_exits_0_from_a_fresh_checkout(tmp_path: Path) -> None:
    shutil.copytree(REPO / "config", tmp_path / "config")
    home = tmp_path / ".iotpipe"
    env = user_env(home)
    try:
        done = run_iotpipe(tmp_path, env, "demo", "--messages", "200", "-o", "json", timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout)
        assert report["ok"] is True and report["error"] is None
        stages = {s["name"]: s for s in report["stages"]}
        assert list(stages) == [
            "up",
            "send-test",
            "wait for the pipeline",
            "query presets",
            "a device over MQTT",
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
        assert any("via mqtt" in c["name"] for c in report["checks"])  # a device's publish
        assert report["device"]["client_id"].endswith("-demo-device")
        assert read_state(home / "demo") is None  # the demo stopped the emulator it started
        assert read_state(home) is None  # and started none in the folder's own home
        assert not list((home / "demo").glob("iot-telemetry*.json"))  # removed its deployment
        assert sorted(p.name for p in home.iterdir()) == ["demo"]  # nothing of the user's home
        assert not (home / "demo" / "devices").exists() or not any(
            (home / "demo" / "devices").iterdir()
        )  # its device's certificate and key went with it
    finally:
        stop(home / "demo")
        stop(home)


def test_demo_next_to_a_live_deployment_leaves_it_and_its_rows_alone(tmp_path: Path) -> None:
    """Issue 8, item 1: `up` + data, then `demo` in the same folder. The demo used to report
    the user's rows and then delete the deployment; now it runs in one of its own."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    home = tmp_path / ".iotpipe"
    env = user_env(home)

    def iotpipe(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = run_iotpipe(tmp_path, env, *args, timeout=timeout)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    def user_rows(sql_from: str) -> int:
        out = iotpipe("query", "--sql", f"SELECT count(*) AS n FROM {sql_from}", "-o", "json")
        return int(json.loads(out.stdout)[0]["n"])

    try:
        up = json.loads(iotpipe("up", "-o", "json").stdout)
        ts = up["resources"]["timestream"]
        source = f'"{ts["database"]}"."{ts["table"]}"'
        emulator = read_state(home)
        iotpipe("send-test", "--messages", "40", "--invalid-ratio", "0", "--seed", "7")
        deadline = time.monotonic() + 60
        while user_rows(source) < 40 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert user_rows(source) == 40
        state_files = {p.name: p.read_text() for p in home.glob("iot-telemetry*.json")}

        demo = iotpipe("demo", "--messages", "100", "-o", "json", timeout=240)
        report = json.loads(demo.stdout)
        assert report["ok"] is True, report
        assert report["deployment"] != up["deployment"]
        # Its report counts its own valid messages, not the user's 40.
        valid = report["send"]["sent"] - report["send"]["invalid_injected"]
        assert sum(int(r["messages"]) for r in report["queries"]["by-device"]) == valid

        assert read_state(home) == emulator  # the user's embedded AWS: same process
        assert user_rows(source) == 40  # the user's rows, all there
        assert {p.name: p.read_text() for p in home.glob("iot-telemetry*.json")} == state_files
        plan = json.loads(iotpipe("plan", "-o", "json").stdout)
        assert plan["deployment"] == up["deployment"]
        assert {s["action"] for s in plan["steps"]} <= {"unchanged", "absent"}
        assert read_state(home) == emulator  # plan stops only an emulator it started
        assert read_state(home / "demo") is None
    finally:
        stop(home / "demo")
        stop(home)
