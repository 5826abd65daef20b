"""moto's SQS message clock, made cheap (part of the "sqs" service, with `sqspatch`).

Every ReceiveMessage and every message count scans the queue and asks each message
whether it is visible and whether it is delayed. moto answers each question by building
two datetimes (``unix_time_millis``: ``utcnow()`` minus the epoch), about 10 us a message:
at 100,000 quarantined messages one ReceiveMessage took 3 s and GetQueueAttributes 6 s,
which made ``iotpipe query quality`` (a bounded sample and the queue's depth) slow on a
deep queue. The same comparison against ``time.time()`` (the same clock, in ms) costs
about as much as the attribute lookup.
"""

from __future__ import annotations

import time
from typing import Any

from iotpipe.local import motointernals as moto
from iotpipe.local.patching import service

SQS = service("sqs")


def _visible(self: Any) -> bool:
    return bool(time.time() * 1000.0 > self.visible_at)


def _delayed(self: Any) -> bool:
    return bool(time.time() * 1000.0 < self.delayed_until)


visible = SQS.patch(moto.Message, "visible")(
    property(_visible, doc="Whether the message may be received now.")
)
delayed = SQS.patch(moto.Message, "delayed")(
    property(_delayed, doc="Whether the message is still delayed (DelaySeconds).")
)
