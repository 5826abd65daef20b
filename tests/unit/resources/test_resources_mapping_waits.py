"""The mapping's waits run on ``iotpipe.poll`` with the context's clock: deleting retries
while Lambda says the mapping is busy, then polls until it is gone, at the mapping's pace
(2 s against AWS), and gives up with a sentence rather than looping forever."""

from __future__ import annotations

import pytest
from resource_helpers import FakeClock, Stubbed, add_error, make_ctx

from iotpipe.resources.errors import ResourceStateError
from iotpipe.resources.mapping import STATE_TIMEOUT, EventSourceMapping

UUID = "8f2b9c4e-1d3a-4b5c-9e6f-7a8b9c0d1e2f"
LISTED = {"EventSourceMappings": [{"UUID": UUID, "State": "Updating"}]}


def test_delete_retries_while_busy_then_waits_until_gone(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    lam = stubbed.stub("lambda")
    lam.add_response("list_event_source_mappings", LISTED)
    add_error(lam, "delete_event_source_mapping", "ResourceInUseException", "busy")
    add_error(lam, "delete_event_source_mapping", "ResourceInUseException", "busy")
    lam.add_response("delete_event_source_mapping", {"UUID": UUID})
    lam.add_response("get_event_source_mapping", {"UUID": UUID, "State": "Deleting"})
    add_error(lam, "get_event_source_mapping", "ResourceNotFoundException", "gone", 404)
    mapping = EventSourceMapping(make_ctx(gateway=stubbed.gateway, clock=clock))
    assert mapping.delete() is True
    assert clock.sleeps == [2.0, 2.0, 2.0]  # two busy answers, one "Deleting"


def test_delete_that_never_finishes_gives_up_with_a_sentence(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    lam = stubbed.stub("lambda")
    lam.add_response("list_event_source_mappings", LISTED)
    lam.add_response("delete_event_source_mapping", {"UUID": UUID})
    polls = int(STATE_TIMEOUT / 2.0) + 1
    for _ in range(polls):
        lam.add_response("get_event_source_mapping", {"UUID": UUID, "State": "Deleting"})
    mapping = EventSourceMapping(make_ctx(gateway=stubbed.gateway, clock=clock))
    with pytest.raises(ResourceStateError, match="still being deleted"):
        mapping.delete()
    assert sum(clock.sleeps) <= STATE_TIMEOUT
