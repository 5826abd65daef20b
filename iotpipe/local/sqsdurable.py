"""moto's SQS, made durable (part of the "sqs" service): each message change reaches `sqsstore`.

The hooks wrap the few moto methods every message change goes through, so API calls,
the emulator's own sends (`motointernals.send_message`: IoT rules' error actions, the
pollers' OnFailure destinations) and moto's moves to a dead-letter queue are all covered:
``Queue.add_message`` (send, batch entries, DLQ moves), ``receive_message``,
``Queue.delete_message`` (DeleteMessage and its batch), ``change_message_visibility``
(and its batch), ``purge_queue``, ``delete_queue``. The durability policy is in
`sqsstore`'s docstring. With persistence off every hook is moto's method and nothing more.

Bounded memory: once a message is committed its body and message attributes leave the
heap (`_save`); ``Message.body`` and ``.message_attributes`` become properties that
read them back from the store when a receive (or the send's reply) asks, and hold what
moto sets until it is committed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from iotpipe.local import motointernals as moto
from iotpipe.local import motointernals_data as data
from iotpipe.local import snapshot
from iotpipe.local.durable import PERSISTENCE, Part
from iotpipe.local.patching import service
from iotpipe.local.sqsstore import PAYLOAD, DiskFull, SqsStore, queue_key

log = logging.getLogger("iotpipe.local.sqs")
SQS = service("sqs")
STORE = SqsStore()


def _unavailable(exc: DiskFull) -> data.Unavailable:
    return data.Unavailable(f"{exc}; free space and retry")


def _payload_field(name: str) -> property:
    """The field as moto set it, until `_save` moves it to the store; then the store's."""

    def get(self: Any) -> Any:
        held = self.__dict__
        if name in held:
            return held[name]
        return STORE.payload(self.id).get(name, "" if name == "body" else {})

    def put(self: Any, value: Any) -> None:
        self.__dict__[name] = value

    return property(get, put)


for _name in PAYLOAD:
    SQS.add(data.Message, _name)(_payload_field(_name))


def _save(queue: Any, messages: list[Any]) -> None:
    """Commit; then the committed payloads leave the heap (the store has them)."""
    STORE.save(queue, messages)
    for message in messages:
        for name in PAYLOAD:
            message.__dict__.pop(name, None)


@SQS.patch(data.Queue, "add_message", pass_original=True)
def add_message(original: Any, self: Any, message: Any) -> None:
    """A message is in its queue only once it is committed (else the send fails)."""
    original(self, message)
    if not STORE.enabled:
        return
    held = data.messages(self)
    if not any(m is message for m in reversed(held)):
        return  # a FIFO duplicate moto dropped
    try:
        _save(self, [message])
    except DiskFull as exc:
        with data.messages_lock(self):
            data.messages(self)[:] = [m for m in data.messages(self) if m is not message]
        raise _unavailable(exc) from exc


@SQS.patch(data.SQSBackend, "receive_message", pass_original=True)
def receive_message(
    original: Any,
    self: Any,
    queue_name: str,
    count: int,
    wait_seconds_timeout: int,
    visibility_timeout: int,
    message_attribute_names: list[str] | None = None,
) -> list[Any]:
    """Receive counts, visibility and receipt handles are committed before the reply."""
    result: list[Any] = original(
        self, queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names
    )
    if STORE.enabled and result:
        queue = self.get_queue(queue_name)
        try:
            _save(queue, _by_id(data.messages(queue), {m.id for m in result}))
        except DiskFull as exc:
            raise _unavailable(exc) from exc
    return result


def _by_id(messages: list[Any], ids: set[str]) -> list[Any]:
    """The messages with these ids, in queue order; the scan stops once all are found
    (received messages are near the front: the queue is in send order)."""
    found = []
    for m in messages:
        if m.id in ids:
            found.append(m)
            if len(found) == len(ids):
                break
    return found


@SQS.patch(data.Queue, "delete_message", pass_original=True)
def delete_message(original: Any, self: Any, receipt_handle: str) -> None:
    if not STORE.enabled:
        return original(self, receipt_handle)  # type: ignore[no-any-return]
    ids = [m.id for m in data.messages(self) if m.had_receipt_handle(receipt_handle)]
    original(self, receipt_handle)
    if ids:
        try:
            STORE.forget(ids)
        except DiskFull as exc:
            raise _unavailable(exc) from exc
    return None


@SQS.patch(data.SQSBackend, "change_message_visibility", pass_original=True)
def change_message_visibility(
    original: Any, self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int
) -> None:
    original(self, queue_name, receipt_handle, visibility_timeout)
    if STORE.enabled:
        queue = self.get_queue(queue_name)
        # The message moto changed: the first with that handle, found as moto finds it.
        # Why not all that match: that scan of the whole queue per entry made `query
        # quality`'s release of 50 sampled messages take 3 s at 100,000 quarantined.
        found = next(
            (m for m in data.messages(queue) if m.had_receipt_handle(receipt_handle)), None
        )
        try:
            _save(queue, [found] if found is not None else [])
        except DiskFull as exc:
            raise _unavailable(exc) from exc


@SQS.patch(data.SQSBackend, "purge_queue", pass_original=True)
def purge_queue(original: Any, self: Any, queue_name: str) -> None:
    original(self, queue_name)
    if STORE.enabled:
        STORE.forget_queue(self.get_queue(queue_name))


@SQS.patch(data.SQSBackend, "delete_queue", pass_original=True)
def delete_queue(original: Any, self: Any, queue_name: str) -> None:
    queue = self.get_queue(queue_name)
    original(self, queue_name)
    if STORE.enabled:
        STORE.forget_queue(queue)


# -- the part ------------------------------------------------------------------------------
def _placeholder() -> None:
    """What a message is in the control snapshot: its queue gets it back from `STORE`."""
    return None


def restore() -> int:
    """Give every queue the control snapshot restored its messages; the number restored.

    Messages of a queue that is not there (the snapshot lost it) stay on disk untouched.
    """
    saved = STORE.load()
    restored = 0
    for queue in moto.all_queues():
        states = saved.pop(queue_key(queue), [])
        data.set_messages(queue, [data.message_from(s) for s in states])
        restored += len(states)
    for key, states in saved.items():
        log.warning("%d saved messages of queue %s, which is gone: kept", len(states), key)
    return restored


def open_part(where: Path) -> None:
    STORE.open(where)
    log.info("restored %d SQS messages", restore())


snapshot.register_reducer(data.Message, lambda _message: (_placeholder, ()))
PART = PERSISTENCE.register(Part("sqs", open=open_part, close=STORE.close, usage=STORE.usage))
