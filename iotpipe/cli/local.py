"""``iotpipe local start|stop|status``: the embedded AWS's lifecycle commands.

Only parsing and rendering here; the work is in `iotpipe.local.lifecycle` (no boto3 in
this module). Exit codes: 0 ok, 1 the operation failed, 2 bad usage (click's own).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from iotpipe import state
from iotpipe.cli.app import ask
from iotpipe.local import inventory
from iotpipe.local.lifecycle import LocalError


def _fail(message: str) -> None:
    click.echo(f"iotpipe local: {message}", err=True)
    sys.exit(1)


@click.group("local")
def local() -> None:
    """The embedded AWS: the whole pipeline on this machine, no account needed."""


@local.command("start")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1 (0 picks a free one).",
)
@click.option("--foreground", is_flag=True, help="Run in this terminal until Ctrl-C.")
def start_cmd(port: int, foreground: bool) -> None:
    """Start the embedded AWS (in the background unless --foreground)."""
    from iotpipe.local import lifecycle

    home = state.home()
    try:
        if foreground:
            click.echo(f"starting the embedded AWS (foreground; state in {home}); Ctrl-C stops it")
        info = lifecycle.start(home, port=port, foreground=foreground)
    except LocalError as e:
        _fail(str(e))
        return
    if foreground:
        click.echo("Stopped the embedded AWS.")
    else:
        click.echo(f"Started the embedded AWS at {info.endpoint} (pid {info.pid})")
        click.echo(f"  export AWS_ENDPOINT_URL={info.endpoint}")


@local.command("stop")
@click.option("--yes", "-y", is_flag=True, help="Do not ask, even when it holds data.")
def stop_cmd(yes: bool) -> None:
    """Stop the embedded AWS and its function workers.

    It keeps everything in memory: stopping it deletes every resource and all data in
    it, so it asks first when it holds anything (and refuses without a terminal unless
    --yes).
    """
    from iotpipe.local import lifecycle

    home = state.home()
    try:
        data = lifecycle.status(home)
        if data is not None and not yes:
            _confirm_loss(data)
        stopped = lifecycle.stop(home)
    except LocalError as e:
        _fail(str(e))
        return
    click.echo("Stopped the embedded AWS." if stopped else "The embedded AWS is not running.")


def _confirm_loss(status: dict[str, Any]) -> None:
    """Ask before a stop that loses data; exit 0 with nothing done when the answer is no."""
    held = status.get("held") or {}
    if not inventory.anything(held):
        return
    what = inventory.describe(held)
    loss = (
        f"The embedded AWS keeps everything in memory: stopping it deletes all it holds "
        f"({what}). 'iotpipe down' first if you meant to remove a deployment."
    )
    if not sys.stdin.isatty():
        click.echo(f"iotpipe local: {loss}\nNot stopped: pass --yes to stop it anyway.", err=True)
        sys.exit(2)
    click.echo(loss, err=True)
    if not ask("Stop it and lose that?", nothing_done="not stopped; nothing was deleted."):
        click.echo("Not stopped; nothing was deleted.", err=True)
        sys.exit(0)


@local.command("status")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json"]),
    default=None,
    help="Output format (default: the global --output, else table).",
)
@click.pass_context
def status_cmd(ctx: click.Context, output: str | None) -> None:
    """Show whether it runs, where, and what flowed through it."""
    from iotpipe.local import lifecycle

    fmt = output or getattr(ctx.obj, "output", None) or "table"
    try:
        data = lifecycle.status(state.home())
    except LocalError as e:
        _fail(str(e))
        return
    if fmt == "json":
        click.echo(json.dumps(data if data is not None else {"running": False}, indent=2))
    elif data is None:
        click.echo("the embedded AWS is not running (`iotpipe local start` starts it)")
    else:
        render(data, Console())
    if data is None:
        sys.exit(1)


def render(data: dict[str, Any], console: Console) -> None:
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
    counts.add_row(
        *(
            str(c.get(k, 0))
            for k in (
                "records_put",
                "invocations",
                "errors",
                "timestream_rows",
                "failure_queue_messages",
            )
        )
    )
    console.print(counts)
    if "held" in data:
        console.print(f"holds (in memory; lost on stop): {inventory.describe(data['held'])}")
    _render_workers(data, console)
    if data.get("log"):
        console.print(f"log: {data['log']}")


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
        for label, value in (("last error", f.get("last_error")), ("log", _short(f.get("log")))):
            if value:
                console.print(f"    {label}: {value}", markup=False)
    if data.get("mappings"):
        console.print("[bold]event source mappings[/bold]")
    for m in data.get("mappings") or []:
        console.print(
            f"  {m['uuid']}  -> {m['function']}  {m['state']}  shards {m['shards']}", markup=False
        )
        console.print(f"    last result: {m['last_result']}", markup=False)


def _short(path: str | None) -> str:
    if not path:
        return ""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path
