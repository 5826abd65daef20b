"""The ``iotpipe`` command line: click commands only (parse, call one function, render).

Commands live in one module per area (provision, exercise, local) so each stays small;
this module holds the group and its global options.
"""

from __future__ import annotations

import click

from iotpipe import __version__
from iotpipe.cli.app import App
from iotpipe.target import TargetOptions


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
    """Stand up, exercise and tear down an IoT telemetry pipeline:
    IoT Core -> Kinesis -> Lambda -> Timestream, on AWS or on the embedded AWS.

    \b
    Exit codes: 0 ok, 1 the operation failed, 2 bad usage or config (nothing was
    touched), 3 verify found a problem.
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
    from iotpipe.cli.local import local

    for command in [*provision.COMMANDS, *exercise.COMMANDS, local]:
        main.add_command(command)


_register()
