"""The SQS failure queue: where records that cannot be written end up, never dropped.

Fed by three producers: the event source mapping's OnFailure destination (batches that ran
out of retries), the function (invalid or rejected records, with the reason) and the IoT
rule's errorAction (messages the Kinesis action could not deliver). Retention is the
maximum, 14 days, because quarantined data is the only copy left. Encrypted at rest with
SSE-SQS, stated in CreateQueue (``SqsManagedSseEnabled=true``) and checked by ``plan`` and
``verify``, rather than left to the account's default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from iotpipe import policies
from iotpipe.aws import Gateway, retry_on_message
from iotpipe.resources.base import Context, Discovery, Grant, Props, Resource
from iotpipe.resources.common import deleted, get_or_none, queue_enabled
from iotpipe.resources.errors import ResourceStateError
from iotpipe.verdict import Check

RETENTION_SECONDS = 1_209_600  # 14 days, the SQS maximum
# SQS refuses to re-create a name for 60 s after deleting it (`down` then `up`).
DELETED_RECENTLY = ("wait 60 seconds",)
DELETED_RECENTLY_CODES = ("AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently")


def _true(value: str) -> bool:
    return value.lower() == "true"


class Attribute(NamedTuple):
    """One field as an SQS queue attribute (always a string) and back."""

    name: str
    to_api: Callable[[Any], str]
    from_api: Callable[[str], Any]
    absent: str


# Each field once: desired/describe/create/update all go through this table.
ATTRIBUTES = {
    "retention_seconds": Attribute("MessageRetentionPeriod", str, int, "0"),
    "sse": Attribute("SqsManagedSseEnabled", lambda v: "true" if v else "false", _true, "false"),
}


def list_queues(gateway: Gateway, prefix: str) -> Iterator[str]:
    urls = gateway.client("sqs").list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    return (u.rsplit("/", 1)[-1] for u in urls)


def queue_depth(ctx: Context) -> Check:
    sqs = ctx.client("sqs")
    url = sqs.get_queue_url(QueueName=ctx.names.queue)["QueueUrl"]
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "SqsManagedSseEnabled",
        ],
    )["Attributes"]
    depth = int(attrs.get("ApproximateNumberOfMessages", 0))
    hidden = int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))
    sse = str(attrs.get("SqsManagedSseEnabled", "false")).lower() == "true"
    at_rest = "encrypted at rest (SSE-SQS)" if sse else "NOT encrypted with SSE-SQS"
    detail = f"{depth} message(s) waiting, {hidden} in flight, {at_rest}"
    if depth:
        detail += " (see them with 'iotpipe query quality')"
    return Check("Failure queue depth", True, detail)


class FailureQueue(Resource):
    """SQS queue ``<name>-failures-<suffix>`` with SSE-SQS and 14-day retention."""

    key = "queue"
    label = "SQS failure queue"
    shown_on_create = ("sse",)
    discovery = (Discovery(lambda n: n.queue, list_queues),)
    health = (queue_depth,)
    grants = (
        Grant("function_role", policies.quarantine, "optional"),
        Grant("rule_role", policies.error_action, "optional"),
    )
    fixes = {
        "sse": "The failure queue is not encrypted with SSE-SQS: run 'iotpipe up' to turn it on."
    }

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
        """The attributes, plus ``url`` (not a setting: what ``outputs`` needs)."""
        url = self._url()
        if url is None:
            return None
        names = [a.name for a in ATTRIBUTES.values()]
        attrs = get_or_none(
            lambda: self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)
        )
        if attrs is None:
            return None
        values = attrs.get("Attributes", {})
        props: Props = {
            f: a.from_api(str(values.get(a.name, a.absent))) for f, a in ATTRIBUTES.items()
        }
        return {**props, "url": url}

    @staticmethod
    def _attributes(props: Props, fields: Any = ATTRIBUTES) -> dict[str, str]:
        return {ATTRIBUTES[f].name: ATTRIBUTES[f].to_api(props[f]) for f in fields}

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
        url = current.get("url") or self._url()
        if url is None:
            raise ResourceStateError(f"queue {self.name} disappeared during update")
        attrs = self._attributes(self.desired(), [f for f in changes if f in ATTRIBUTES])
        if attrs:
            self._sqs.set_queue_attributes(QueueUrl=url, Attributes=attrs)
        return self._outputs(url)

    def delete(self) -> bool:
        url = self._url()
        if url is None:
            return False
        return deleted(lambda: self._sqs.delete_queue(QueueUrl=url))

    def outputs(self, current: Props | None = None) -> dict[str, Any]:
        url = (current or {}).get("url") or self._url()
        if url is None:
            raise ResourceStateError(f"queue {self.name} does not exist")
        return self._outputs(url)

    def _outputs(self, url: str) -> dict[str, Any]:
        return {"name": self.name, "url": url, "arn": self.ctx.names.queue_arn}
