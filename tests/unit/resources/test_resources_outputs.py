"""An unchanged ``up`` reads each resource once: ``outputs()`` takes what ``describe()``
found (the queue's URL, the mapping's UUID, the function's code hash) instead of asking
AWS again. The stubbed clients answer only the describe calls; a second read would fail."""

from __future__ import annotations

from resource_helpers import Stubbed, make_ctx

from iotpipe.resources.function import Function
from iotpipe.resources.mapping import EventSourceMapping
from iotpipe.resources.queue import FailureQueue

UUID = "8f2b9c4e-1d3a-4b5c-9e6f-7a8b9c0d1e2f"
URL = "https://sqs.us-east-1.amazonaws.com/123456789012/iot-telemetry-failures-abc123"


def test_queue_outputs_come_from_the_description(stubbed: Stubbed) -> None:
    sqs = stubbed.stub("sqs")
    sqs.add_response("get_queue_url", {"QueueUrl": URL})
    attrs = {"MessageRetentionPeriod": "1209600", "SqsManagedSseEnabled": "true"}
    sqs.add_response("get_queue_attributes", {"Attributes": attrs})
    queue = FailureQueue(make_ctx(gateway=stubbed.gateway))
    current = queue.describe()
    assert current == {"retention_seconds": 1_209_600, "sse": True, "url": URL}
    assert queue.outputs(current)["url"] == URL  # no GetQueueUrl queued: none made


def test_mapping_outputs_come_from_the_description(stubbed: Stubbed) -> None:
    lam = stubbed.stub("lambda")
    ctx = make_ctx(gateway=stubbed.gateway)
    found = {"UUID": UUID, "State": "Enabled", "StartingPosition": "TRIM_HORIZON"}
    lam.add_response("list_event_source_mappings", {"EventSourceMappings": [found]})
    mapping = EventSourceMapping(ctx)
    current = mapping.describe()
    assert current is not None and current["uuid"] == UUID
    assert mapping.outputs(current)["uuid"] == UUID


def test_function_outputs_come_from_the_description(stubbed: Stubbed) -> None:
    stubbed.stub("lambda")  # nothing queued: any call fails
    fn = Function(make_ctx(gateway=stubbed.gateway))
    assert fn.outputs({"code_sha256": "c2hh"})["code_sha256"] == "c2hh"
