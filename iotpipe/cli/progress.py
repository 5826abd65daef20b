"""Live views: ``up``/``down``'s steps and ``send-test``'s progress.

On a terminal they are rich Live displays; elsewhere (CI logs, pipes) plain lines, so logs
stay readable: one per finished step, and for sending a schedule up front and a progress
line every :data:`PLAIN_EVERY_S` seconds (a slow ``--rate`` would otherwise say nothing for
minutes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from iotpipe.engine import Step
from iotpipe.traffic import BatchCounts

PLAIN_EVERY_S = 30.0

_STYLE = {
    "pending": "dim",
    "running": "yellow",
    "done": "green",
    "failed": "bold red",
    "skipped": "dim",
}
_VERB = {
    "create": "creating",
    "update": "updating",
    "replace": "replacing",
    "delete": "deleting",
    "unchanged": "checking",
    "absent": "checking",
}


class StepView:
    def __init__(self, console: Console, title: str) -> None:
        self.console = console
        self.title = title
        self.steps: dict[str, Step] = {}
        self.lock = threading.Lock()
        self.live: Live | None = None

    def render(self) -> Table:
        now = time.monotonic()
        table = Table(title=self.title, title_justify="left", box=None, pad_edge=False)
        for col in ("resource", "name", "action", "status", "time"):
            # A resource name is never broken; labels and statuses wrap between words.
            table.add_column(
                col, justify="right" if col == "time" else "left", no_wrap=col == "name"
            )
        for step in (s for s in self.steps.values() if s.visible):
            status = (
                _VERB.get(step.action, step.action) if step.status == "running" else step.status
            )
            if step.status == "failed":
                status = f"failed: {step.error}"
            table.add_row(
                step.label,
                step.name.replace(" -> ", " ->\n"),
                step.action,
                f"[{_STYLE.get(step.status, '')}]{status}[/]",
                f"{step.elapsed(now):.1f}s" if step.started else "",
            )
        return table

    def event(self, step: Step, status: str, detail: str) -> None:
        with self.lock:
            self.steps[step.key] = step
            if self.live is not None:
                self.live.update(self.render())
            elif status in ("done", "failed", "skipped") and step.visible:
                line = plain_step_line(step, status, detail)
                self.console.print(line, highlight=False, markup=False)


def plain_step_line(step: Step, status: str, detail: str = "") -> str:
    """A finished step as one log line: the fixed-width part first, so lines align whatever
    the names' lengths (padding the names put lines at ~105 characters, misaligned)."""
    extra = f" ({detail})" if detail else ""
    elapsed = step.elapsed(time.monotonic())
    return f"{elapsed:5.1f}s {status:<7} {step.action:<9} {step.label}: {step.name}{extra}"


@contextmanager
def step_view(console: Console, title: str, quiet: bool = False) -> Iterator[StepView]:
    view = StepView(console, title)
    if quiet or not console.is_terminal:
        if not quiet:
            console.print(title, highlight=False)
        if quiet:
            view.event = lambda step, status, detail: None  # type: ignore[method-assign]
        yield view
        return
    with Live(view.render(), console=console, refresh_per_second=8, transient=False) as live:
        view.live = live
        try:
            yield view
        finally:
            live.update(view.render())
            view.live = None


def duration_text(seconds: float) -> str:
    """``3h05m``, ``4m10s``, ``12s``: a schedule at a glance."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class PlainProgress:
    """Progress as plain lines: the schedule first, then a line at most every ``every`` s."""

    def __init__(
        self,
        console: Console,
        total: int | None,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        every: float = PLAIN_EVERY_S,
    ) -> None:
        self.console = console
        self.total = total
        self.clock = clock
        self.every = every
        self.started = self.last = clock()
        self.sent = self.failed = 0
        self.lock = threading.Lock()
        if rate and total:
            seconds = total / rate
            until = datetime.now(UTC) + timedelta(seconds=seconds)
            self.say(
                f"Sending {total:,} messages at {rate:g}/s: about {duration_text(seconds)}, "
                f"until {until:%H:%M:%S} UTC; progress every {every:g} s."
            )

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def on_batch(self, outcome: BatchCounts) -> None:
        with self.lock:
            self.sent += outcome.sent
            self.failed += outcome.failed
            now = self.clock()
            if now - self.last < self.every:
                return
            self.last = now
            of = f"/{self.total:,}" if self.total else ""
            self.say(
                f"sent {self.sent:,}{of}, failed {self.failed:,}, "
                f"{duration_text(now - self.started)} elapsed"
            )


@contextmanager
def send_progress(
    console: Console, total: int | None, rate: float | None = None
) -> Iterator[Callable[[BatchCounts], None]]:
    """sent / failed / rate while sending: a bar on a terminal, plain lines elsewhere."""
    if not console.is_terminal:
        yield PlainProgress(console, total, rate).on_batch
        return
    columns = (
        TextColumn("[bold]sending"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}" if total else "{task.completed}"),
        TextColumn("failed {task.fields[failed]}"),
        TextColumn("{task.fields[rate]:.0f} msg/s"),
        TimeElapsedColumn(),
    )
    started = time.monotonic()
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("send", total=total, failed=0, rate=0.0)
        counts = {"sent": 0, "failed": 0}

        def on_batch(outcome: BatchCounts) -> None:
            counts["sent"] += outcome.sent
            counts["failed"] += outcome.failed
            rate_now = counts["sent"] / max(time.monotonic() - started, 1e-6)
            bar.update(
                task,
                advance=outcome.sent + outcome.failed,
                failed=counts["failed"],
                rate=rate_now,
            )

        yield on_batch
