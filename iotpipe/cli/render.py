"""How results look: query tables, the send-test summary, verify's checks, the demo's stages.

Tables must stay readable in an 80-column terminal: a column is never squeezed until its
values wrap mid-word or are cut. Instead, columns that say nothing row by row (the same
value everywhere) and then descriptive text columns are left out, right to left, with a
note naming them; numbers, times and the first column (what a row is about) stay. Values
are rich ``Text``, never markup: a device id or a SQL string literal such as ``[/x]`` is
data, not a style tag.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from iotpipe import query as q
from iotpipe.cli.app import App
from iotpipe.cli.progress import send_progress, step_view
from iotpipe.demo import DemoReport
from iotpipe.traffic import SendSummary
from iotpipe.verify import Check

NUMERIC = {"BIGINT", "INTEGER", "DOUBLE"}
# Never left out: a row is about a device (and a measure) at a time.
KEEP = {"DeviceId", "time", "minute", "measure"}
PROSE_MIN = 20  # a column of sentences may wrap (at spaces) down to this width


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


def cell(value: Any, typ: str = "") -> str:
    """Short forms for people: 3 decimals, and timestamps to the millisecond (or the
    micro- or nanosecond where they have one), so ``.210`` lines up under ``.213``."""
    if value is None:
        return "null"
    if typ == "TIMESTAMP" and isinstance(value, str) and "." in value:
        whole, _, fraction = value.rpartition(".")
        if fraction.isdigit():  # anything else is shown as it came
            digits = fraction.rstrip("0")
            keep = -(-len(digits) // 3) * 3  # whole milli-, micro- or nanoseconds
            value = f"{whole}.{fraction[:keep]}" if digits else whole
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1e12 else str(value)
    return str(value)


def fit_columns(
    columns: list[str], types: list[str], cells: list[list[str]], width: int
) -> tuple[list[int], list[str]]:
    """Indexes of the columns to show within ``width``, and what was left out and why.

    Widths are the natural ones (the longest value) with two spaces between columns, the
    layout of a ``box=None`` table; prose (values with spaces, not times) counts at most
    :data:`PROSE_MIN` because it wraps between words.
    """
    n = len(columns)
    natural = [max([cell_len(columns[i]), *(cell_len(r[i]) for r in cells)]) for i in range(n)]
    prose = [
        types[i] != "TIMESTAMP" and any(" " in r[i] for r in cells) and natural[i] > PROSE_MIN
        for i in range(n)
    ]

    def needed(keep: list[int]) -> int:
        return sum(min(natural[i], PROSE_MIN) if prose[i] else natural[i] for i in keep) + 2 * (
            len(keep) - 1
        )

    keep = list(range(n))
    dropped: list[str] = []
    constant = [i for i in keep[1:] if len(cells) > 1 and len({r[i] for r in cells}) == 1]
    textual = [
        i
        for i in reversed(keep[1:])
        if types[i] not in NUMERIC | {"TIMESTAMP"} and columns[i] not in KEEP and not prose[i]
    ]
    # Last, numbers from the right (``samples`` before ``max_value``...), keeping the first.
    numbers = [i for i in keep[1:] if types[i] in NUMERIC and columns[i] not in KEEP]
    for i in [*constant, *(t for t in textual if t not in constant), *reversed(numbers[1:])]:
        if needed(keep) <= width:
            break
        if i not in keep:
            continue
        keep.remove(i)
        if i in constant:
            dropped.append(f"{columns[i]} (always {cells[0][i]})")
        else:
            dropped.append(columns[i])
    return keep, dropped


def result_table(result: q.Result, title: str | None, width: int) -> tuple[Table, list[str]]:
    """The table for ``result`` at ``width`` columns, and the columns left out."""
    types = result.types or [""] * len(result.columns)
    cells = [
        [cell(row.get(c), t) for c, t in zip(result.columns, types, strict=True)]
        for row in result.rows
    ]
    keep, dropped = fit_columns(result.columns, types, cells, width)
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
    for i in keep:
        numeric = types[i] in NUMERIC
        wraps = any(" " in r[i] for r in cells) and types[i] != "TIMESTAMP"
        table.add_column(
            result.columns[i], justify="right" if numeric else "left", no_wrap=not wraps
        )
    for values, row in zip(cells, result.rows, strict=True):
        table.add_row(
            *(
                Text("null", style="dim") if row.get(result.columns[i]) is None else Text(values[i])
                for i in keep
            )
        )
    return table, dropped


def render_result(app: App, result: q.Result, title: str | None = None) -> None:
    for note in result.notes:
        app.note(note)
    if app.output == "json":
        click.echo(to_json(result))
    elif app.output == "csv":
        click.echo(to_csv(result), nl=False)
    elif result.rows:
        table, dropped = result_table(result, title, app.out.width)
        app.out.print(table)
        if dropped:
            app.note(
                f"Left out to fit {app.out.width} columns: {', '.join(dropped)}. "
                "All columns: -o json, -o csv or a wider terminal."
            )


def render_summary(app: App, summary: SendSummary, extra: dict[str, Any]) -> None:
    data = {**summary.as_dict(), **extra}
    if app.output == "json":
        app.print_json(data)
        return
    table = Table(
        title="send-test", title_justify="left", box=None, pad_edge=False, show_header=False
    )
    table.add_column("")
    table.add_column("", justify="right")
    for key in ("sent", "invalid_injected", "retried", "failed", "rate_per_s", "seconds"):
        table.add_row(key.replace("_", " "), str(data[key]))
    for key, value in data["errors"].items():
        table.add_row(f"  {key}", str(value))
    for key, value in extra.items():
        if value is not None:
            table.add_row(key, Text(str(value)))
    app.out.print(table)


TOO_LARGE = {
    "RecordTooLarge": "a Kinesis record (1 MiB with its partition key)",
    "PayloadTooLarge": "an AWS IoT Core message (128 KiB)",
}


def failure_note(summary: SendSummary) -> str:
    """Why messages failed: too large (never retried) apart from refused after retries."""
    parts = []
    for code, limit in TOO_LARGE.items():
        if summary.errors.get(code):
            parts.append(
                f"{summary.errors[code]:,} message(s) too large for {limit}: not sent, not retried."
            )
    retried = summary.failed - sum(summary.errors.get(c, 0) for c in TOO_LARGE)
    if retried > 0:
        parts.append(f"{retried:,} message(s) could not be sent after retries.")
    return " ".join(parts)


def rerun_note(file: str | None, seed: int, seed_given: bool, total: int | None) -> str:
    """What running send-test again does: it never resumes, so say what it sends twice."""
    if file is not None:
        return (
            f"A re-run replays {file} from its first line: what was already stored is written "
            "again with the same timestamps and kept once (one record per time, device and "
            "measure); quarantined lines are quarantined again."
        )
    how_many = f"all {total:,}" if total else "all"
    same = f"--seed {seed} gives" if seed_given else f"add --seed {seed} for"
    return (
        f"A re-run sends {how_many} messages again from the start with new timestamps, so "
        f"what was already stored is stored twice ({same} the same values)."
    )


def render_stopped(
    app: App, summary: SendSummary, extra: dict[str, Any], total: int | None, exc: BaseException
) -> None:
    """The counts of a run that stopped (Ctrl-C, an error): on stderr, and as the JSON
    result with ``-o json``, so a script still learns what was sent."""
    interrupted = isinstance(exc, KeyboardInterrupt)
    not_sent = f"{total - summary.submitted:,}" if total else "the rest"
    app.note(
        f"send-test stopped{' (interrupted)' if interrupted else ''}: "
        f"{summary.sent:,} sent and acknowledged, {summary.failed:,} failed, "
        f"{summary.unconfirmed:,} unconfirmed (in flight when it stopped), {not_sent} not sent."
    )
    if app.output == "json":
        data = {**summary.as_dict(), **extra}
        data.update(stopped="interrupted" if interrupted else str(exc) or type(exc).__name__)
        data.update(unconfirmed=summary.unconfirmed, planned=total)
        app.print_json(data)


def render_checks(app: App, checks: list[Check]) -> None:
    if app.output == "json":
        app.print_json({"ok": all(c.ok for c in checks), "checks": [c.as_dict() for c in checks]})
        return
    for c in checks:
        mark = Text("✓", style="green") if c.ok else Text("✗", style="bold red")
        app.out.print(Text.assemble(mark, f" {c.name}: {c.detail}"), highlight=False)
        if not c.ok and c.fix:
            app.out.print(Text.assemble("    ", ("fix:", "yellow"), f" {c.fix}"))
    failed = sum(not c.ok for c in checks)
    app.out.print(
        f"[bold red]{failed} check(s) failed.[/]" if failed else "[green]All checks passed.[/]"
    )


def render_demo(app: App, report: DemoReport, keep_hint: str | None) -> None:
    """The demo's stages as one table; ``keep_hint`` is how to reach a kept demo."""
    if app.output == "json":
        app.print_json(report.as_dict())
        return
    table = Table(title=f"demo {report.deployment}", title_justify="left")
    for col in ("stage", "result", "time", "detail"):
        table.add_column(col, justify="right" if col == "time" else "left")
    for s in report.stages:
        result = "[green]ok[/]" if s.ok else "[bold red]failed[/]"
        table.add_row(s.name, result, f"{s.seconds:.1f}s", s.detail)
    app.out.print(table)
    if report.error:
        app.err.print(f"[bold red]Error:[/] {report.error}", highlight=False)
    elif keep_hint:
        app.out.print(keep_hint)


class DemoView:
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
        return send_progress(self.app.err, total)

    def sent(self, summary: SendSummary) -> None:
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
