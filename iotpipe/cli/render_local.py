"""How ``iotpipe local start|stop|status|reset`` look: the same ``App`` consoles and formats as
every other command (results on stdout, notes on stderr)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from iotpipe.cli.app import App
from iotpipe.local import inventory
from iotpipe.local.lifecycle import LocalInfo
from iotpipe.sizes import human_bytes

_COUNTS = ("records_put", "invocations", "errors", "timestream_rows", "failure_queue_messages")


def render_starting(app: App, home: Path) -> None:
    """The foreground banner: a result line in a table, a note beside JSON on stdout."""
    text = f"starting the embedded AWS (foreground; state in {home}); Ctrl-C stops it"
    if app.output == "json":
        app.note(text)
    else:
        click.echo(text)


def render_started(app: App, info: LocalInfo, foreground: bool) -> None:
    if app.output == "json":
        app.print_json({"stopped": True} if foreground else dataclasses.asdict(info))
    elif foreground:
        click.echo("Stopped the embedded AWS.")
    else:
        click.echo(f"Started the embedded AWS at {info.endpoint} (pid {info.pid})")
        click.echo(f"  export AWS_ENDPOINT_URL={info.endpoint}")


def render_stopped(app: App, stopped: bool) -> None:
    """Not running is not a failure (as ``down`` with nothing deployed): exit 0 both ways."""
    if app.output == "json":
        app.print_json({"stopped": stopped})
    else:
        click.echo("Stopped the embedded AWS." if stopped else "The embedded AWS is not running.")


def render_status(app: App, data: dict[str, Any] | None) -> None:
    if app.output == "json":
        app.print_json(data if data is not None else {"running": False})
    elif data is None:
        click.echo("the embedded AWS is not running (`iotpipe local start` starts it)")
    else:
        status_tables(data, app.out)


def status_tables(data: dict[str, Any], console: Console) -> None:
    """The status as rich tables: the process, the counts, functions and mappings."""
    up = data.get("uptime_s", 0)
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(data.get("started_at", 0)))
    console.print(
        f"[bold]embedded AWS[/bold] at {data['endpoint']}  pid {data['pid']}  "
        f"up {up:.0f} s (since {since})  moto {data.get('moto_version', '?')}"
    )
    counts = Table(
        "records put",
        "invocations",
        "errors",
        "rows in Timestream",
        "failure queue messages",
        title="counts",
    )
    c = data.get("counts", {})
    counts.add_row(*(str(c.get(k, 0)) for k in _COUNTS))
    console.print(counts)
    persistence = data.get("persistence") or {}
    if "held" in data:
        where = (
            "saved; kept on stop" if persistence.get("persistent") else "in memory; lost on stop"
        )
        console.print(f"holds ({where}): {inventory.describe(data['held'])}")
    _render_persistence(persistence, console)
    _render_workers(data, console)
    if data.get("log"):
        console.print(f"log: {data['log']}")


def _render_persistence(persistence: dict[str, Any], console: Console) -> None:
    """Disk used per part and the oldest retained record: what ``local reset`` deletes."""
    if not persistence.get("persistent"):
        if persistence:
            console.print("state: ephemeral (--ephemeral): nothing is written to disk")
        return
    parts = persistence.get("parts") or {}
    total = sum(int(p.get("bytes") or 0) for p in parts.values())
    console.print(f"[bold]state[/bold] in {persistence.get('dir')}  {human_bytes(total)}")
    for name, part in parts.items():
        oldest = part.get("oldest")
        since = ""
        if oldest:
            since = "  oldest record " + time.strftime(
                "%Y-%m-%d %H:%M:%S", time.localtime(float(oldest))
            )
        console.print(f"  {name}  {human_bytes(int(part.get('bytes') or 0))}{since}", markup=False)


def render_reset(app: App, data_dir: Path, used: int, deleted: bool) -> None:
    if app.output == "json":
        app.print_json({"reset": deleted, "dir": str(data_dir), "bytes": used})
    elif deleted:
        click.echo(f"Deleted the embedded AWS's saved state ({human_bytes(used)} in {data_dir}).")
    else:
        click.echo(f"Nothing to reset: there is no saved state in {data_dir}.")


def _render_workers(data: dict[str, Any], console: Console) -> None:
    """The function workers and the mapping pollers: one entry each, counts on one line.

    Not tables: a name and a UUID already fill 80 columns, so nine columns of a table
    became "invoc…" and "iot-t…" on an ordinary terminal.
    """
    if data.get("functions"):
        console.print("[bold]functions[/bold]")
    for f in data.get("functions") or []:
        counts = "  ".join(
            f"{k} {f.get(k, 0)}" for k in ("invocations", "errors", "timeouts", "crashes")
        )
        console.print(
            f"  {f['name']}  pid {f.get('pid') or '-'}  {counts}  restarts {f.get('restarts', 0)}",
            markup=False,
        )
        log = _relative_to_cwd(f.get("log"))
        for label, value in (("last error", f.get("last_error")), ("log", log)):
            if value:
                console.print(f"    {label}: {value}", markup=False)
    if data.get("mappings"):
        console.print("[bold]event source mappings[/bold]")
    for m in data.get("mappings") or []:
        console.print(
            f"  {m['uuid']}  -> {m['function']}  {m['state']}  shards {m['shards']}", markup=False
        )
        console.print(f"    last result: {m['last_result']}", markup=False)
    _render_deliveries(data, console)


def _render_deliveries(data: dict[str, Any], console: Console) -> None:
    """Firehose delivery streams: what they read, delivered and refused, on two lines."""
    if data.get("delivery_streams"):
        console.print("[bold]Firehose delivery streams[/bold]")
    for d in data.get("delivery_streams") or []:
        counts = "  ".join(
            f"{label} {d.get(k, 0)}"
            for k, label in (
                ("received", "received"),
                ("delivered_rows", "rows"),
                ("processing_failed", "processing-failed"),
                ("conversion_failed", "conversion-failed"),
                ("objects", "objects"),
                ("buffered", "buffered"),
            )
        )
        console.print(f"  {d['name']}  -> s3://{d.get('bucket', '?')}  {counts}", markup=False)
        if d.get("last_error"):
            console.print(f"    last error: {d['last_error']}", markup=False)


def _relative_to_cwd(path: str | None) -> str:
    """A worker's log path as short as it can be said from here (absolute if outside)."""
    if not path:
        return ""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path
