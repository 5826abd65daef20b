"""At 80 columns tables stay readable: no resource name broken, no value wrapped or cut,
what did not fit is named; wide terminals still get everything."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from rich.console import Console

from iotpipe import query as q
from iotpipe.cli import main
from iotpipe.cli.app import App
from iotpipe.cli.render_provision import render_plan
from iotpipe.engine import Plan, Step

RECENT_COLUMNS = [
    ("DeviceId", "VARCHAR"),
    ("Location", "VARCHAR"),
    ("DeviceType", "VARCHAR"),
    ("last_maintenance", "VARCHAR"),
    ("measure_name", "VARCHAR"),
    ("time", "TIMESTAMP"),
    ("humidity", "DOUBLE"),
    ("temperature", "DOUBLE"),
]


def recent() -> q.Result:
    rows = [
        {
            "DeviceId": f"sensor00{i % 3 + 1}",
            "Location": ["factory_floor_1", "factory_floor_2", "warehouse"][i % 3],
            "DeviceType": "temperature_sensor",
            "last_maintenance": ["2026-09-01", "2026-08-15", "2026-10-02"][i % 3],
            "measure_name": "metrics",
            "time": f"2026-12-01 21:46:04.{250 + i}000000",
            "humidity": 40.5 + i,
            "temperature": None if i == 4 else 21.125 + i,
        }
        for i in range(10)
    ]
    return q.Result(
        columns=[c for c, _ in RECENT_COLUMNS], types=[t for _, t in RECENT_COLUMNS], rows=rows
    )


@pytest.fixture
def fake_query(monkeypatch: pytest.MonkeyPatch) -> None:
    dep = SimpleNamespace(names=SimpleNamespace(deployment="iot-telemetry-abc123"))
    monkeypatch.setattr("iotpipe.cli.app.App.deployment", lambda self, **k: dep)
    monkeypatch.setattr("iotpipe.query.query_deployment", lambda *a, **k: recent())


def test_query_recent_at_80_columns_keeps_values_whole(fake_query: None) -> None:
    result = CliRunner(env={"COLUMNS": "80"}).invoke(main, ["query", "recent"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    header = lines[1].split()
    assert header[:3] == ["DeviceId", "Location", "time"]
    assert header[-2:] == ["humidity", "temperature"]
    body = lines[2:]
    assert len(body) == 10  # one line per row: nothing wrapped
    assert "2026-12-01 21:46:04.25" in body[0] and "factory_floor_1" in body[0]
    assert "…" not in result.stdout and "null" in body[4]
    assert "Left out to fit 80 columns: " in result.stderr
    assert "measure_name (always metrics)" in result.stderr
    assert "DeviceType" in result.stderr


def test_query_recent_on_a_wide_terminal_shows_every_column(fake_query: None) -> None:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["query", "recent"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].split() == [c for c, _ in RECENT_COLUMNS]
    assert "Left out" not in result.stderr


def test_markup_in_data_is_printed_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    dep = SimpleNamespace(names=SimpleNamespace(deployment="d"))
    monkeypatch.setattr("iotpipe.cli.app.App.deployment", lambda self, **k: dep)
    data = q.Result(columns=["v"], types=["VARCHAR"], rows=[{"v": "[/x] [bold]y"}])
    monkeypatch.setattr("iotpipe.query.query_deployment", lambda *a, **k: data)
    result = CliRunner().invoke(main, ["query", "--sql", "SELECT '[/x] [bold]y' AS v"])
    assert result.exit_code == 0, result.output
    assert "[/x] [bold]y" in result.stdout


def fake_step(label: str, name: str, action: str, changes: dict | None = None) -> Step:
    resource = SimpleNamespace(key=name, label=label, name=name, enabled=lambda: True)
    return Step(resource, action, changes or {})  # type: ignore[arg-type]


def plan() -> Plan:
    return Plan(
        [
            fake_step(
                "Timestream database and table",
                "iot-telemetry-db-6mj2hp/sensor-data",
                "update",
                {"memory_retention_hours": (24, 48)},
            ),
            fake_step("IAM role (function)", "iot-telemetry-fn-role-us-east-1-6mj2hp", "unchanged"),
            fake_step(
                "CloudWatch log group", "/aws/lambda/iot-telemetry-processor-6mj2hp", "create"
            ),
            fake_step(
                "Lambda event source mapping",
                "iot-telemetry-stream-6mj2hp -> iot-telemetry-processor-6mj2hp",
                "create",
            ),
        ]
    )


@pytest.mark.parametrize("width", [80, 160])
def test_plan_never_breaks_a_resource_name(width: int) -> None:
    console = Console(width=width, record=True, force_terminal=False)
    app = App(out=console, err=console)
    render_plan(app, plan(), "Plan for iot-telemetry-6mj2hp (local, us-east-1)")
    text = console.export_text()
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), lines
    for name in (
        "iot-telemetry-db-6mj2hp/sensor-data",
        "iot-telemetry-fn-role-us-east-1-6mj2hp",
        "/aws/lambda/iot-telemetry-processor-6mj2hp",
        "iot-telemetry-stream-6mj2hp ->",
        "iot-telemetry-processor-6mj2hp",
    ):
        assert any(name in line for line in lines), (name, text)
    assert "memory_retention_hours: 24 -> 48" in text
    assert "3 changes to apply." in text


def test_a_changed_hash_at_80_columns_puts_the_new_value_under_the_old() -> None:
    """Second walkthrough find: `code_sha256: <old> -> <new>` (two 44-character hashes)
    was broken by the terminal, the new hash at column 0."""
    old, new = "aU7hoHNX" + "a" * 35 + "=", "YijY2yur" + "b" * 35 + "="
    steps = [fake_step("Lambda function", "iot-telemetry-processor-6mj2hp", "update",
                       {"code_sha256": (old, new)})]  # fmt: skip
    console = Console(width=80, record=True, force_terminal=False)
    render_plan(App(out=console, err=console), Plan(steps), "Plan")
    lines = console.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert f"    code_sha256: {old} ->" in lines and f"      {new}" in lines


def test_up_live_view_never_breaks_a_resource_name() -> None:
    from iotpipe.cli.progress import StepView

    console = Console(width=80, record=True, force_terminal=False)
    view = StepView(console, "up iot-telemetry-6mj2hp -> local (us-east-1)")
    for step in plan().steps:
        step.status = "running"
        view.steps[step.key] = step
    console.print(view.render())
    lines = console.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    for name in (
        "iot-telemetry-fn-role-us-east-1-6mj2hp",
        "/aws/lambda/iot-telemetry-processor-6mj2hp",
    ):
        assert any(name in line for line in lines), lines


def test_per_minute_keeps_the_measure_and_drops_numbers_from_the_right() -> None:
    """Walkthrough find: at 80 columns per-minute dropped `measure`, so the rows of one
    device and minute looked alike. Now it keeps the measure and leaves out `samples`."""
    from iotpipe.cli.render import fit_columns

    cols = ["DeviceId", "measure", "minute", "avg_value", "min_value", "max_value", "samples"]
    types = ["VARCHAR", "VARCHAR", "TIMESTAMP", "DOUBLE", "DOUBLE", "DOUBLE", "BIGINT"]
    cells = [
        [
            f"a-much-longer-device-name-{i}",
            ["temperature", "humidity"][i % 2],
            f"2026-12-01 21:4{i}:00",
            f"21.12{i}",
            f"20.5{i}",
            f"22.75{i}",
            f"1{i}",
        ]
        for i in range(4)
    ]
    keep, dropped = fit_columns(cols, types, cells, 80)
    assert cols.index("measure") in keep and cols.index("minute") in keep
    assert dropped and dropped[0] == "samples"
    assert cols.index("avg_value") in keep


def test_plain_step_lines_align_their_fixed_part_whatever_the_names() -> None:
    """Walkthrough find: piped `up` padded names to 46 characters, lines of ~105 columns
    that went out of line for longer names. The fixed-width part now comes first."""
    from iotpipe.cli.progress import plain_step_line

    lines = [plain_step_line(step, "done") for step in plan().steps]
    assert all(line[5] == "s" and line[14] == " " and line[24] == " " for line in lines), lines
    assert all(f"{s.label}: {s.name}" in line for s, line in zip(plan().steps, lines, strict=True))
