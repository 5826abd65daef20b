"""``plan``, ``up`` and ``down``."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from iotpipe.cli.app import App, ask, guarded, output_option
from iotpipe.cli.progress import step_view
from iotpipe.diff import describe_leaf
from iotpipe.discover import find_suffixes
from iotpipe.engine import Engine, Plan
from iotpipe.errors import UsageError
from iotpipe.target import Deployment, NotDeployed


def _app() -> App:
    return click.get_current_context().find_object(App)  # type: ignore[return-value]


def render_plan(app: App, plan: Plan, title: str) -> None:
    """The plan as a table that never breaks a resource name: labels wrap between words, an
    event source mapping's "stream -> function" name goes on two lines, and when the
    changes do not fit beside the names (an 80-column terminal) they follow the table."""
    steps = [s for s in plan.steps if s.visible]
    style = {"create": "green", "update": "yellow", "replace": "red", "delete": "red"}
    names = [s.name.replace(" -> ", " ->\n") for s in steps]
    # A changed document (a policy, an environment) shows only its leaves that differ.
    changes = [[describe_leaf(*leaf) for leaf in s.leaves()] for s in steps]
    name_w = max([4, *(len(line) for n in names for line in n.splitlines())])
    label_w = max([8, *(len(w) for s in steps for w in s.label.split())])
    action_w = max([6, *(len(s.action) for s in steps)])
    room = app.out.width - name_w - label_w - action_w - 6
    beside = room >= min(40, max([7, *(len(c) for lines in changes for c in lines)]))
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    table.add_column("resource")
    table.add_column("name", no_wrap=True)
    table.add_column("action", no_wrap=True)
    if beside:
        table.add_column("changes", overflow="fold")
    for step, name, lines in zip(steps, names, changes, strict=True):
        action = Text(step.action, style=style.get(step.action, "dim"))
        row = [Text(step.label), Text(name), action]
        table.add_row(*row, *([Text("\n".join(lines))] if beside else []))
    app.out.print(table)
    if not beside:  # each resource's name, then its changed leaves under it
        for step, lines in zip(steps, changes, strict=True):
            if lines:
                app.out.print(Text(f"  {step.name}:"), soft_wrap=False)
            for line in lines:
                app.out.print(Text(f"    {line}"), soft_wrap=False)
    for note in plan.notes:
        app.out.print(Text(note), soft_wrap=False)  # wrapped between words
    n = len(plan.changes)
    app.out.print(f"{n} change{'s' if n != 1 else ''} to apply." if n else "Nothing to change.")


@click.command()
@output_option("table", "json")
@guarded
def plan() -> None:
    """Show what 'up' would do: create / update (old -> new) / unchanged. Changes nothing."""
    app = _app()
    try:
        dep = app.deployment(create_suffix=True, **_finding(app))
        result = Engine(dep).plan()
    finally:
        _stop_what_plan_started(app)
    if app.output == "json":
        app.print_json(
            {
                "deployment": dep.names.deployment,
                "region": dep.names.region,
                "steps": result.as_dict(),
                "notes": result.notes,
            }
        )
    else:
        title = f"Plan for {dep.names.deployment} ({dep.config.target}, {dep.names.region})"
        render_plan(app, result, title)


def _finding(app: App) -> dict[str, Any]:
    """``plan`` and ``up`` look for an existing deployment before making a new suffix:
    a lost state file must not start a second deployment (nor hide the first)."""
    return {"discover": find_suffixes, "on_found": app.note}


def _stop_what_plan_started(app: App) -> None:
    """``plan`` reads; an embedded AWS it had to start (empty) is not left running."""
    if not app.started_emulator:
        return
    from iotpipe.local.lifecycle import stop
    from iotpipe.state import home

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
    app = _app()
    with app.deployment(create_suffix=True, lock=True, **_finding(app)) as dep:
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
        "notes": planned.notes,
    }
    if app.output == "json":
        app.print_json(result)
        return
    for note in planned.notes:
        app.note(note)
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
        dep = app.deployment(suffix=suffix, discover=find_suffixes, lock=True, suffix_option=True)
    except NotDeployed:
        name = app.config().name
        if app.output == "json":
            app.print_json({"deployment": None, "deleted": []})
        else:
            app.out.print(f"Nothing to delete: no deployment named {name!r} was found.")
        return
    with dep:
        _down(app, dep, yes)


def _also(strays: dict[str, list[str]]) -> str:
    """The tail of down's messages naming what goes beyond the config (or nothing)."""
    items = [item for found in strays.values() for item in found]
    return f", including {', '.join(items)}, which the config no longer names" if items else ""


def _down(app: App, dep: Deployment, yes: bool) -> None:
    engine = Engine(dep)
    strays = engine.strays()  # read-only: what goes beyond the config, named before asking
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"'down' deletes deployment {dep.names.deployment} and its data{_also(strays)}; "
                "pass --yes to confirm (there is no terminal to ask on)."
            )
        if not ask(
            f"Delete deployment {dep.names.deployment} ({dep.config.target}, "
            f"{dep.names.region}) and all its data{_also(strays)}?",
            nothing_done="nothing was deleted.",
        ):
            app.note("Nothing was deleted.")  # a "no" is an answer, not a failure: exit 0
            return
    elif strays and app.output != "json":
        app.note(f"Deleting deployment {dep.names.deployment}{_also(strays)}.")
    title = f"down {dep.names.deployment} ({dep.config.target}, {dep.names.region})"
    with step_view(app.err, title, quiet=app.output == "json") as view:
        report = engine.destroy(on_event=view.event, strays=strays)
    deleted = [r for r in report if r["deleted"]]
    if app.output == "json":
        app.print_json(
            {"deployment": dep.names.deployment, "region": dep.names.region, "deleted": deleted}
        )
    elif not deleted:  # every step was absent: nothing of it existed (a plan-only state)
        app.out.print(
            f"Nothing to delete: deployment {dep.names.deployment} has no resources here."
        )
    else:
        app.out.print(
            f"[green]Deployment {dep.names.deployment} removed[/] "
            f"({len(deleted)} resource{'s' if len(deleted) != 1 else ''} deleted"
            f"{escape(_also({r['resource']: r['also'] for r in deleted}))})."
        )


COMMANDS = [plan, up, down]
