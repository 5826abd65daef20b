"""``iotpipe local start|stop|status|reset``: the embedded AWS's lifecycle commands.

Only parsing here; the work is in `iotpipe.local.lifecycle` (no boto3 in this module), the
look in `cli/render_local.py`, and errors go through `cli/app.run_guarded` like every
other command's: 0 ok, 1 the operation failed, 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from iotpipe import state
from iotpipe.cli.app import EXIT_FAILED, ask, current_app, guarded, output_option
from iotpipe.cli.render_local import (
    render_reset,
    render_started,
    render_starting,
    render_status,
    render_stopped,
)
from iotpipe.errors import UsageError
from iotpipe.local import durable, inventory, lifecycle
from iotpipe.sizes import human_bytes


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
@click.option(
    "--ephemeral",
    is_flag=True,
    help="Keep everything in memory (lost on stop); leave the saved state alone.",
)
@output_option("table", "json")
@guarded
def start_cmd(port: int, foreground: bool, ephemeral: bool) -> None:
    """Start the embedded AWS (in the background unless --foreground).

    It restores what it held when it stopped (resources and data, kept under the
    iotpipe home's data/ directory) unless --ephemeral.
    """
    app = current_app()
    home = state.home()
    if foreground:
        render_starting(app, home)
    info = lifecycle.start(home, port=port, foreground=foreground, ephemeral=ephemeral)
    render_started(app, info, foreground)


@local.command("stop")
@click.option("--yes", "-y", is_flag=True, help="Do not ask, even when it holds data.")
@output_option("table", "json")
@guarded
def stop_cmd(yes: bool) -> None:
    """Stop the embedded AWS and its function workers.

    What it holds is saved and comes back at the next start. Started with --ephemeral it
    keeps everything in memory: stopping it then deletes every resource and all data in
    it, so it asks first when it holds anything (and refuses without a terminal unless
    --yes).
    """
    app = current_app()
    home = state.home()
    data = lifecycle.status(home)
    if data is not None and not yes and not _confirm_loss(data):
        app.note("Not stopped; nothing was deleted.")  # a "no" is an answer: exit 0
        return
    render_stopped(app, lifecycle.stop(home))


def _confirm_loss(status: dict[str, Any]) -> bool:
    """Whether a stop may go on: yes when it loses nothing, else the user's answer; no
    terminal to ask on is a usage error (exit 2), as for ``down``."""
    held = status.get("held") or {}
    if (status.get("persistence") or {}).get("persistent") or not inventory.anything(held):
        return True
    loss = (
        f"The embedded AWS runs --ephemeral (in memory): stopping it deletes all it holds "
        f"({inventory.describe(held)}). 'iotpipe down' first if you meant to remove a "
        "deployment."
    )
    if not sys.stdin.isatty():
        raise UsageError(f"{loss} Not stopped: pass --yes to stop it anyway.")
    current_app().note(loss)
    return ask("Stop it and lose that?", nothing_done="not stopped; nothing was deleted.")


@local.command("status")
@output_option("table", "json")
@guarded
def status_cmd() -> None:
    """Show whether it runs, where, and what flowed through it (exit 1 if it does not)."""
    data = lifecycle.status(state.home())
    render_status(current_app(), data)
    if data is None:
        sys.exit(EXIT_FAILED)


@local.command("reset")
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
@output_option("table", "json")
@guarded
def reset_cmd(yes: bool) -> None:
    """Delete the embedded AWS's saved state: every resource and record it kept.

    Asks first (refuses without a terminal unless --yes); a running emulator that uses
    the state is stopped first.
    """
    app = current_app()
    home = state.home()
    data_dir = home / durable.DATA_DIR
    if not data_dir.exists():
        render_reset(app, data_dir, 0, deleted=False)
        return
    used = durable.tree_size(data_dir)
    running = lifecycle.status(home) or {}
    uses_it = bool((running.get("persistence") or {}).get("persistent"))
    what = (
        f"This deletes the embedded AWS's saved state in {data_dir} ({human_bytes(used)}): "
        "every resource and record it kept."
    )
    if uses_it:
        what += f" It is running (pid {running['pid']}) on that state and is stopped first."
    if not yes:
        if not _interactive():
            raise UsageError(f"{what} Not reset: pass --yes to delete it anyway.")
        app.note(what)
        if not ask("Delete it?", nothing_done="nothing was deleted."):
            app.note("Not reset; nothing was deleted.")
            return
    if uses_it:
        lifecycle.stop(home)
    durable.reset(home)
    render_reset(app, data_dir, used, deleted=True)


def _interactive() -> bool:
    """Whether there is a terminal to ask on (tests replace it)."""
    return sys.stdin.isatty()
