"""``plan``, ``up`` and ``down``."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.table import Table

from iotpipe.cli.app import App, guarded, output_option
from iotpipe.cli.progress import step_view
from iotpipe.discover import find_suffixes
from iotpipe.engine import Engine, Plan
from iotpipe.errors import UsageError
from iotpipe.target import NotDeployed


def _app() -> App:
    return click.get_current_context().find_object(App)  # type: ignore[return-value]


def _short(value: Any, width: int = 60) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def render_plan(app: App, plan: Plan, title: str) -> None:
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    for col in ("resource", "name", "action", "changes"):
        table.add_column(col, overflow="fold")
    style = {"create": "green", "update": "yellow", "replace": "red", "delete": "red"}
    for step in (s for s in plan.steps if s.visible):
        changes = "\n".join(
            f"{k}: {_short(old)} -> {_short(new)}" for k, (old, new) in step.changes.items()
        )
        action = f"[{style.get(step.action, 'dim')}]{step.action}[/]"
        table.add_row(step.label, step.name, action, changes)
    app.out.print(table)
    n = len(plan.changes)
    app.out.print(f"{n} change{'s' if n != 1 else ''} to apply." if n else "Nothing to change.")


@click.command()
@output_option("table", "json")
@guarded
def plan() -> None:
    """Show what 'up' would do: create / update (old -> new) / unchanged. Changes nothing."""
    app = _app()
    dep = app.deployment(create_suffix=True)
    result = Engine(dep).plan()
    if app.output == "json":
        app.print_json({"deployment": dep.names.deployment, "steps": result.as_dict()})
    else:
        render_plan(app, result, f"Plan for {dep.names.deployment} ({dep.config.target})")


@click.command()
@output_option("table", "json")
@guarded
def up() -> None:
    """Create or update the whole pipeline, in dependency order, waiting until it is usable.

    Safe to repeat (an unchanged config makes no changes) and to interrupt (run it again
    to continue).
    """
    app = _app()
    dep = app.deployment(create_suffix=True)
    engine = Engine(dep)
    planned = engine.plan()
    title = f"up {dep.names.deployment} -> {dep.config.target} ({dep.names.region})"
    with step_view(app.err, title, quiet=app.output == "json") as view:
        outputs = engine.apply(planned, on_event=view.event)
    result = {
        "deployment": dep.names.deployment,
        "target": dep.config.target,
        "region": dep.names.region,
        "changed": [s.key for s in planned.changes],
        "resources": outputs,
    }
    if app.output == "json":
        app.print_json(result)
        return
    changed = len(planned.changes)
    app.out.print(
        f"[green]Pipeline {dep.names.deployment} is up[/] "
        f"({changed} change{'s' if changed != 1 else ''}). "
        "Next: iotpipe send-test, iotpipe query, iotpipe verify --probe."
    )


@click.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--suffix", help="The deployment's suffix, when no state file knows it.")
@output_option("table", "json")
@guarded
def down(yes: bool, suffix: str | None) -> None:
    """Delete everything this deployment created, also after a half-finished 'up'."""
    app = _app()
    try:
        dep = app.deployment(suffix=suffix, discover=find_suffixes)
    except NotDeployed:
        name = app.config().name
        if app.output == "json":
            app.print_json({"deployment": None, "deleted": []})
        else:
            app.out.print(f"Nothing to delete: no deployment named {name!r} was found.")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"'down' deletes deployment {dep.names.deployment} and its data; "
                "pass --yes to confirm (there is no terminal to ask on)."
            )
        click.confirm(
            f"Delete deployment {dep.names.deployment} ({dep.config.target}, "
            f"{dep.names.region}) and all its data?",
            abort=True,
        )
    title = f"down {dep.names.deployment} ({dep.config.target})"
    with step_view(app.err, title, quiet=app.output == "json") as view:
        report = Engine(dep).destroy(on_event=view.event)
    deleted = [r for r in report if r["deleted"]]
    if app.output == "json":
        app.print_json({"deployment": dep.names.deployment, "deleted": deleted})
    else:
        app.out.print(
            f"[green]Deployment {dep.names.deployment} removed[/] "
            f"({len(deleted)} resource{'s' if len(deleted) != 1 else ''} deleted)."
        )


COMMANDS = [plan, up, down]
