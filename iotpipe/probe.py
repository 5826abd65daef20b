"""``verify --probe``: follow a marked valid and invalid message through the pipeline.

A uniquely marked valid message and an invalid one go in at the front door (Kinesis or
the IoT rule); the valid one must become queryable, the invalid one must stay out of
Timestream and show up on the failure queue. The probe's DeviceId starts with
`PROBE_DEVICE_PREFIX`, which the function lets through a strict registry and every query
preset leaves out: Timestream cannot delete the rows it leaves behind.
"""

from __future__ import annotations

import json
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
from iotpipe.query import store_for
from iotpipe.sinks import sink_for
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
    """Send the probe pair and poll (backoff 0.5 s x1.5 up to 5 s) until both are seen."""
    probe = Probe.for_deployment(dep, now(), token)
    store = store_for(dep)
    sqs = dep.gateway.client("sqs")
    url = failurequeue.existing_queue_url(dep)
    started = clock()
    _send(dep, probe, via)
    valid: list[dict[str, Any]] = []
    quarantined: Quarantined | None = None
    delay = 0.5
    while True:
        if not valid:
            valid = probe.rows_at(store.probe_rows(probe.device, probe.measure), 0)
        if quarantined is None:
            with failurequeue.peek(sqs, url, wait_s=failurequeue.long_poll_s(dep)) as messages:
                quarantined = next((q for q in messages if probe.mine(q)), None)
                if quarantined is not None:
                    failurequeue.forget(sqs, url, quarantined)  # the probe cleans up after itself
        if (valid and quarantined) or clock() - started > timeout_s:
            break
        sleep(delay)
        delay = min(delay * 1.5, 5.0)
    took = f"{clock() - started:.1f} s"
    leaked = probe.rows_at(store.probe_rows(probe.device, probe.measure), 1)
    return _probe_checks(dep, probe, via, took, valid, leaked, quarantined)


def _probe_checks(
    dep: Deployment,
    probe: Probe,
    via: str,
    took: str,
    valid: list[dict[str, Any]],
    leaked: list[dict[str, Any]],
    quarantined: Quarantined | None,
) -> list[Check]:
    """What the probe saw, as checks with a fix for each failure."""
    logs = f"the function's logs (aws logs tail {dep.names.log_group})"
    return [
        Check(
            f"Probe: valid message from {probe.device} is queryable (via {via})",
            bool(valid),
            f"found after {took}" if valid else f"not found after {took}",
            ""
            if valid
            else f"Fix the failed checks above, then read {logs} "
            "and 'iotpipe query quality'; a larger --probe-timeout helps on a cold AWS start.",
        ),
        Check(
            "Probe: invalid message kept out of Timestream",
            not leaked,
            "absent" if not leaked else f"written: {leaked[0]}",
            ""
            if not leaked
            else "The function accepted an out-of-range value: check the "
            "'sensors' ranges in the config and redeploy with 'iotpipe up'.",
        ),
        Check(
            "Probe: invalid message is on the failure queue",
            quarantined is not None,
            f"reason {quarantined.reason}" if quarantined else f"not found after {took}",
            "" if quarantined else f"Check the function's FAILURE_QUEUE_URL and {logs}.",
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
