"""``send-test``, ``query``, ``verify`` and ``demo``: parse, call one function, render.

Progress and notes go to stderr, results to stdout, so ``--output json``/``csv`` pipe cleanly.
The renderers live in ``cli/render.py``.
"""

from __future__ import annotations

import itertools
import random
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from iotpipe import query as q
from iotpipe.cli.app import (
    EXIT_FAILED,
    EXIT_VERIFY,
    current_app,
    guarded,
    output_option,
    set_interrupt_note,
)
from iotpipe.cli.progress import send_progress
from iotpipe.cli.render import (
    DemoView,
    failure_note,
    render_checks,
    render_demo,
    render_result,
    render_stopped,
    render_summary,
    rerun_note,
    to_csv,
    to_json,
)
from iotpipe.demo import DemoOptions, demo_deployment, keep_hint, run_demo
from iotpipe.errors import UsageError
from iotpipe.fleet import (
    MAX_MESSAGES,
    MAX_RATE,
    MAX_SECONDS,
    SendOptions,
    message_source,
    replay_file,
)
from iotpipe.metrics import rule_watch
from iotpipe.replay import check_file
from iotpipe.sinks import sink_for
from iotpipe.traffic import SendSummary, deliver
from iotpipe.verify import verify

__all__ = ["COMMANDS", "to_csv", "to_json"]  # to_csv/to_json: their old home


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        q.seconds(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


# --- commands --------------------------------------------------------------------------------


@click.command("send-test")
@click.option(
    "--devices",
    type=click.IntRange(1, 100_000),
    help="Simulate N devices "
    "(sensor001..). Default: the recipe's sensor001-003 and their locations.",
)
@click.option(
    "--messages",
    "-n",
    type=click.IntRange(1, MAX_MESSAGES),
    help="Messages to send (default 100).",
)
@click.option(
    "--duration",
    type=click.FloatRange(0, MAX_SECONDS, min_open=True),
    help="Send for S seconds at --rate instead of a count (at most 7 days).",
)
@click.option(
    "--rate",
    type=click.FloatRange(0, MAX_RATE, min_open=True),
    help="Messages per second (default: as fast as the stream takes them).",
)
@click.option(
    "--seed",
    type=int,
    help="Make the fleet's values reproducible (default: random, printed in the summary).",
)
@click.option(
    "--invalid-ratio",
    type=float,
    help="Share of broken messages (out of range, "
    "garbled, ...); default 0.03 plus the recipe's invalid001. 0 sends none.",
)
@click.option(
    "--via",
    type=click.Choice(["kinesis", "iot", "mqtt"]),
    default="kinesis",
    show_default=True,
    help="kinesis: PutRecords; iot: HTTP publish to the rule's topic; mqtt: as real "
    "devices over MQTT with mutual TLS, one connection per `devices add` identity.",
)
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Replay captured messages, one JSON message per line.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Calls in flight at once.",
)
@output_option("table", "json")
@guarded
def send_test(**kwargs: Any) -> None:
    """Drive a simulated sensor fleet (valid and invalid data) into the pipeline.

    It never resumes: stopped half-way (Ctrl-C, an error), it reports what was sent,
    acknowledged and failed so far, and what running it again would send twice.
    """
    app = current_app()
    opts = SendOptions(**kwargs)
    opts.check()
    total, replayed = _replay_source(opts)
    dep = app.deployment()
    seed = opts.seed if opts.seed is not None else random.randrange(2**31)
    sink = sink_for(dep, opts.via)
    ids = getattr(sink, "device_ids", None)  # --via mqtt: the identities it sends as
    if ids:
        app.note(
            f"Sending over MQTT as {len(ids)} device(s) with identities "
            "(add more with: iotpipe devices add ID)."
        )
    messages = replayed or message_source(dep.config, opts, seed, datetime.now(UTC), ids)
    target = dep.names.stream if opts.via == "kinesis" else dep.config.iot_rule.topic
    extra: dict[str, Any] = {"via": opts.via, "to": target}
    extra.update({"file": str(opts.file)} if opts.file else {"seed": seed})
    file = str(opts.file) if opts.file else None
    rerun = rerun_note(file, seed, opts.seed is not None, total)
    summary = SendSummary()
    watch = rule_watch(dep) if opts.via != "kinesis" else None  # what the rule did not deliver
    try:
        with send_progress(app.err, total, opts.rate) as on_batch:
            set_interrupt_note(rerun)
            deliver(
                messages,
                sink,
                rate=opts.rate,
                workers=opts.workers,
                on_batch=on_batch,
                summary=summary,
            )
    except BaseException as exc:
        render_stopped(app, summary, extra, total, exc)
        if not isinstance(exc, KeyboardInterrupt | SystemExit):
            app.note(rerun)
        raise
    finally:
        getattr(sink, "close", lambda: None)()  # MQTT connections; HTTP sinks hold none
    lost = watch.not_delivered() if watch is not None else None
    if watch is not None:
        extra["not_delivered_by_rule"] = lost
    render_summary(app, summary, extra)
    if watch is not None and watch.note(lost):
        app.note(watch.note(lost))
    if summary.failed:
        app.note(failure_note(summary))
        sys.exit(EXIT_FAILED)


def _replay_source(opts: SendOptions) -> tuple[int | None, Any]:
    """The planned count, and for ``--file`` its messages with the first line already read:
    a bad file (a 2 MiB line, Latin-1, /dev/zero) is refused before any AWS call. A regular
    file is checked whole first; a pipe can only be read once, so its later lines are
    checked as they are sent."""
    if opts.file is None:
        return opts.count(), None
    counted = check_file(opts.file, opts.via, opts.messages)
    messages = replay_file(opts.file, opts.messages, opts.via)
    first = next(messages, None)
    primed = itertools.chain([first] if first is not None else [], messages)
    return (counted if counted is not None else opts.messages), primed


@click.command()
@click.argument("preset", type=click.Choice(q.PRESETS), default="recent", required=False)
@click.option(
    "--sql",
    help="Run this SQL instead of a preset: Timestream's, or Athena's (Trino) with --store lake.",
)
@click.option(
    "--since",
    default="1h",
    show_default=True,
    callback=_duration,
    help="Time window (30s, 15m, 1h, 7d).",
)
@click.option("--device", help="Only this device.")
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=10,
    show_default=True,
    help="Rows of the 'recent' preset.",
)
@click.option(
    "--store",
    type=click.Choice(q.STORES),
    help="Which store answers: timestream or lake (Athena). "
    "Default: Timestream when enabled, else the lake.",
)
@output_option("table", "json", "csv")
@guarded
def query(
    preset: str, sql: str | None, since: str, device: str | None, limit: int, store: str | None
) -> None:
    """Query results: a preset (recent, by-device, per-minute, quality) or --sql.

    'quality' counts what was refused, by reason: on Timestream from the failure queue
    (peeked without removing anything), on the lake from Firehose's error prefix in S3.
    """
    app = current_app()
    _check_query_usage(preset, sql)
    dep = app.deployment()
    result = q.query_deployment(
        dep,
        preset_name=None if sql else preset,
        sql=sql,
        since=since,
        device=device,
        limit=limit,
        store=store,
    )
    title = f"{preset} ({dep.names.deployment}{', ' + store if store else ''})"
    render_result(app, result, None if sql else title)


def _check_query_usage(preset: str, sql: str | None) -> None:
    """A preset and --sql together, or an empty --sql, are usage errors, not a silent pick."""
    if sql is None:
        return
    if not sql.strip():
        raise UsageError("--sql needs a query, e.g. --sql 'SELECT 1'.")
    source = click.get_current_context().get_parameter_source("preset")
    if source is not None and source.name != "DEFAULT":
        raise UsageError(f"Give a preset ({preset}) or --sql, not both.")


@click.command("verify")
@click.option(
    "--probe",
    is_flag=True,
    help="Also send a marked valid and invalid message and follow them through the pipeline.",
)
@click.option(
    "--probe-via",
    type=click.Choice(["iot", "kinesis", "mqtt"]),
    default="iot",
    show_default=True,
    help="Where the probe enters the pipeline (mqtt: from a device identity).",
)
@click.option(
    "--probe-timeout",
    type=click.FloatRange(1),
    default=180.0,
    show_default=True,
    help="Seconds to wait for the probe.",
)
@output_option("table", "json")
@guarded
def verify_cmd(probe: bool, probe_via: str, probe_timeout: float) -> None:
    """Check every resource exists, matches the config and is healthy. Exit 3 if not."""
    app = current_app()
    dep = app.deployment()
    checks = verify(dep, probe=probe, via=probe_via, timeout_s=probe_timeout)
    render_checks(app, checks)
    if not all(c.ok for c in checks):
        sys.exit(EXIT_VERIFY)


@click.command()
@click.option("--keep", is_flag=True, help="Leave the pipeline (and the embedded AWS) running.")
@click.option(
    "--devices",
    type=click.IntRange(1, 10_000),
    help="Fleet size (default: the recipe's three sensors).",
)
@click.option("--messages", type=click.IntRange(1, 1_000_000), default=300, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(1),
    default=120.0,
    show_default=True,
    help="Seconds to wait for the pipeline and the probe.",
)
@output_option("table", "json")
@guarded
def demo(keep: bool, devices: int | None, messages: int, seed: int, timeout_s: float) -> None:
    """up, send-test, query, verify --probe and down, on the embedded AWS, in one command."""
    app = current_app()
    opts = DemoOptions(
        devices=devices, messages=messages, seed=seed, timeout_s=timeout_s, keep=keep
    )
    with demo_deployment(app.config(), app.target, keep, announce=app.note) as dep:
        report = run_demo(dep, opts, DemoView(app))
    render_demo(app, report, keep_hint(app.config()) if keep else None)
    if report.exit_code:
        sys.exit(report.exit_code)


COMMANDS = [send_test, query, verify_cmd, demo]
