"""The ``iotpipe`` command line: click commands only (parse, call one function, render).

Commands live in one module per area (provision, exercise, local) so each stays small;
this module holds the group and its global options.
"""

from __future__ import annotations

import itertools
import sys
from typing import Any


def _interrupted_while_starting() -> None:
    """Ctrl-C while Python is still importing (boto3, rich and moto take most of a second):
    one line and exit 130, as for an interrupted command, instead of an import traceback."""
    sys.stderr.write("Interrupted while starting; nothing was done.\n")
    sys.exit(130)


try:
    import click

    from iotpipe import __version__
    from iotpipe.cli.app import EXIT_INTERRUPTED, App, interrupted_message
    from iotpipe.target import TargetOptions
except KeyboardInterrupt:
    _interrupted_while_starting()


_WORDS = "iotpipe.words"


class _Main(click.Group):
    """The ``iotpipe`` group: Ctrl-C anywhere outside a guarded command body (the group's
    own start-up, ``local`` subcommands) is one line and exit 130 too, not click's
    "Aborted!" with exit 1."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        # The command's words ("local status"), for the message if it is interrupted.
        ctx.meta[_WORDS] = list(itertools.takewhile(lambda a: not a.startswith("-"), args))
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            words = ctx.meta.get(_WORDS, [])
            path = " ".join([ctx.command_path, *words])
            click.echo(interrupted_message(words[0] if words else None, path), err=True)
            ctx.exit(EXIT_INTERRUPTED)


@click.group(
    cls=_Main,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="IOTPIPE_CONFIG",
    help="Config file (default: iotpipe.yaml, then config/iotpipe.yaml). Env: IOTPIPE_CONFIG.",
)
@click.option("--profile", help="AWS named profile (target: aws).")
@click.option("--region", help="AWS Region (overrides the config's region).")
@click.option(
    "--endpoint-url",
    help="Send every AWS call to this endpoint (a moto server, say). boto3 also honours "
    "AWS_ENDPOINT_URL.",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="Output format (csv: query only).",
)
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and more detail.")
@click.version_option(__version__, "--version", prog_name="iotpipe")
@click.pass_context
def main(
    ctx: click.Context,
    config_path: str | None,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    output: str,
    verbose: bool,
) -> None:
    """Stand up, exercise and tear down an IoT telemetry pipeline: devices (MQTT,
    mutual TLS) -> IoT Core -> Kinesis -> Lambda -> Timestream, and/or the lake
    (Firehose -> S3 Parquet -> Glue -> Athena), on AWS or on the embedded AWS.

    \b
    Exit codes: 0 ok, 1 the operation failed, 2 bad usage or config (nothing was
    touched), 3 verify found a problem, 130 interrupted (Ctrl-C).
    """
    ctx.obj = App(
        config_path=config_path,
        target=TargetOptions(profile=profile, region=region, endpoint_url=endpoint_url),
        output=output,
        verbose=verbose,
    )


def _register() -> None:
    # Imported here, after ``main`` exists, so each command module stays a plain module.
    from iotpipe.cli import exercise, provision
    from iotpipe.cli.devices import devices
    from iotpipe.cli.local import local

    for command in [*provision.COMMANDS, *exercise.COMMANDS, devices, local]:
        main.add_command(command)


try:
    _register()
except KeyboardInterrupt:
    _interrupted_while_starting()
