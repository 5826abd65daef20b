"""How ``plan``, ``up`` and ``down`` look: results on stdout (a table, or JSON with
``-o json``), notes on stderr. Names and AWS text are rich ``Text``, never markup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from iotpipe.cli.app import App
from iotpipe.diff import describe_leaf, leaf_lines
from iotpipe.engine import Plan
from iotpipe.target import Deployment


def render_plan(app: App, plan: Plan, title: str) -> None:
    """The plan as a table that never breaks a resource name: labels wrap between words, an
    event source mapping's "stream -> function" name goes on two lines, and when the
    changes do not fit beside the names (an 80-column terminal) they follow the table."""
    steps = [s for s in plan.steps if s.visible]
    style = {"create": "green", "update": "yellow", "replace": "red", "delete": "red"}
    names = [s.name.replace(" -> ", " ->\n") for s in steps]
    # A changed document (a policy, an environment) shows only its leaves that differ.
    leaves = [s.leaves() for s in steps]
    changes = [[describe_leaf(*leaf) for leaf in found] for found in leaves]
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
        for step, found in zip(steps, leaves, strict=True):
            if found:
                app.out.print(Text(f"  {step.name}:"), soft_wrap=False)
            for leaf in found:
                for line in leaf_lines(*leaf, room=app.out.width - 4):
                    app.out.print(Text(f"    {line}"), soft_wrap=False)
    for note in plan.notes:
        app.out.print(Text(note), soft_wrap=False)  # wrapped between words
    n = len(plan.changes)
    app.out.print(f"{n} change{'s' if n != 1 else ''} to apply." if n else "Nothing to change.")


def show_plan(app: App, dep: Deployment, result: Plan) -> None:
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


def render_up(app: App, dep: Deployment, planned: Plan, outputs: dict[str, Any]) -> None:
    if app.output == "json":
        app.print_json(
            {
                "deployment": dep.names.deployment,
                "target": dep.config.target,
                "region": dep.names.region,
                "changed": [s.key for s in planned.changes],
                "resources": outputs,
                "notes": planned.notes,
            }
        )
        return
    for note in planned.notes:
        app.note(note)
    changed = len(planned.changes)
    app.out.print(
        f"[green]Pipeline {dep.names.deployment} is up[/] "
        f"({changed} change{'s' if changed != 1 else ''}). "
        "Next: iotpipe send-test, iotpipe query, iotpipe verify --probe."
    )


def render_nothing_to_delete(app: App, name: str) -> None:
    if app.output == "json":
        app.print_json({"deployment": None, "deleted": []})
    else:
        app.out.print(f"Nothing to delete: no deployment named {name!r} was found.")


def also(strays: dict[str, list[str]]) -> str:
    """The tail of down's messages naming what goes beyond the config (or nothing)."""
    items = [item for found in strays.values() for item in found]
    return f", including {', '.join(items)}, which the config no longer names" if items else ""


def render_down(
    app: App, dep: Deployment, report: list[dict[str, Any]], files: list[Path] | None = None
) -> None:
    deleted = [r for r in report if r["deleted"]]
    files = files or []
    if app.output == "json":
        app.print_json(
            {
                "deployment": dep.names.deployment,
                "region": dep.names.region,
                "deleted": deleted,
                "files_deleted": [str(p) for p in files],
            }
        )
        return
    if files:
        app.note(f"Deleted {len(files)} device file(s) in {files[0].parent}.")
    if not deleted:  # every step was absent: nothing of it existed (a plan-only state)
        app.out.print(
            f"Nothing to delete: deployment {dep.names.deployment} has no resources here."
        )
    else:
        app.out.print(
            f"[green]Deployment {dep.names.deployment} removed[/] "
            f"({len(deleted)} resource{'s' if len(deleted) != 1 else ''} deleted"
            f"{escape(also({r['resource']: r['also'] for r in deleted}))})."
        )
