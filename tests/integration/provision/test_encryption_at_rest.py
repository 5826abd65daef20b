"""Encryption at rest through plan / up / verify against moto (issue 8, item 13)."""

from __future__ import annotations

from pathlib import Path

from provision_helpers import aws_config, make_deployment

from iotpipe.engine import Engine
from iotpipe.verify import resource_checks


def test_up_encrypts_verify_shows_it_and_drift_is_caught_and_repaired(
    aws_endpoint: str | None, home: Path
) -> None:
    dep = make_deployment(aws_config(), aws_endpoint)
    engine = Engine(dep, sleep=lambda s: None)
    planned = {s.key: s for s in engine.plan().steps}
    assert planned["stream"].changes == {"encryption": (None, "KMS alias/aws/kinesis")}
    engine.apply()

    kinesis = dep.gateway.client("kinesis")
    summary = kinesis.describe_stream_summary(StreamName=dep.names.stream)
    assert summary["StreamDescriptionSummary"]["EncryptionType"] == "KMS"
    assert summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
    checks = {c.name: c for c in resource_checks(dep)}
    assert all(c.ok for c in checks.values()), [c for c in checks.values() if not c.ok]
    assert "encrypted at rest with alias/aws/kinesis" in checks["Kinesis stream is ACTIVE"].detail
    assert "encrypted at rest (SSE-SQS)" in checks["Failure queue depth"].detail

    # Someone turns encryption off: verify says so and how to fix it; up turns it back on.
    kinesis.stop_stream_encryption(
        StreamName=dep.names.stream, EncryptionType="KMS", KeyId="alias/aws/kinesis"
    )
    failed = [c for c in resource_checks(dep) if not c.ok]
    assert len(failed) == 1 and failed[0].name.startswith("Kinesis stream")
    assert "encryption: NONE (expected KMS alias/aws/kinesis)" in failed[0].detail
    assert "stream.kms_key" in failed[0].fix
    plan = engine.plan()
    assert [(s.key, s.action, s.changes) for s in plan.changes] == [
        ("stream", "update", {"encryption": ("NONE", "KMS alias/aws/kinesis")})
    ]
    engine.apply(plan)
    assert all(c.ok for c in resource_checks(dep))
