"""``iotpipe demo``: the whole tour on the embedded AWS, in one command.

up (both stores: Timestream and the lake) -> send-test (the fleet plus invalid data) ->
wait until Timestream and Athena have every valid message -> the query presets on each -> a device with an identity (``devices add``) -> verify
--probe, the probe published by that device over MQTT with mutual TLS -> down (unless
``--keep``), then a short report. All of it in a deployment of its own
(:func:`demo_deployment`): never the user's. It calls the same functions as the individual
commands (the engine, the sender, the presets, the checks); only the rendering is passed in
(:class:`DemoView`), so this module has no click or rich in it and the CLI keeps one way of
showing each thing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from iotpipe import query
from iotpipe.config import Config
from iotpipe.devices.endpoint import add_to, device_files, remove_device_files
from iotpipe.engine import Engine
from iotpipe.errors import IotpipeError, UsageError
from iotpipe.fleet import Message, SendOptions, message_source
from iotpipe.local import lifecycle
from iotpipe.naming import new_suffix
from iotpipe.poll import Backoff, Clock, TimedOut, until
from iotpipe.sinks import sink_for
from iotpipe.state import atomic_write_json, home
from iotpipe.target import Deployment, TargetOptions, make_gateway, resolve
from iotpipe.traffic import BatchCounts, SendSummary, deliver
from iotpipe.verify import Check, verify

DEMO_PRESETS = ("by-device", "per-minute", "quality")
# The demo gives one device a real identity, and the probe is published by it over MQTT.
DEMO_DEVICE = "demo-device"
ROWS_BACKOFF = Backoff(first=0.25, factor=1.5, cap=2.0)


class DemoView(Protocol):
    """How the CLI shows each stage; every method may do nothing (``--output json``)."""

    def steps(self, title: str) -> AbstractContextManager[Callable[..., None]]: ...
    def progress(self, total: int) -> AbstractContextManager[Callable[[BatchCounts], None]]: ...
    def sent(self, summary: SendSummary) -> None: ...
    def result(self, title: str, result: query.Result) -> None: ...
    def checks(self, checks: list[Check]) -> None: ...
    def note(self, text: str) -> None: ...


@dataclass(frozen=True)
class DemoOptions:
    devices: int | None = None
    messages: int = 300
    seed: int = 42
    invalid_ratio: float = 0.03
    timeout_s: float = 120.0
    keep: bool = False


@dataclass
class Stage:
    name: str
    ok: bool = False
    seconds: float = 0.0
    detail: str = ""


@dataclass
class DemoReport:
    deployment: str
    stages: list[Stage] = field(default_factory=list)
    error: str | None = None
    verify_failed: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.error else 3 if self.verify_failed else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "ok": self.exit_code == 0,
            "error": self.error,
            "stages": [s.__dict__ for s in self.stages],
            **self.details,
        }

    @contextmanager
    def stage(self, name: str, clock: Callable[[], float]) -> Iterator[Stage]:
        """Time a stage; it is ok unless it raised or the body said otherwise."""
        stage = Stage(name, ok=True)
        self.stages.append(stage)
        started = clock()
        try:
            yield stage
        except Exception as exc:
            stage.ok, stage.detail = False, str(exc)
            raise
        finally:
            stage.seconds = round(clock() - started, 2)


DEMO_HOME = "demo"


DEMO_MARK = "demo.json"  # in the demo's home: which config it ran with (see demo_guard)


def demo_home() -> Path:
    """The demo's own state (and embedded AWS): never the user's deployments."""
    return home() / DEMO_HOME


def mark_demo_home(base: Path, config: Config) -> None:
    """Say in the demo's home that it is one, and with which config the demo ran.

    Why: the way back to a kept demo is ``IOTPIPE_HOME=.iotpipe/demo iotpipe ...``, which
    reads the folder's config; if that one targets AWS, ``down`` there would find the
    user's own deployment by name and delete it. :func:`demo_guard` refuses that.
    """
    source = config.source if Path(config.source).is_file() else None
    data = {"config": str(Path(source).resolve()) if source else None}
    atomic_write_json(base / DEMO_MARK, data)


def demo_guard(base: Path, config: Config) -> None:
    """Refuse a config that targets AWS in a demo's home (see :func:`mark_demo_home`)."""
    mark = base / DEMO_MARK
    if config.target == "local" or not mark.is_file():
        return
    try:
        used = json.loads(mark.read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError, AttributeError):
        used = None
    hint = f" -c {used}" if used else " -c config/iotpipe.yaml"
    raise UsageError(
        f"{base} is the demo's home: it holds only demo deployments on the embedded AWS, "
        f"and {config.source} targets AWS (target: {config.target}), where this command "
        f"could reach your own deployments. Use the demo's config:{hint}"
    )


@contextmanager
def embedded_aws(
    config: Config, endpoint_url: str | None, keep: bool, base: Path | None = None
) -> Iterator[bool]:
    """Start the demo's embedded AWS (True if we started it) and stop it afterwards,
    unless it was already running or ``keep`` is set. An explicit endpoint is used as is."""
    if config.target != "local":
        raise UsageError(
            "The demo runs on the embedded AWS: use a config with 'target: local' "
            "(the default), e.g. iotpipe -c config/iotpipe.yaml demo."
        )
    if endpoint_url:
        yield False
        return
    where = base or demo_home()
    _, started = lifecycle.ensure_running(where)
    try:
        yield started
    finally:
        if started and not keep:
            lifecycle.stop(where)


@contextmanager
def demo_deployment(
    config: Config,
    opts: TargetOptions,
    keep: bool,
    announce: Callable[[str], None] | None = None,
) -> Iterator[Deployment]:
    """A deployment of the demo's own, on its own embedded AWS, with its own state.

    The demo used to take over the folder's deployment: it mixed the user's rows into its
    report and then ran ``down`` on it. Now it lives in ``<home>/demo`` (its own emulator
    process and state files) with a fresh suffix even if the config fixes one, so what it
    reads, changes and deletes is only ever its own; with ``--endpoint-url`` (a shared
    server) the fresh suffix alone keeps it apart.
    """
    own = config.with_overrides(
        suffix=None,
        timestream=replace(config.timestream, enabled=True),
        lake=replace(config.lake, enabled=True, buffer_s=DEMO_LAKE_BUFFER_S),
    )
    base = demo_home()
    if own.target == "local":
        mark_demo_home(base, own)
    with embedded_aws(own, opts.endpoint_url, keep, base) as started:
        if not started and not opts.endpoint_url and announce:
            announce(
                f"The demo's embedded AWS ({base}) was already running, perhaps with a demo "
                "kept by --keep: this demo gets a deployment of its own and leaves it running."
            )
        gateway = make_gateway(own, opts, announce, base=base)
        # A new suffix every run, never the one in the demo's state: a demo kept with
        # --keep must survive the next demo, whose `down` removes only what it made.
        fresh = new_suffix()
        with resolve(own, gateway, suffix=fresh, create_suffix=True, base=base, lock=True) as dep:
            yield dep


def keep_hint(config: Config) -> str:
    """How to reach what ``demo --keep`` left running: its own home and its own config
    (not whatever config the folder has by then)."""
    env = f"IOTPIPE_HOME={demo_home()}"
    cfg = f" -c {Path(config.source).resolve()}" if Path(config.source).is_file() else ""
    return (
        f"Kept running, apart from your own deployments: explore it with '{env} iotpipe{cfg} "
        f"query', then remove it with '{env} iotpipe{cfg} down --yes' and "
        f"'{env} iotpipe local stop'."
    )


STORE_TITLES = {"timestream": "Timestream", "lake": "Athena"}
# The demo turns both stores on; the lake's buffer is short so the tour need not wait a minute.
DEMO_LAKE_BUFFER_S = 2


def _layout(config: Config, store: str) -> str:
    """The lake has one row per message, like Timestream's multi-measure layout."""
    return config.timestream.record_model if store == "timestream" else "multi"


def expected_rows(messages: list[Message], model: str) -> int:
    """Rows the valid messages become: one per message (multi) or per measure (single)."""
    valid = [m for m in messages if m.invalid is None]
    return len(valid) if model == "multi" else sum(len(m.values) for m in valid)


def count_rows(dep: Deployment, store: str | None = None) -> int:
    """Rows in one store (the default one unless named), probe rows included."""
    return query.store_for(dep, store).count("1d")


def wait_for_rows(
    dep: Deployment,
    target: int,
    timeout_s: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    store: str | None = None,
) -> int:
    """Poll (0.25 s, x1.5, up to 2 s) until the store holds ``target`` rows; return the count.

    Both stores fill asynchronously behind Kinesis: Timestream seconds after the send,
    the lake once Firehose's buffer interval has passed.
    """
    try:
        return until(
            lambda: count_rows(dep, store),
            timeout=timeout_s,
            backoff=ROWS_BACKOFF,
            clock=Clock(sleep=sleep, now=clock),
            done=lambda n: n is not None and n >= target,
        )
    except TimedOut as exc:
        where = "the lake" if store == "lake" else "Timestream"
        raise IotpipeError(
            f"{where} has {exc.last} of {target} expected rows after {timeout_s:.0f} s: "
            "see 'iotpipe verify' and 'iotpipe query quality'."
        ) from None


def run_demo(
    dep: Deployment,
    opts: DemoOptions,
    view: DemoView,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> DemoReport:
    report = DemoReport(dep.names.deployment)
    try:
        _tour(dep, opts, view, report, sleep, clock)
    except Exception as exc:
        report.error = str(exc) or type(exc).__name__
    finally:
        if not opts.keep:
            try:
                with report.stage("down", clock), view.steps(f"down {dep.names.deployment}") as ev:
                    files = device_files(dep)  # the probe device's, in the demo's home
                    Engine(dep, sleep=sleep, clock=clock).destroy(on_event=ev)
                    remove_device_files(dep, files)
            except Exception as exc:
                report.error = report.error or f"down failed: {exc}"
    return report


def _read_back(
    dep: Deployment,
    opts: DemoOptions,
    view: DemoView,
    report: DemoReport,
    messages: list[Message],
    baseline: dict[str, int],
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> None:
    """Wait until every store has every valid message, then ask each the same questions."""
    stores = list(baseline)
    with report.stage("wait for the pipeline", clock) as st:
        found = []
        for store in stores:
            want = expected_rows(messages, _layout(dep.config, store))
            wait_for_rows(dep, baseline[store] + want, opts.timeout_s, sleep, clock, store)
            found.append(f"{want} new rows in {STORE_TITLES[store]}")
        st.detail = ", ".join(found)

    with report.stage("query presets", clock) as st:
        shown: dict[str, Any] = {}
        for store in stores:
            for name in DEMO_PRESETS:
                result = query.query_deployment(dep, preset_name=name, since="1d", store=store)
                view.result(f"query {name} ({STORE_TITLES[store]})", result)
                shown[name if store == stores[0] else f"{name} ({store})"] = result.rows
        st.detail = (
            f"{len(shown['by-device'])} devices, {len(shown['quality'])} quarantine reasons, "
            f"answered by {' and '.join(STORE_TITLES[s] for s in stores)}"
        )
    report.details["queries"] = shown


def _tour(
    dep: Deployment,
    opts: DemoOptions,
    view: DemoView,
    report: DemoReport,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> None:
    with report.stage("up", clock) as st, view.steps(f"up {dep.names.deployment}") as ev:
        Engine(dep, sleep=sleep, clock=clock).apply(on_event=ev)
        st.detail = f"{dep.names.deployment} on {dep.gateway.endpoint_url or 'AWS'}"
    stores = query.enabled_stores(dep.config)
    baseline = {store: count_rows(dep, store) for store in stores}

    send = SendOptions(
        devices=opts.devices,
        messages=opts.messages,
        seed=opts.seed,
        invalid_ratio=opts.invalid_ratio,
    )
    messages = list(message_source(dep.config, send, opts.seed, datetime.now(UTC)))
    with report.stage("send-test", clock) as st, view.progress(len(messages)) as on_batch:
        summary = deliver(messages, sink_for(dep, "kinesis"), on_batch=on_batch)
        st.ok = summary.failed == 0
        st.detail = f"{summary.sent} sent ({summary.invalid} invalid), {summary.rate:.0f} msg/s"
    view.sent(summary)
    report.details["send"] = summary.as_dict()

    _read_back(dep, opts, view, report, messages, baseline, sleep, clock)

    with report.stage("a device over MQTT", clock) as st:
        device = add_to(dep, DEMO_DEVICE, {"location": "demo_bench"})
        # As a user would: `up` again puts the new thing into the function's registry.
        Engine(dep, sleep=sleep, clock=clock).apply()
        st.detail = f"{device.thing}: certificate {str(device.certificate_id)[:12]}..."
    report.details["device"] = device.to_dict()

    with report.stage("verify --probe", clock) as st:
        checks = verify(
            dep, probe=True, via="mqtt", timeout_s=opts.timeout_s, sleep=sleep, clock=clock
        )
        view.checks(checks)
        failed = [c for c in checks if not c.ok]
        st.ok = not failed
        st.detail = f"{len(checks) - len(failed)}/{len(checks)} checks passed (probe over MQTT)"
        report.verify_failed = bool(failed)
    report.details["checks"] = [c.as_dict() for c in checks]
