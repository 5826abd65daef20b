"""``plan``, ``up`` and ``down``: parse, call the engine, render (``cli/render_provision.py``)."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import click

from iotpipe.cli.app import App, ask, current_app, guarded, output_option
from iotpipe.cli.progress import step_view
from iotpipe.cli.render_provision import (
    also,
    render_down,
    render_nothing_to_delete,
    render_plan,
    render_up,
    show_plan,
)
from iotpipe.devices.endpoint import device_dir, device_files, remove_device_files
from iotpipe.discover import find_suffixes
from iotpipe.engine import Engine
from iotpipe.errors import UsageError
from iotpipe.local.lifecycle import stop
from iotpipe.state import home
from iotpipe.target import Deployment, NotDeployed

__all__ = ["COMMANDS", "render_plan"]  # render_plan: its old home


@click.command()
@output_option("table", "json")
@guarded
def plan() -> None:
    """Show what 'up' would do: create / update (old -> new) / unchanged. Changes nothing."""
    app = current_app()
    try:
        dep = app.deployment(create_suffix=True, **_finding(app))
        result = Engine(dep).plan()
    finally:
        _stop_what_plan_started(app)
    show_plan(app, dep, result)


def _finding(app: App) -> dict[str, Any]:
    """``plan`` and ``up`` look for an existing deployment before making a new suffix:
    a lost state file must not start a second deployment (nor hide the first)."""
    return {"discover": find_suffixes, "on_found": app.note}


def _stop_what_plan_started(app: App) -> None:
    """``plan`` reads; an embedded AWS it had to start (empty) is not left running."""
    if not app.started_emulator:
        return
    stop(home())
    app.note("Stopped the embedded AWS again: 'plan' changes nothing ('iotpipe up' starts it).")


@click.command()
@output_option("table", "json")
@guarded
def up() -> None:
    """Create or update the whole pipeline, in dependency order, waiting until it is usable.

    Safe to repeat (an unchanged config makes no changes) and to interrupt (run it again
    to continue).
    """
    app = current_app()
    with app.deployment(create_suffix=True, lock=True, **_finding(app)) as dep:
        engine = Engine(dep)
        planned = engine.plan()
        title = f"up {dep.names.deployment} -> {dep.config.target} ({dep.names.region})"
        with step_view(app.err, title, quiet=app.output == "json") as view:
            outputs = engine.apply(planned, on_event=view.event)
    render_up(app, dep, planned, outputs)


@click.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--suffix", help="The deployment's suffix, when no state file knows it.")
@output_option("table", "json")
@guarded
def down(yes: bool, suffix: str | None) -> None:
    """Delete everything this deployment created, also after a half-finished 'up'."""
    app = current_app()
    try:
        dep = app.deployment(suffix=suffix, discover=find_suffixes, lock=True, suffix_option=True)
    except NotDeployed:
        render_nothing_to_delete(app, app.config().name)
        return
    with dep:
        _down(app, dep, yes)


def _down(app: App, dep: Deployment, yes: bool) -> None:
    engine = Engine(dep)
    strays = engine.strays()  # read-only: what goes beyond the config, named before asking
    files = device_files(dep)  # their certificates go with the deployment: keys are useless
    held = holdings(engine) + (
        f" and its {len(files)} device file(s) in {device_dir(dep)}" if files else ""
    )
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"'down' deletes deployment {dep.names.deployment} and its data{held}"
                f"{also(strays)}; "
                "pass --yes to confirm (there is no terminal to ask on)."
            )
        if not ask(
            f"Delete deployment {dep.names.deployment} ({dep.config.target}, "
            f"{dep.names.region}) and all its data{held}{also(strays)}?",
            nothing_done="nothing was deleted.",
        ):
            app.note("Nothing was deleted.")  # a "no" is an answer, not a failure: exit 0
            return
    elif strays and app.output != "json":
        app.note(f"Deleting deployment {dep.names.deployment}{also(strays)}.")
    title = f"down {dep.names.deployment} ({dep.config.target}, {dep.names.region})"
    with step_view(app.err, title, quiet=app.output == "json") as view:
        report = engine.destroy(on_event=view.event, strays=strays)
    remove_device_files(dep, files)  # only once every certificate is gone (destroy raises)
    render_down(app, dep, report, files)


def holdings(engine: Engine) -> str:
    """`` (<what the stores hold>)`` for the prompt, or nothing: read-only, side by side."""
    with ThreadPoolExecutor(4, thread_name_prefix="holdings") as pool:
        found = [h for h in pool.map(lambda r: r.holdings(), engine.resources) if h]
    return f" ({'; '.join(found)})" if found else ""


COMMANDS = [plan, up, down]
