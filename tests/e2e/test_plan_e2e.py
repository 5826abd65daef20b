"""`plan` in a folder with no deployment (issue 8, item 12 and 13): it shows what `up` would
create, encryption at rest included, and does not leave the embedded AWS running."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_process import run_iotpipe, user_env

from iotpipe.local.lifecycle import read_state, stop

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def test_plan_in_an_empty_folder_shows_encryption_and_stops_what_it_started(
    tmp_path: Path,
) -> None:
    shutil.copytree(REPO / "config", tmp_path / "config")
    home = tmp_path / ".iotpipe"
    env = user_env(home)
    try:
        done = run_iotpipe(tmp_path, env, "plan", "-o", "json")
        assert done.returncode == 0, done.stderr[-3000:]
        plan = json.loads(done.stdout)
        steps = {s["resource"]: s for s in plan["steps"]}
        assert steps["stream"]["action"] == "create"
        assert steps["stream"]["changes"]["encryption"]["new"] == "KMS alias/aws/kinesis"
        assert steps["queue"]["changes"]["sse"]["new"] is True
        assert plan["region"] == "us-east-1"
        assert "Stopped the embedded AWS again" in done.stderr
        assert read_state(home) is None  # nothing left running
    finally:
        stop(home)
