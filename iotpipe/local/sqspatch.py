"""moto's SQS, made O(1) per SendMessage (the "sqs" service; `sqsread` adds its clock).

moto builds a queue's whole attribute dict, including ``ApproximateNumberOfMessages``,
``...Delayed`` and ``...NotVisible`` (each a scan of every message in the queue), each
time it reads one attribute, and SendMessage reads ``ContentBasedDeduplication`` that
way on every send: the pipeline slowed down as its failure queue filled. Here the
attributes are a read-only mapping whose three counts are computed only when one of them
is read, once per mapping, so a send costs the same at any depth and GetQueueAttributes
still reports exact counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from iotpipe.local import motointernals as moto
from iotpipe.local.patching import service

SQS = service("sqs")

COUNTS = {
    "ApproximateNumberOfMessages": "approximate_number_of_messages",
    "ApproximateNumberOfMessagesDelayed": "approximate_number_of_messages_delayed",
    "ApproximateNumberOfMessagesNotVisible": "approximate_number_of_messages_not_visible",
}


def _plain(queue: Any) -> dict[str, Any]:
    """moto's `Queue.attributes`, in its order, with the counts left as placeholders."""
    names = list(queue.BASE_ATTRIBUTES)
    if queue.fifo_queue:
        names += queue.FIFO_ATTRIBUTES
    if queue.kms_master_key_id:
        names += queue.KMS_ATTRIBUTES
    result: dict[str, Any] = {
        n: None if n in COUNTS else getattr(queue, moto.snake(n)) for n in names
    }
    if queue.policy:
        result["Policy"] = queue.policy
    if queue.redrive_policy:
        result["RedrivePolicy"] = json.dumps(queue.redrive_policy)
    for key, value in result.items():
        if isinstance(value, bool):
            result[key] = str(value).lower()
    return result


class QueueAttributes(Mapping[str, Any]):
    """A queue's attributes; the message counts (a scan each) computed on first read."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue
        self._values = _plain(queue)
        self._counted: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        if key in COUNTS and key not in self._counted:
            self._values[key] = getattr(self._queue, COUNTS[key])
            self._counted.add(key)
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"QueueAttributes({dict(self)!r})"


def _attributes(self: Any) -> QueueAttributes:
    return QueueAttributes(self)


attributes = SQS.patch(moto.Queue, "attributes")(
    property(_attributes, doc="The queue's attributes, counts computed on read.")
)
