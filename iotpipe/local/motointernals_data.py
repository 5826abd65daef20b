"""moto's internals the SQS and CloudWatch Logs data parts read and write (`sqsdurable`,
`logstore`): a sibling of `motointernals` (same rules: every moto import and private
attribute in one place, reviewed on a moto upgrade), kept apart so that file stays small.

What is reached into: a queue's message list and pending set (``Queue._messages``,
``_pending_messages``, ``_messages_lock``), a message's ``__dict__`` (rebuilt without the
constructor, which would mint new ids), a log stream's ``events`` and moto's class-wide
event-id counter (``LogEvent._event_id``).
"""

from __future__ import annotations

from typing import Any

from iotpipe.local.motointernals import Unavailable, regional
from iotpipe.local.patching import moto_imports

with moto_imports():
    from moto.logs.models import LogEvent, LogStream, logs_backends
    from moto.sqs.models import Message, Queue, SQSBackend

__all__ = ["LogEvent", "LogStream", "Message", "Queue", "SQSBackend", "Unavailable"]


# -- SQS -----------------------------------------------------------------------------------
def messages(queue: Any) -> list[Any]:
    """The queue's messages, visible, delayed or in flight (moto's own list, not a copy)."""
    held: list[Any] = queue._messages
    return held


def messages_lock(queue: Any) -> Any:
    return queue._messages_lock


def set_messages(queue: Any, restored: list[Any]) -> None:
    """Give a queue its messages back (after a restart); in-flight ones count as pending."""
    with queue._messages_lock:
        queue._messages = restored
        queue._pending_messages = {m for m in restored if not m.visible}
        queue._messages_lock.notify_all()


def message_from(state: dict[str, Any]) -> Any:
    """A moto Message with this saved ``vars()`` (no constructor: it would set new ids)."""
    message = Message.__new__(Message)
    message.__dict__.update(state)
    return message


# -- CloudWatch Logs -----------------------------------------------------------------------
def log_streams() -> list[tuple[str, str, str, Any]]:
    """(account, region, group name, LogStream) of every log stream everywhere."""
    return [
        (account, region, group_name, stream)
        for account, region, backend in regional(logs_backends)
        for group_name, group in list(backend.groups.items())
        for stream in list(group.streams.values())
    ]


def log_stream(account: str, region: str, group: str, stream: str) -> Any:
    """The stream, created with its group if either is missing."""
    logs = logs_backends[account][region]
    logs.ensure_log_group(group)
    logs.ensure_log_stream(group, stream)
    return logs.groups[group].streams[stream]


def log_events(stream: Any) -> list[Any]:
    """The stream's events, oldest first (moto's own list, not a copy)."""
    held: list[Any] = stream.events
    return held


def set_log_events(stream: Any, events: list[tuple[int, int, str, int]]) -> None:
    """Replace the stream's events with (ingestion ms, timestamp ms, message, event id)s;
    moto's event-id counter moves past the largest so new ids stay unique."""
    made = []
    for ingestion, timestamp, message, event_id in events:
        event = LogEvent(ingestion, {"timestamp": timestamp, "message": message})
        event.event_id = event_id
        made.append(event)
    stream.events = made
    top = max((e[3] for e in events), default=-1)
    LogEvent._event_id = max(LogEvent._event_id, top + 1)
