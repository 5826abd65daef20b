"""The live view of ``up`` and ``down``: one line per resource, status and elapsed time.

On a terminal it is a rich Live table; elsewhere (CI logs, pipes) one plain line per
finished step, so logs stay readable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.live import Live
from rich.table import Table

from iotpipe.engine import Step

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
            table.add_column(col, justify="right" if col == "time" else "left", overflow="fold")
        for step in (s for s in self.steps.values() if s.visible):
            status = (
                _VERB.get(step.action, step.action) if step.status == "running" else step.status
            )
            if step.status == "failed":
                status = f"failed: {step.error}"
            table.add_row(
                step.label,
                step.name,
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
                extra = f" ({detail})" if detail else ""
                self.console.print(
                    f"{step.label:<30} {step.name:<46} {step.action:<10} {status:<7}"
                    f" {step.elapsed(time.monotonic()):5.1f}s{extra}",
                    highlight=False,
                    markup=False,
                )


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
