"""``devices add|list|remove``: device identities of a deployment (IoT things with an X.509
certificate, attached to the deployment's device policy). Parse, call one function, render.

The private key is the user's secret: ``remove`` deletes it only as ``down`` deletes data,
after asking (or with ``--yes``), and refuses to guess without a terminal.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Column, Table

from iotpipe import devices as dv
from iotpipe.cli.app import App, ask, current_app, guarded, output_option
from iotpipe.devices.endpoint import add_to, device_dir, scope_of
from iotpipe.devices.identity import key_paths
from iotpipe.devices.registry import config_overrides
from iotpipe.errors import UsageError
from iotpipe.package import settings_from_config
from iotpipe.target import Deployment


def _out_dir(dep: Deployment, out: str | None) -> Path:
    return Path(out) if out else device_dir(dep)


@click.group("devices")
def devices() -> None:
    """Device identities: IoT things, certificates and the deployment's device policy."""


@devices.command("add")
@click.argument("device_id", metavar="ID")
@click.option("--location", help="The device's location (thing attribute 'location').")
@click.option("--type", "device_type", help="The device's type (attribute 'device_type').")
@click.option("--attr", "attrs", multiple=True, metavar="K=V", help="Another attribute.")
@click.option("--out", type=click.Path(file_okay=False), help="Where to write the files.")
@output_option("table", "json")
@guarded
def add(
    device_id: str,
    location: str | None,
    device_type: str | None,
    attrs: tuple[str, ...],
    out: str | None,
) -> None:
    """Create device ID (thing, active certificate, policy) and write its files."""
    app = current_app()
    attributes = dv.thing_attributes(location, device_type, dv.parse_attrs(attrs))
    dep = app.deployment()
    with dep:
        result = add_to(dep, device_id, attributes, _out_dir(dep, out))
    if app.output == "json":
        app.print_json(result.to_dict())
        return
    if not result.created:
        app.note(f"Device {device_id} already exists ({result.thing}): nothing was changed.")
    configured = settings_from_config(dep.config)["devices"]
    wins = config_overrides(configured, device_id, attributes)
    entry = configured.get(device_id)
    if result.created and (entry is None or any(k not in entry for k in attributes)):
        app.note("Run 'iotpipe up' to add its attributes to the function's device registry.")
    if wins:
        given = ", ".join(f"{k}={attributes[k]}" for k in wins)
        kept = ", ".join(f"{k}={v}" for k, v in wins.items())
        source = dep.config.source
        how = (
            f"change that entry in {source}"
            if Path(source).is_file()
            else "give it a devices: entry in a config file"
        )
        app.note(
            f"The config's devices: entry for {device_id} wins over {given}: the function "
            f"keeps {kept}. To use the new values, {how}."
        )
    for key, value in result.to_dict().items():
        if value is not None and key not in ("created",):
            app.out.print(f"{key:>14}  {escape(str(value))}", highlight=False)


@devices.command("list")
@output_option("table", "json")
@guarded
def list_() -> None:
    """The deployment's devices: thing, certificate id and status, attributes."""
    app = current_app()
    dep = app.deployment()
    with dep:
        found = dv.list_devices(dep.gateway.client("iot"), scope_of(dep))
    if app.output == "json":
        app.print_json([d.to_dict() for d in found])
        return
    if not found:
        app.out.print(f"No devices in deployment {dep.names.deployment}.")
        return
    app.out.print(_table(found))


def _table(found: list[dv.DeviceInfo]) -> Table:
    device, thing, attributes = (
        Column(h, overflow="fold") for h in ("device", "thing", "attributes")
    )
    table = Table(device, thing, "certificate", "status", attributes)  # wrapped, never cut
    for d in found:
        certs = d.certificates or [("-", "-")]
        attrs = " ".join(f"{k}={v}" for k, v in sorted(d.attributes.items()))
        for cert_id, status in certs:
            table.add_row(d.device_id, d.thing, cert_id[:12], status, escape(attrs))
    return table


@devices.command("remove")
@click.argument("device_id", metavar="ID")
@click.option("--out", type=click.Path(file_okay=False), help="Where its files were written.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@output_option("table", "json")
@guarded
def remove(device_id: str, out: str | None, yes: bool) -> None:
    """Remove device ID: its certificate, its thing and its files (after asking)."""
    app = current_app()
    dep = app.deployment()
    with dep:
        files = [p for p in key_paths(_out_dir(dep, out), device_id)[:2] if p.exists()]
        if not _confirmed(app, dep, device_id, files, yes):
            return
        removed = dv.remove_device(dep.gateway.client("iot"), scope_of(dep), device_id)
    for path in files:
        path.unlink(missing_ok=True)
    _render_removed(app, device_id, removed, files)


def _confirmed(app: App, dep: Deployment, device_id: str, files: list[Path], yes: bool) -> bool:
    if yes:
        return True
    what = f"device {device_id} of {dep.names.deployment} (its thing and certificate"
    what += f", and its private key {files[-1]})" if files else ")"
    if not sys.stdin.isatty():
        raise UsageError(f"'devices remove' deletes {what}; pass --yes to confirm.")
    if ask(f"Delete {what}?", nothing_done="nothing was deleted."):
        return True
    app.note("Nothing was deleted.")
    return False


def _render_removed(app: App, device_id: str, removed: bool, files: list[Path]) -> None:
    data: dict[str, Any] = {
        "device_id": device_id,
        "removed": removed,
        "files_deleted": [str(p) for p in files],
    }
    if app.output == "json":
        app.print_json(data)
    elif removed:
        app.out.print(f"[green]Device {escape(device_id)} removed[/].")
    else:
        app.out.print(f"No device {escape(device_id)} here: nothing to remove.")
