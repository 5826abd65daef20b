"""What every command shares: the global options, the lazily loaded config, the consoles,
the ``--output`` option and the one translation of exceptions into a readable line and an
exit code.

A command group plugs in by stacking ``@output_option(...)`` over ``@guarded`` on each
command and reading :func:`current_app`; it then renders errors, interrupts and formats as
every other command does.

Exit codes (documented in the README): 0 ok, 1 the operation failed, 2 bad usage or bad
config (nothing was touched), 3 verify found a problem, 130 interrupted.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

import click
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from rich.console import Console
from rich.markup import escape

from iotpipe.aws import Gateway, error_code, error_message
from iotpipe.config import Config, ConfigError, find_config, load
from iotpipe.demo import demo_guard
from iotpipe.errors import IotpipeError, UsageError
from iotpipe.state import home
from iotpipe.target import Deployment, TargetOptions, make_gateway, resolve

EXIT_FAILED, EXIT_USAGE, EXIT_VERIFY = 1, 2, 3
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    config_path: str | None = None
    target: TargetOptions = field(default_factory=TargetOptions)
    output: str = "table"
    verbose: bool = False
    out: Console = field(default_factory=lambda: Console(soft_wrap=True))
    err: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))
    _config: Config | None = None
    _gateway: Gateway | None = None
    started_emulator: bool = False

    def config(self) -> Config:
        if self._config is None:
            path = find_config(self.config_path)
            self._config = load(path)
            if path is None:
                self.note("No iotpipe.yaml or config/iotpipe.yaml here: using built-in defaults.")
        return self._config

    def gateway(self, start: bool = True) -> Gateway:
        """``start=False``: a command that needs a deployment never starts the embedded
        AWS (it keeps everything in memory, so if it is not running nothing is deployed)."""
        if self._gateway is None:
            demo_guard(home(), self.config())  # a demo's home never reaches AWS
            self._gateway = make_gateway(
                self.config(), self.target, announce=self._started, start=start
            )
        return self._gateway

    def _started(self, text: str) -> None:
        self.started_emulator = True
        self.note(text)

    def deployment(self, **kwargs: Any) -> Deployment:
        """The deployment this command is about; ``lock=True`` holds it until released
        (``with app.deployment(...) as dep``), telling the user while it waits."""
        gateway = self.gateway(start=bool(kwargs.get("create_suffix")))
        kwargs.setdefault("on_wait", self.note)
        return resolve(self.config(), gateway, **kwargs)

    def note(self, text: str) -> None:
        """A one-line remark for people; stderr, so --output json on stdout stays clean."""
        self.err.print(text, highlight=False)

    def print_json(self, data: Any) -> None:
        click.echo(json.dumps(data, indent=2, default=str))


def current_app() -> App:
    """The running command's :class:`App`. A group invoked on its own (``local`` in the
    lifecycle tests, without ``main``) gets a default one, so it still renders the same."""
    return click.get_current_context().ensure_object(App)


def output_option(*choices: str) -> Callable[[F], F]:
    """``--output`` on a subcommand too, so both ``iotpipe --output json up`` and
    ``iotpipe up --output json`` work, as users of the AWS CLI expect. A global format the
    command cannot produce (``-o csv up``) is a usage error, not a silent table."""

    def decorate(fn: F) -> F:
        @click.option(
            "--output",
            "-o",
            "output",
            type=click.Choice(choices),
            default=None,
            help=f"Output format ({' | '.join(choices)}).",
        )
        @wraps(fn)
        def wrapper(*args: Any, output: str | None = None, **kwargs: Any) -> Any:
            app = current_app()
            if output is not None:
                app.output = output
            if app.output not in choices:
                raise click.BadParameter(
                    f"{app.output!r} is not one of {', '.join(choices)}", param_hint="--output"
                )
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def ask(question: str, *, nothing_done: str) -> bool:
    """``click.confirm`` (default no, on stderr), where Ctrl-C or Ctrl-D at the prompt is
    an interruption that did nothing (one line, exit 130), not click's "Aborted!" (exit 1)."""
    try:
        return click.confirm(question, default=False, err=True)
    except click.Abort:
        click.echo(f"\nInterrupted: {nothing_done}", err=True)
        sys.exit(130)


def describe_client_error(exc: ClientError) -> str:
    op = getattr(exc, "operation_name", "?")
    return f"AWS error: {op}: {error_code(exc)}: {error_message(exc)}"


# What running the command again does after Ctrl-C: the truth per command, not a promise
# that everything resumes. A command may say more once it knows (``set_interrupt_note``).
INTERRUPTED = {
    "up": "Run 'iotpipe up' again: it keeps what was already created and does the rest.",
    "down": "Run 'iotpipe down' again: it deletes what is left.",
    "send-test": "Nothing was sent.",
    "demo": "Run 'iotpipe demo' again to start over (in its own deployment).",
}
_NOTE_KEY = "iotpipe.interrupted"
EXIT_INTERRUPTED = 130


def set_interrupt_note(text: str) -> None:
    """What to say if the running command is interrupted from now on."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[_NOTE_KEY] = text


def interrupted_message(name: str | None = None, path: str | None = None) -> str:
    """The line for Ctrl-C in the current command (or in ``name`` at ``path``, for the
    group, whose own context is all that is left when the interrupt reaches it)."""
    ctx = click.get_current_context(silent=True)
    name = name or (ctx.info_name if ctx is not None else None)
    path = path or (ctx.command_path if ctx is not None else "the command")
    note = ctx.meta.get(_NOTE_KEY) if ctx is not None else None
    note = note or INTERRUPTED.get(name or "") or f"Run '{path}' again to start over."
    return f"Interrupted. {note}"


def run_guarded(app: App | None, call: Callable[[], Any]) -> Any:
    """Run a command body, turning known failures into one line and an exit code.

    Messages are printed as text, never as rich markup: they quote config values and AWS
    messages, and a ``[/x]`` in one would otherwise be taken for a closing tag.
    """
    verbose = bool(app and app.verbose)
    err = app.err if app else Console(stderr=True, soft_wrap=True)

    def fail(message: str, code: int) -> None:
        if verbose:
            err.print(traceback.format_exc(), highlight=False, markup=False)
        err.print(f"[bold red]Error:[/] {escape(message)}", highlight=False)
        sys.exit(code)

    try:
        return call()
    except ConfigError as exc:
        for line in exc.problems:
            err.print(f"[bold red]Config error:[/] {escape(line)}", highlight=False)
        err.print("Nothing was changed.", highlight=False)
        sys.exit(EXIT_USAGE)
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE)
    except NoCredentialsError:
        fail("No AWS credentials found (set AWS_PROFILE or pass --profile).", EXIT_USAGE)
    except ClientError as exc:
        fail(describe_client_error(exc), EXIT_FAILED)
    except BotoCoreError as exc:
        fail(f"AWS client error: {exc}", EXIT_FAILED)
    except KeyboardInterrupt:
        fail(interrupted_message(), EXIT_INTERRUPTED)
    except IotpipeError as exc:  # already written for people: a step failed, the embedded
        fail(str(exc), EXIT_FAILED)  # AWS did not start, Timestream is closed to the account
    except OSError as exc:  # a local file or socket: one line that names it, not a traceback
        fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), EXIT_FAILED)


def guarded(fn: F) -> F:
    """Decorator for command bodies: see :func:`run_guarded`."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return run_guarded(current_app(), lambda: fn(*args, **kwargs))

    return wrapper  # type: ignore[return-value]
