"""``verify --probe``: follow a marked valid and invalid message through the pipeline.

A uniquely marked valid message and an invalid one go in at the front door (Kinesis or
the IoT rule); in every enabled store the valid one must become queryable and the invalid
one must stay out: in Timestream it shows up on the failure queue, in the lake under
Firehose's error prefix (both looked up through the lake's store, within lake.buffer_s
plus a margin). The probe's DeviceId starts with `PROBE_DEVICE_PREFIX`, which the function lets through a strict registry and every query
preset leaves out: Timestream cannot delete the rows it leaves behind.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from base64 import b64decode
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from iotpipe import failurequeue
from iotpipe.failurequeue import Quarantined
from iotpipe.fleet import Message, iso_ms
from iotpipe.poll import Backoff, Clock, until
from iotpipe.query import store_for
from iotpipe.sinks import sink_for
from iotpipe.stores.base import Store
from iotpipe.stores.lake import LakeReader
from iotpipe.stores.timestream import PROBE_DEVICE_PREFIX, probe_sql
from iotpipe.target import Deployment
from iotpipe.traffic import deliver
from iotpipe.verdict import Check


@dataclass
class Probe:
    """Two messages marked with ``token``; the invalid one is 1 ms later and out of range."""

    token: str
    device: str
    measure: str
    value: float
    bad_value: float
    when: datetime

    @classmethod
    def for_deployment(cls, dep: Deployment, now: datetime, token: str | None = None) -> Probe:
        cfg = dep.config
        token = token or secrets.token_hex(4)
        device = f"{PROBE_DEVICE_PREFIX}{token}"  # the marker every preset leaves out
        measure = "temperature" if "temperature" in cfg.sensors else sorted(cfg.sensors)[0]
        rng = cfg.sensors[measure]
        mid = (rng.min + rng.max) / 2
        unique = round(mid + int(token, 16) % 10**6 / 10**7, 7)
        bad = rng.max + max(1.0, rng.max - rng.min)
        return cls(
            token,
            device,
            measure,
            unique,
            bad,
            now.replace(microsecond=now.microsecond // 1000 * 1000),
        )

    def messages(self) -> list[Message]:
        out = []
        for value, when, invalid in (
            (self.value, self.when, None),
            (self.bad_value, self.when + timedelta(milliseconds=1), "out_of_range"),
        ):
            stamp = iso_ms(when)
            body = {
                "deviceId": self.device,
                "timestamp": stamp,
                self.measure: value,
                "probe": self.token,
            }
            out.append(Message(self.device, json.dumps(body).encode(), stamp, invalid=invalid))
        return out

    def sql(self, dep: Deployment) -> str:
        """The Timestream query for this probe's rows (what ``probe_rows`` runs there)."""
        names, model = dep.names, dep.config.timestream.record_model
        return probe_sql(names.database, names.table, model, self.device, self.measure)

    def rows_at(self, rows: list[dict[str, Any]], offset_ms: int) -> list[dict[str, Any]]:
        stamp = iso_ms(self.when + timedelta(milliseconds=offset_ms)).replace("T", " ")[:-1]
        return [r for r in rows if str(r.get("time", "")).startswith(stamp)]

    def mine(self, q: Quarantined) -> bool:
        body = q.fields
        text = str(body.get("payload", ""))
        if "payloadBase64" in body:
            text += b64decode(body["payloadBase64"]).decode(errors="replace")
        return self.token in text


def _send(dep: Deployment, probe: Probe, via: str) -> None:
    """The same sinks as send-test; over MQTT the probe is carried by a device identity."""
    sink = sink_for(dep, via)
    try:
        summary = deliver(probe.messages(), sink, workers=1)
    finally:
        getattr(sink, "close", lambda: None)()
    if summary.failed:
        raise RuntimeError(f"could not send the probe messages: {dict(summary.errors)}")


LAKE_MARGIN_S = 30.0  # on AWS, past lake.buffer_s: the transform, Parquet, the S3 write
LOCAL_LAKE_MARGIN_S = 10.0  # the embedded AWS flushes on time


@dataclass
class Watch:
    """One thing the probe waits for, for at most ``wait_s`` after sending."""

    look: Callable[[], Any]
    wait_s: float
    found: Any = None
    after: float = 0.0
    over: bool = False


def lake_wait_s(dep: Deployment, timeout_s: float) -> float:
    """Firehose holds rows (and error records) for ``lake.buffer_s``: wait that plus a
    margin, never longer than ``--probe-timeout``."""
    local = dep.gateway.local or dep.gateway.endpoint_url
    margin = LOCAL_LAKE_MARGIN_S if local else LAKE_MARGIN_S
    return min(timeout_s, dep.config.lake.buffer_s + margin)


def run_probe(
    dep: Deployment,
    *,
    via: str = "iot",
    timeout_s: float = 180.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    token: str | None = None,
) -> list[Check]:
    """Send the probe pair and poll (backoff 0.5 s x1.5 up to 5 s) until every enabled
    store has shown both, or its wait is over."""
    probe = Probe.for_deployment(dep, now(), token)
    ts = dep.config.timestream.enabled
    lake = LakeReader(dep, clock=Clock(sleep, clock), now=now) if dep.config.lake.enabled else None
    watches: dict[str, Watch] = {}
    if ts:
        store = store_for(dep, "timestream")
        watches["rows"] = Watch(lambda: probe.rows_at(_rows(store, probe), 0) or None, timeout_s)
        watches["queue"] = _queue_watch(dep, probe, timeout_s)
    if lake is not None:
        wait_s, oldest = lake_wait_s(dep, timeout_s), probe.when - timedelta(minutes=1)
        watches["lake_rows"] = Watch(lambda: probe.rows_at(_rows(lake, probe), 0) or None, wait_s)
        watches["lake_error"] = Watch(lambda: lake.refused(probe.token, oldest), wait_s)
    started = clock()
    _send(dep, probe, via)

    def step() -> bool:
        """Look once more for what is missing; a watch ends after its first look past its
        wait (so the time reported is all it waited)."""
        for w in watches.values():
            if w.found is None and not w.over:
                w.found = w.look()
                w.after = clock() - started
                w.over = w.after > w.wait_s
        return all(w.found is not None or w.over for w in watches.values())

    backoff = Backoff(first=0.5, factor=1.5, cap=5.0)
    until(step, timeout=math.inf, backoff=backoff, clock=Clock(sleep, clock), done=bool)
    checks: list[Check] = []
    if ts:
        leaked = probe.rows_at(_rows(store, probe), 1)
        checks += _probe_checks(dep, probe, via, watches["rows"], leaked, watches["queue"])
    if lake is not None:
        leaked = probe.rows_at(_rows(lake, probe), 1)
        checks += _lake_checks(dep, probe, via, watches["lake_rows"], leaked, watches["lake_error"])
    return checks


def _rows(store: Store, probe: Probe) -> list[dict[str, Any]]:
    return store.probe_rows(probe.device, probe.measure)


def _queue_watch(dep: Deployment, probe: Probe, timeout_s: float) -> Watch:
    """The invalid message on the failure queue; the probe deletes it when found."""
    sqs = dep.gateway.client("sqs")
    url = failurequeue.existing_queue_url(dep)

    def look() -> Quarantined | None:
        with failurequeue.peek(sqs, url, wait_s=failurequeue.long_poll_s(dep)) as messages:
            quarantined = next((q for q in messages if probe.mine(q)), None)
            if quarantined is not None:
                failurequeue.forget(sqs, url, quarantined)  # the probe cleans up after itself
        return quarantined

    return Watch(look, timeout_s)


def _found(w: Watch) -> str:
    return f"{'found' if w.found is not None else 'not found'} after {w.after:.1f} s"


def _arrived(title: str, valid: Watch, fix: str) -> Check:
    """The valid probe message's check: the same for every store, bar the fix."""
    seen = valid.found is not None
    return Check(title, seen, _found(valid), "" if seen else fix)


def _kept_out(leaked: list[dict[str, Any]], store: str, writer: str) -> Check:
    """The invalid probe message's check: what the writer let through is the range's fault."""
    return Check(
        f"Probe: invalid message kept out of {store}",
        not leaked,
        "absent" if not leaked else f"written: {leaked[0]}",
        ""
        if not leaked
        else f"The {writer} accepted an out-of-range value: check the "
        "'sensors' ranges in the config and redeploy with 'iotpipe up'.",
    )


def _probe_checks(
    dep: Deployment,
    probe: Probe,
    via: str,
    valid: Watch,
    leaked: list[dict[str, Any]],
    queued: Watch,
) -> list[Check]:
    """What the probe saw in Timestream and on the queue, as checks with their fixes."""
    logs = f"the function's logs (aws logs tail {dep.names.log_group})"
    quarantined: Quarantined | None = queued.found
    return [
        _arrived(
            f"Probe: valid message from {probe.device} is queryable (via {via})",
            valid,
            f"Fix the failed checks above, then read {logs} "
            "and 'iotpipe query quality'; a larger --probe-timeout helps on a cold AWS start.",
        ),
        _kept_out(leaked, "Timestream", "function"),
        Check(
            "Probe: invalid message is on the failure queue",
            quarantined is not None,
            f"reason {quarantined.reason}" if quarantined else _found(queued),
            "" if quarantined else f"Check the function's FAILURE_QUEUE_URL and {logs}.",
        ),
    ]


def _lake_checks(
    dep: Deployment,
    probe: Probe,
    via: str,
    valid: Watch,
    leaked: list[dict[str, Any]],
    refused: Watch,
) -> list[Check]:
    """What the probe saw in the lake (Athena, the error prefix), as checks with fixes."""
    names = dep.names
    logs = f"the transform's logs (aws logs tail {names.transform_log_group})"
    stream = f"aws firehose describe-delivery-stream --delivery-stream-name {names.delivery_stream}"
    return [
        _arrived(
            f"Probe: valid message from {probe.device} is queryable in Athena (via {via})",
            valid,
            f"Fix the failed checks above, then read {logs} and '{stream}'; rows "
            f"reach S3 after lake.buffer_s ({dep.config.lake.buffer_s} s).",
        ),
        _kept_out(leaked, "the lake", "transform"),
        Check(
            "Probe: invalid message is under the lake's error prefix",
            refused.found is not None,
            f"reason {refused.found.reason}" if refused.found is not None else _found(refused),
            ""
            if refused.found is not None
            else f"Read {logs} and 'iotpipe query quality --store lake'.",
        ),
    ]


def guarded_probe(
    dep: Deployment,
    via: str,
    timeout_s: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> list[Check]:
    try:
        return run_probe(dep, via=via, timeout_s=timeout_s, sleep=sleep, clock=clock)
    except Exception as exc:  # reported as the probe's result
        return [Check("Probe", False, str(exc), "Fix the cause above and verify again.")]
