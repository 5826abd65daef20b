"""The SQS failure queue: where records that cannot be written end up, never dropped.

Fed by three producers: the event source mapping's OnFailure destination (batches that ran
out of retries), the function (invalid or rejected records, with the reason) and the IoT
rule's errorAction (messages the Kinesis action could not deliver). Retention is the
maximum, 14 days, because quarantined data is the only copy left. Encrypted at rest with
SSE-SQS, stated in CreateQueue (``SqsManagedSseEnabled=true``) and checked by ``plan`` and
``verify``, rather than left to the account's default.
"""

from __future__ import annotations

from typing import Any

from iotpipe.aws import retry_on_message
from iotpipe.resources.base import Props, Resource
from iotpipe.resources.common import deleted, get_or_none, queue_enabled
from iotpipe.resources.errors import ResourceStateError

RETENTION_SECONDS = 1_209_600  # 14 days, the SQS maximum
# SQS refuses to re-create a name for 60 s after deleting it (`down` then `up`).
DELETED_RECENTLY = ("wait 60 seconds",)
DELETED_RECENTLY_CODES = ("AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently")


class FailureQueue(Resource):
    """SQS queue ``<name>-failures-<suffix>`` with SSE-SQS and 14-day retention."""

    key = "queue"
    label = "SQS failure queue"
    shown_on_create = ("sse",)

    @property
    def name(self) -> str:
        return self.ctx.names.queue

    def enabled(self) -> bool:
        return queue_enabled(self.ctx)

    def desired(self) -> Props:
        return {"retention_seconds": RETENTION_SECONDS, "sse": True}

    @property
    def _sqs(self) -> Any:
        return self.ctx.client("sqs")

    def _url(self) -> str | None:
        found = get_or_none(lambda: self._sqs.get_queue_url(QueueName=self.name))
        return None if found is None else str(found["QueueUrl"])

    def describe(self) -> Props | None:
        url = self._url()
        if url is None:
            return None
        attrs = get_or_none(
            lambda: self._sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["MessageRetentionPeriod", "SqsManagedSseEnabled"]
            )
        )
        if attrs is None:
            return None
        values = attrs.get("Attributes", {})
        return {
            "retention_seconds": int(values.get("MessageRetentionPeriod", 0)),
            "sse": str(values.get("SqsManagedSseEnabled", "false")).lower() == "true",
        }

    @staticmethod
    def _attributes(props: Props) -> dict[str, str]:
        return {
            "MessageRetentionPeriod": str(props["retention_seconds"]),
            "SqsManagedSseEnabled": "true" if props["sse"] else "false",
        }

    def create(self) -> dict[str, Any]:
        created = retry_on_message(
            lambda: self._sqs.create_queue(
                QueueName=self.name,
                Attributes=self._attributes(self.desired()),
                tags=dict(self.ctx.tags),
            ),
            DELETED_RECENTLY,
            codes=DELETED_RECENTLY_CODES,
            timeout=90.0,
            cap=15.0,
            sleep=self.ctx.sleep,
            clock=self.ctx.clock,
        )
        return self._outputs(str(created["QueueUrl"]))

    def update(self, current: Props, changes: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
        url = self._url()
        if url is None:
            raise ResourceStateError(f"queue {self.name} disappeared during update")
        wanted = self._attributes(self.desired())
        names = {"retention_seconds": "MessageRetentionPeriod", "sse": "SqsManagedSseEnabled"}
        attrs = {names[f]: wanted[names[f]] for f in changes if f in names}
        if attrs:
            self._sqs.set_queue_attributes(QueueUrl=url, Attributes=attrs)
        return self._outputs(url)

    def delete(self) -> bool:
        url = self._url()
        if url is None:
            return False
        return deleted(lambda: self._sqs.delete_queue(QueueUrl=url))

    def outputs(self) -> dict[str, Any]:
        url = self._url()
        if url is None:
            raise ResourceStateError(f"queue {self.name} does not exist")
        return self._outputs(url)

    def _outputs(self, url: str) -> dict[str, Any]:
        return {"name": self.name, "url": url, "arn": self.ctx.names.queue_arn}
