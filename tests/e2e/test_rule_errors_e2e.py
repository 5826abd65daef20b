"""Issue 8 item 9: what the IoT rule does not deliver is counted where users look.

Through the CLI on the embedded AWS: ``send-test --via iot`` with broken messages. The
rule's SQL (``SELECT *, timestamp() AS processing_time``) cannot add data to a payload
that is not a JSON object, so IoT Core counts a ParseError and delivers nothing; the
summary and ``query quality`` (``rule_error``) must both say how many.
"""

from __future__ import annotations

import json
import time
from collections import Counter
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

DEVICES, MESSAGES, SEED, RATIO = 4, 300, 11, 0.25
AT_THE_RULE = {"malformed_json", "not_an_object"}  # not a JSON object: ParseError
AT_THE_FUNCTION = {
    "recipe_invalid001": "out_of_range",
    "out_of_range": "out_of_range",
    "not_a_number": "not_a_number",
    "missing_device_id": "missing_device_id",
}
CONFIG = """
name: e2e-rule
target: local
event_source: {batching_window_s: 1}
"""


def cli(*args: str) -> Result:
    result = CliRunner().invoke(main, ["-c", "iotpipe.yaml", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.fixture(scope="module")
def sent(emulator_home: Path) -> Iterator[dict[str, Any]]:
    (emulator_home / "iotpipe.yaml").write_text(CONFIG)
    up = cli("up", "-o", "json")
    assert up.exit_code == 0, up.output
    try:
        out = cli(
            "send-test", "--via", "iot", "--devices", str(DEVICES), "--messages", str(MESSAGES),
            "--seed", str(SEED), "--invalid-ratio", str(RATIO), "-o", "json",
        )  # fmt: skip
        assert out.exit_code == 0, out.output
        config = load(Path("iotpipe.yaml"))
        fleet = Fleet(default_devices(DEVICES, config.devices), config.sensors, SEED)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        messages = list(fleet.messages(MESSAGES, start, timedelta(milliseconds=1), RATIO))
        dep = App(config_path="iotpipe.yaml").deployment()
        valid = [m for m in messages if m.invalid is None]
        wait_for_rows(dep, len(valid), 60, time.sleep, time.monotonic)
        yield {"summary": json.loads(out.stdout), "messages": messages, "dep": dep}
    finally:
        cli("down", "--yes")


def test_send_test_summary_counts_what_the_rule_did_not_deliver(sent: dict[str, Any]) -> None:
    lost = sum(1 for m in sent["messages"] if m.invalid in AT_THE_RULE)
    assert lost > 0
    assert sent["summary"]["not_delivered_by_rule"] == lost
    assert sent["summary"]["sent"] == MESSAGES  # IoT accepted every publish


def test_quality_counts_them_as_rule_error_beside_the_functions_reasons(
    sent: dict[str, Any],
) -> None:
    want = Counter(
        "rule_error" if m.invalid in AT_THE_RULE else AT_THE_FUNCTION[m.invalid]
        for m in sent["messages"]
        if m.invalid
    )
    rows = json.loads(cli("query", "quality", "-o", "json").stdout)
    assert Counter({r["reason"]: r["count"] for r in rows}) == want
    rule_row = next(r for r in rows if r["reason"] == "rule_error")
    assert "ParseError" in rule_row["example"]
    assert count_rows(sent["dep"]) >= 1
