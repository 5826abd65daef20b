"""verify's pieces without AWS: the configured/health checks and the probe's logic."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from iotpipe.config import Config, Device, ValidationConfig
from iotpipe.failurequeue import Quarantined
from iotpipe.naming import Names
from iotpipe.resources.base import UP, Context, Resource
from iotpipe.resources.function import function_health
from iotpipe.resources.mapping import mapping_health
from iotpipe.state import State
from iotpipe.target import Deployment
from iotpipe.verify import Probe, configured, run_probe, safely

NAMES = Names.of(Config(), "abc123", "123456789012")
NOW = datetime(2026, 11, 27, 1, 2, 3, 456789, tzinfo=UTC)


class Fake(Resource):
    key: ClassVar[str] = "function"
    label: ClassVar[str] = "Lambda function"

    def __init__(self, current: dict[str, Any] | None) -> None:
        self.current = current

    @property
    def name(self) -> str:
        return "fn"

    def desired(self) -> dict[str, Any]:
        return {"code_sha256": "new", "memory_mb": 256}

    def describe(self) -> dict[str, Any] | None:
        return self.current


def test_configured_missing_drifted_and_matching() -> None:
    missing, _ = configured(Fake(None))
    assert (missing.ok, missing.detail, missing.fix) == (False, "missing", UP)
    drift, current = configured(Fake({"code_sha256": "old", "memory_mb": 256}))
    assert not drift.ok and "code_sha256: old (expected new)" in drift.detail
    assert "not this checkout's package" in drift.fix and current == {
        "code_sha256": "old",
        "memory_mb": 256,
    }
    same, _ = configured(Fake({"code_sha256": "new", "memory_mb": 256}))
    assert same.ok


class FakeGateway:
    local = True
    endpoint_url = None

    def __init__(self, **clients: Any) -> None:
        self.clients = clients

    def client(self, service: str) -> Any:
        return self.clients[service.replace("-", "_")]


class Obj:
    def __init__(self, **methods: Any) -> None:
        self.__dict__.update(methods)


def ctx_with(**clients: Any) -> Context:
    return Context(Config(), NAMES, FakeGateway(**clients))  # type: ignore[arg-type]


def test_mapping_health_reports_a_problem_result_with_where_to_look() -> None:
    mappings = [{"State": "Enabled", "LastProcessingResult": "PROBLEM: Function call failed"}]
    lam = Obj(list_event_source_mappings=lambda **k: {"EventSourceMappings": mappings})
    check = mapping_health(ctx_with(**{"lambda": lam}))
    assert not check.ok and "aws logs tail /aws/lambda/" in check.fix


def test_function_health_needs_active_and_successful() -> None:
    conf = {
        "State": "Active",
        "LastUpdateStatus": "Failed",
        "LastUpdateStatusReason": "zip broken.",
    }
    lam = Obj(get_function_configuration=lambda **k: conf)
    check = function_health(ctx_with(**{"lambda": lam}))
    assert not check.ok and check.fix.startswith("zip broken.")


def test_a_check_that_raises_is_a_failed_check() -> None:
    def boom() -> Any:
        raise RuntimeError("AccessDenied")

    check = safely("x", boom)
    assert (check.ok, check.detail) == (False, "AccessDenied")


def dep_of(config: Config, gateway: Any = None) -> Deployment:
    return Deployment(config, gateway, NAMES, State(Path("/nonexistent")))


def test_probe_always_uses_a_marked_device_even_when_unknown_devices_are_quarantined() -> None:
    probe = Probe.for_deployment(dep_of(Config()), NOW, token="00000abc")
    assert probe.device == "iotpipe-probe-00000abc" and probe.measure == "temperature"
    assert probe.when.microsecond == 456000 and -50 < probe.value < 150 and probe.bad_value > 150
    strict = Config(
        devices={"sensor009": Device("x"), "sensor002": Device("y")},
        validation=ValidationConfig(unknown_devices="quarantine"),
    )
    # The function lets the marked ids through a strict registry (see enrich), so the
    # probe never writes rows under a real device's name, where presets would show them.
    assert Probe.for_deployment(dep_of(strict), NOW, token="1").device == "iotpipe-probe-1"


def test_probe_messages_rows_and_quarantine_matching() -> None:
    probe = Probe.for_deployment(dep_of(Config()), NOW, token="deadbeef")
    good, bad = probe.messages()
    assert good.invalid is None and bad.invalid == "out_of_range"
    assert json.loads(good.data)["timestamp"] == "2026-11-27T01:02:03.456Z"
    assert json.loads(bad.data)["timestamp"] == "2026-11-27T01:02:03.457Z"
    rows = [
        {"time": "2026-11-27 01:02:03.456000000", "v": probe.value},
        {"time": "2026-11-27 01:02:03.999000000"},
    ]
    assert probe.rows_at(rows, 0) == rows[:1] and probe.rows_at(rows, 1) == []
    assert "measure_name = 'metrics'" in probe.sql(dep_of(Config()))
    b64 = base64.b64encode(bad.data).decode()
    assert probe.mine(Quarantined("1", "r", 0, {"payloadBase64": b64}))
    assert probe.mine(Quarantined("1", "r", 0, {"payload": bad.data.decode()}))
    assert not probe.mine(Quarantined("1", "r", 0, {"payload": "other"}))


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


def test_probe_that_never_arrives_times_out_with_backoff_and_says_what_to_do() -> None:
    empty_page = {"QueryId": "q", "Rows": [], "ColumnInfo": []}
    sent: list[Any] = []
    gw = FakeGateway(
        timestream_query=Obj(query=lambda **k: empty_page),
        sqs=Obj(
            get_queue_url=lambda **k: {"QueueUrl": "u"},
            receive_message=lambda **k: {"Messages": []},
            change_message_visibility_batch=lambda **k: None,
        ),
        kinesis=Obj(
            put_records=lambda **k: (
                sent.extend(k["Records"])
                or {"Records": [{"SequenceNumber": "1", "ShardId": "s"} for _ in k["Records"]]}
            )
        ),
    )
    clock = Clock()
    checks = run_probe(
        dep_of(Config(), gw),
        via="kinesis",
        timeout_s=30,
        sleep=clock.sleep,
        clock=lambda: clock.t,
        now=lambda: NOW,
    )
    assert len(sent) == 2
    assert [c.ok for c in checks] == [False, True, False]
    assert "not found after 3" in checks[0].detail and "--probe-timeout" in checks[0].fix
    assert clock.sleeps[:3] == [0.5, 0.75, 1.125] and max(clock.sleeps) == 5.0


def test_a_differing_policy_names_the_statement_and_values_that_differ() -> None:
    """A whole policy cut at 80 characters used to end before the difference."""
    from iotpipe.verify import differences

    statement = {"Sid": "ReadStream", "Effect": "Allow", "Resource": "arn:aws:kinesis:x:1:stream/s"}
    current = {"Version": "2012-10-17", "Statement": [{**statement, "Action": ["kinesis:*"]}]}
    desired = {"Version": "2012-10-17", "Statement": [{**statement, "Action": ["kinesis:Get*"]}]}
    text = differences({"policy": (current, desired)})
    assert text == "policy.Statement[0].Action[0]: kinesis:* (expected kinesis:Get*)"


def test_many_differences_are_counted_after_the_first_three() -> None:
    from iotpipe.verify import differences

    text = differences({f"f{i}": (i, i + 1) for i in range(5)})
    assert (
        text
        == "f0: 0 (expected 1); f1: 1 (expected 2); f2: 2 (expected 3); and 2 more (see 'iotpipe plan')"
    )
