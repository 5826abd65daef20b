"""``send-test``, ``query``, ``verify`` and ``demo``: parse, call one function, render.

Progress and notes go to stderr, results to stdout, so ``--output json``/``csv`` pipe cleanly.
"""

from __future__ import annotations

import csv
import io
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from iotpipe import query as q
from iotpipe.cli.app import EXIT_FAILED, EXIT_VERIFY, App, guarded, output_option
from iotpipe.cli.progress import step_view
from iotpipe.demo import DemoOptions, embedded_aws, run_demo
from iotpipe.errors import UsageError
from iotpipe.fleet import SendOptions, message_source
from iotpipe.traffic import Outcome, Summary, deliver, sink_for
from iotpipe.verify import Check, verify


def _app() -> App:
    return click.get_current_context().find_object(App)  # type: ignore[return-value]


# --- rendering (shared by the commands and the demo) -------------------------------------------


@contextmanager
def progress_bar(app: App, total: int | None) -> Iterator[Callable[[Outcome], None]]:
    """sent / failed / rate on stderr while sending; nothing when stderr is not a terminal."""
    columns = (
        TextColumn("[bold]sending"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}" if total else "{task.completed}"),
        TextColumn("failed {task.fields[failed]}"),
        TextColumn("{task.fields[rate]:.0f} msg/s"),
        TimeElapsedColumn(),
    )
    started = time.monotonic()
    with Progress(*columns, console=app.err, disable=not app.err.is_terminal) as bar:
        task = bar.add_task("send", total=total, failed=0, rate=0.0)
        counts = {"sent": 0, "failed": 0}

        def on_batch(outcome: Outcome) -> None:
            counts["sent"] += outcome.sent
            counts["failed"] += outcome.failed
            rate = counts["sent"] / max(time.monotonic() - started, 1e-6)
            bar.update(
                task,
                advance=outcome.sent + outcome.failed,
                failed=counts["failed"],
                rate=rate,
            )

        yield on_batch


def render_summary(app: App, summary: Summary, extra: dict[str, Any]) -> None:
    data = {**summary.as_dict(), **extra}
    if app.output == "json":
        app.print_json(data)
        return
    table = Table(title="send-test", title_justify="left", box=None, pad_edge=False)
    table.add_column("")
    table.add_column("", justify="right")
    for key in ("sent", "invalid_injected", "retried", "failed", "rate_per_s", "seconds"):
        table.add_row(key.replace("_", " "), str(data[key]))
    for key, value in data["errors"].items():
        table.add_row(f"  {key}", str(value))
    for key, value in extra.items():
        table.add_row(key, str(value))
    app.out.print(table)


def to_json(result: q.Result) -> str:
    return json.dumps(result.rows, indent=2, default=str)


def to_csv(result: q.Result) -> str:
    """RFC 4180 CSV with a header; null is the empty field, lists/objects are JSON."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow([_csv_cell(row.get(c)) for c in result.columns])
    return buf.getvalue()


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | dict):
        return json.dumps(v, default=str)
    return str(v)


def render_result(app: App, result: q.Result, title: str | None = None) -> None:
    for note in result.notes:
        app.note(note)
    if app.output == "json":
        click.echo(to_json(result))
    elif app.output == "csv":
        click.echo(to_csv(result), nl=False)
    elif result.rows:
        table = Table(title=title, title_justify="left")
        numeric = {"BIGINT", "INTEGER", "DOUBLE"}
        for name, typ in zip(result.columns, result.types, strict=True):
            table.add_column(name, justify="right" if typ in numeric else "left")
        for row in result.rows:
            table.add_row(
                *(_cell(row.get(c), t) for c, t in zip(result.columns, result.types, strict=True))
            )
        app.out.print(table)


def _cell(value: Any, typ: str = "") -> str:
    """Short forms for people: 3 decimals, and no zero nanoseconds on timestamps."""
    if value is None:
        return "[dim]null[/]"
    if typ == "TIMESTAMP" and isinstance(value, str) and "." in value:
        value = value.rstrip("0").rstrip(".")
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1e12 else str(value)
    return str(value)


def render_checks(app: App, checks: list[Check]) -> None:
    if app.output == "json":
        app.print_json({"ok": all(c.ok for c in checks), "checks": [c.as_dict() for c in checks]})
        return
    for c in checks:
        mark = "[green]✓[/]" if c.ok else "[bold red]✗[/]"
        app.out.print(f"{mark} {c.name}: {c.detail}", highlight=False)
        if not c.ok and c.fix:
            app.out.print(f"    [yellow]fix:[/] {c.fix}", highlight=False)
    failed = sum(not c.ok for c in checks)
    app.out.print(
        f"[bold red]{failed} check(s) failed.[/]" if failed else "[green]All checks passed.[/]"
    )


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        q.seconds(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


# --- commands --------------------------------------------------------------------------------


@click.command("send-test")
@click.option(
    "--devices",
    type=click.IntRange(1, 100_000),
    help="Simulate N devices "
    "(sensor001..). Default: the recipe's sensor001-003 and their locations.",
)
@click.option("--messages", "-n", type=click.IntRange(1), help="Messages to send (default 100).")
@click.option(
    "--duration",
    type=click.FloatRange(0, min_open=True),
    help="Send for S seconds at --rate instead of a count.",
)
@click.option(
    "--rate",
    type=click.FloatRange(0, min_open=True),
    help="Messages per second (default: as fast as the stream takes them).",
)
@click.option(
    "--seed",
    type=int,
    help="Make the fleet's values reproducible (default: random, printed in the summary).",
)
@click.option(
    "--invalid-ratio",
    type=float,
    help="Share of broken messages (out of range, "
    "garbled, ...); default 0.03 plus the recipe's invalid001. 0 sends none.",
)
@click.option(
    "--via",
    type=click.Choice(["kinesis", "iot"]),
    default="kinesis",
    show_default=True,
    help="kinesis: PutRecords; iot: publish to the rule's topic.",
)
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Replay captured messages, one JSON message per line.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Calls in flight at once.",
)
@output_option("table", "json")
@guarded
def send_test(**kwargs: Any) -> None:
    """Drive a simulated sensor fleet (valid and invalid data) into the pipeline."""
    app = _app()
    opts = SendOptions(**kwargs)
    opts.check()
    dep = app.deployment()
    seed = opts.seed if opts.seed is not None else random.randrange(2**31)
    messages = message_source(dep.config, opts, seed, datetime.now(UTC))
    with progress_bar(app, opts.count()) as on_batch:
        summary = deliver(
            messages,
            sink_for(dep, opts.via),
            rate=opts.rate,
            workers=opts.workers,
            on_batch=on_batch,
        )
    target = dep.config.iot_rule.topic if opts.via == "iot" else dep.names.stream
    extra = {"via": opts.via, "to": target, "seed": None if opts.file else seed}
    render_summary(app, summary, extra)
    if summary.failed:
        app.note(f"{summary.failed} message(s) could not be sent after retries.")
        sys.exit(EXIT_FAILED)


@click.command()
@click.argument("preset", type=click.Choice(q.PRESETS), default="recent", required=False)
@click.option("--sql", help="Run this Timestream SQL instead of a preset.")
@click.option(
    "--since",
    default="1h",
    show_default=True,
    callback=_duration,
    help="Time window (30s, 15m, 1h, 7d).",
)
@click.option("--device", help="Only this device.")
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=10,
    show_default=True,
    help="Rows of the 'recent' preset.",
)
@output_option("table", "json", "csv")
@guarded
def query(preset: str, sql: str | None, since: str, device: str | None, limit: int) -> None:
    """Timestream results: a preset (recent, by-device, per-minute, quality) or --sql.

    'quality' reads the failure queue instead (quarantined messages never reach the
    table): messages grouped by reason, peeked without removing them.
    """
    app = _app()
    dep = app.deployment()
    result = q.query_deployment(
        dep,
        preset_name=None if sql else preset,
        sql=sql,
        since=since,
        device=device,
        limit=limit,
    )
    render_result(app, result, None if sql else f"{preset} ({dep.names.deployment})")


@click.command("verify")
@click.option(
    "--probe",
    is_flag=True,
    help="Also send a marked valid and invalid message and follow them through the pipeline.",
)
@click.option(
    "--probe-via",
    type=click.Choice(["iot", "kinesis"]),
    default="iot",
    show_default=True,
    help="Where the probe enters the pipeline.",
)
@click.option(
    "--probe-timeout",
    type=click.FloatRange(1),
    default=180.0,
    show_default=True,
    help="Seconds to wait for the probe.",
)
@output_option("table", "json")
@guarded
def verify_cmd(probe: bool, probe_via: str, probe_timeout: float) -> None:
    """Check every resource exists, matches the config and is healthy. Exit 3 if not."""
    app = _app()
    dep = app.deployment()
    checks = verify(dep, probe=probe, via=probe_via, timeout_s=probe_timeout)
    render_checks(app, checks)
    if not all(c.ok for c in checks):
        sys.exit(EXIT_VERIFY)


class _DemoView:
    """The demo's stages, drawn with the same renderers as the single commands."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.quiet = app.output == "json"

    def steps(self, title: str) -> Any:
        @contextmanager
        def view() -> Iterator[Callable[..., None]]:
            with step_view(self.app.err, title, quiet=self.quiet) as v:
                yield v.event

        return view()

    def progress(self, total: int) -> Any:
        return progress_bar(self.app, total)

    def sent(self, summary: Summary) -> None:
        if not self.quiet:
            render_summary(self.app, summary, {})

    def result(self, title: str, result: q.Result) -> None:
        if not self.quiet:
            self.app.out.rule(title)
            render_result(self.app, result, None)

    def checks(self, checks: list[Check]) -> None:
        if not self.quiet:
            self.app.out.rule("verify --probe")
            render_checks(self.app, checks)

    def note(self, text: str) -> None:
        self.app.note(text)


@click.command()
@click.option("--keep", is_flag=True, help="Leave the pipeline (and the embedded AWS) running.")
@click.option(
    "--devices",
    type=click.IntRange(1, 10_000),
    help="Fleet size (default: the recipe's three sensors).",
)
@click.option("--messages", type=click.IntRange(1, 1_000_000), default=300, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(1),
    default=120.0,
    show_default=True,
    help="Seconds to wait for the pipeline and the probe.",
)
@output_option("table", "json")
@guarded
def demo(keep: bool, devices: int | None, messages: int, seed: int, timeout_s: float) -> None:
    """up, send-test, query, verify --probe and down, on the embedded AWS, in one command."""
    app = _app()
    opts = DemoOptions(
        devices=devices, messages=messages, seed=seed, timeout_s=timeout_s, keep=keep
    )
    with embedded_aws(app.config(), app.target.endpoint_url, keep):
        dep = app.deployment(create_suffix=True)
        report = run_demo(dep, opts, _DemoView(app))
    if app.output == "json":
        app.print_json(report.as_dict())
    else:
        table = Table(title=f"demo {report.deployment}", title_justify="left")
        for col in ("stage", "result", "time", "detail"):
            table.add_column(col, justify="right" if col == "time" else "left")
        for s in report.stages:
            result = "[green]ok[/]" if s.ok else "[bold red]failed[/]"
            table.add_row(s.name, result, f"{s.seconds:.1f}s", s.detail)
        app.out.print(table)
        if report.error:
            app.err.print(f"[bold red]Error:[/] {report.error}", highlight=False)
        elif keep:
            app.out.print("Kept running: explore with 'iotpipe query', then 'iotpipe down --yes'.")
    if report.exit_code:
        sys.exit(report.exit_code)


COMMANDS = [send_test, query, verify_cmd, demo]
