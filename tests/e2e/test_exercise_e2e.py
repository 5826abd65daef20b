"""send-test -> query -> verify --probe through the CLI, on the embedded AWS.

The fleet is seeded, so the test recomputes from the simulator what each query must return
(values do not depend on the send time) and compares in all three output formats.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from iotpipe.cli import main
from iotpipe.cli.app import App
from iotpipe.config import load
from iotpipe.demo import count_rows, wait_for_rows
from iotpipe.fleet import Fleet, default_devices

pytestmark = pytest.mark.e2e

DEVICES, MESSAGES, SEED, RATIO = 5, 1000, 7, 0.05
# What the function answers for each kind of broken message the simulator makes.
REASON_OF = {
    "recipe_invalid001": "out_of_range",
    "out_of_range": "out_of_range",
    "malformed_json": "malformed_json",
    "not_an_object": "not_an_object",
    "not_a_number": "not_a_number",
    "missing_device_id": "missing_device_id",
}
CONFIG = """
name: e2e-{model}
target: local
timestream: {{record_model: {model}}}
event_source: {{batching_window_s: 1}}
devices:
  sensor001: {{location: factory_floor_1, device_type: temperature_sensor}}
"""


def cli(*args: str) -> Result:
    result = CliRunner().invoke(main, ["-c", "iotpipe.yaml", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.fixture(scope="module", params=["multi", "single"])
def pipeline(request: pytest.FixtureRequest, emulator_home: Path) -> Iterator[Any]:
    """A deployment with the seeded fleet sent to it and processed."""
    model = request.param
    (emulator_home / "iotpipe.yaml").write_text(CONFIG.format(model=model))
    up = cli("up", "-o", "json")
    assert up.exit_code == 0, up.output
    try:
        sent = cli(
            "send-test", "--devices", str(DEVICES), "--messages", str(MESSAGES),
            "--seed", str(SEED), "--invalid-ratio", str(RATIO), "-o", "json",
        )  # fmt: skip
        assert sent.exit_code == 0, sent.output
        summary = json.loads(sent.stdout)
        config = load(Path("iotpipe.yaml"))
        fleet = Fleet(default_devices(DEVICES, config.devices), config.sensors, SEED)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        messages = list(fleet.messages(MESSAGES, start, timedelta(milliseconds=1), RATIO))
        valid = [m for m in messages if m.invalid is None]
        rows = len(valid) if model == "multi" else sum(len(m.values) for m in valid)
        dep = App(config_path="iotpipe.yaml").deployment()
        wait_for_rows(dep, rows, 60, time.sleep, time.monotonic)
        yield {"model": model, "summary": summary, "messages": messages, "dep": dep}
    finally:
        cli("down", "--yes")


def expected_by_device(messages: list[Any]) -> dict[str, dict[str, float]]:
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for m in messages:
        for k, v in m.values.items():
            values[m.device_id][k].append(v)
    return {d: {k: sum(v) / len(v) for k, v in ms.items()} for d, ms in values.items()}


def test_send_summary_counts(pipeline: Any) -> None:
    s = pipeline["summary"]
    injected = sum(1 for m in pipeline["messages"] if m.invalid)
    assert (s["sent"], s["failed"], s["invalid_injected"], s["seed"]) == (
        MESSAGES,
        0,
        injected,
        SEED,
    )


def test_by_device_in_json_csv_and_table(pipeline: Any) -> None:
    expected = expected_by_device(pipeline["messages"])
    counts = Counter(m.device_id for m in pipeline["messages"] if m.invalid is None)
    rows = json.loads(cli("query", "by-device", "--since", "1d", "-o", "json").stdout)
    assert [r["DeviceId"] for r in rows] == sorted(expected)
    for r in rows:
        for measure, avg in expected[r["DeviceId"]].items():
            assert r[f"avg_{measure}"] == pytest.approx(avg, abs=1e-9)
        assert r["messages"] == counts[r["DeviceId"]]
    table = list(
        csv.DictReader(io.StringIO(cli("query", "by-device", "--since", "1d", "-o", "csv").stdout))
    )
    assert [float(t["avg_temperature"]) for t in table] == pytest.approx(
        [r["avg_temperature"] for r in rows]
    )
    text = cli("query", "by-device", "--since", "1d").stdout
    assert text.startswith("by-device (e2e-") and all(dev in text for dev in expected)


def test_per_minute_aggregates(pipeline: Any) -> None:
    rows = json.loads(cli("query", "per-minute", "--since", "1d", "-o", "json").stdout)
    samples: Counter[tuple[str, str]] = Counter()
    lo: dict[tuple[str, str], float] = {}
    hi: dict[tuple[str, str], float] = {}
    for r in rows:
        key = (r["DeviceId"], r["measure"])
        samples[key] += r["samples"]
        lo[key] = min(lo.get(key, r["min_value"]), r["min_value"])
        hi[key] = max(hi.get(key, r["max_value"]), r["max_value"])
        assert r["min_value"] <= r["avg_value"] <= r["max_value"]
    want: Counter[tuple[str, str]] = Counter()
    for m in pipeline["messages"]:
        for k in m.values:
            want[(m.device_id, k)] += 1
    assert samples == want
    for key in want:
        vals = [
            m.values[key[1]]
            for m in pipeline["messages"]
            if m.device_id == key[0] and key[1] in m.values
        ]
        assert (lo[key], hi[key]) == (min(vals), max(vals))
    text = cli("query", "per-minute", "--since", "1d", "--device", "sensor001", "-o", "csv").stdout
    assert {row["DeviceId"] for row in csv.DictReader(io.StringIO(text))} == {"sensor001"}


def test_recent_and_raw_sql(pipeline: Any) -> None:
    rows = json.loads(cli("query", "recent", "-o", "json").stdout)
    assert len(rows) == 10 and rows[0]["time"] >= rows[-1]["time"]
    out = cli("query", "--sql", "SELECT 1 AS one", "-o", "csv").stdout
    assert out == "one\n1\n"


def test_quality_groups_every_injected_message_by_reason(pipeline: Any) -> None:
    want = Counter(REASON_OF[m.invalid] for m in pipeline["messages"] if m.invalid)
    for fmt in ("json", "csv"):
        out = cli("query", "quality", "-o", fmt).stdout
        rows = json.loads(out) if fmt == "json" else list(csv.DictReader(io.StringIO(out)))
        assert Counter({r["reason"]: int(r["count"]) for r in rows}) == want
    assert "out_of_range" in cli("query", "quality").stdout


def test_send_via_iot_reaches_timestream(pipeline: Any) -> None:
    dep = pipeline["dep"]
    before = count_rows(dep)
    sent = cli(
        "send-test", "--via", "iot", "--messages", "30", "--invalid-ratio", "0", "-o", "json"
    )
    assert json.loads(sent.stdout)["sent"] == 30
    per_message = 1 if pipeline["model"] == "multi" else 2  # sensor001-003 report 2 measures
    wait_for_rows(dep, before + 30 * per_message, 60, time.sleep, time.monotonic)


def test_verify_with_probe_passes_then_catches_a_disabled_rule(pipeline: Any) -> None:
    ok = cli("verify", "--probe", "--probe-timeout", "60", "-o", "json")
    assert ok.exit_code == 0, ok.stdout
    names = [c["name"] for c in json.loads(ok.stdout)["checks"]]
    assert sum(n.startswith("Probe:") for n in names) == 3
    dep = pipeline["dep"]
    dep.gateway.client("iot").disable_topic_rule(ruleName=dep.names.rule)
    try:
        bad = cli("verify", "--probe", "-o", "json")
        assert bad.exit_code == 3
        failed = [c["name"] for c in json.loads(bad.stdout)["checks"] if not c["ok"]]
        assert failed[0].startswith("IoT topic rule") and failed[-1] == "Probe"
    finally:
        assert cli("up").exit_code == 0
