"""The Kinesis data stream between the IoT rule and the function.

On-demand by default (no shard arithmetic; scales with the fleet); provisioned when the
config asks, with its shard count. CreateStream is asynchronous, so every change waits for
ACTIVE before the next call (Kinesis refuses changes to a stream that is UPDATING).

Encrypted at rest (Security Hub control Kinesis.1): CreateStream takes no key, so ``create``
calls StartStreamEncryption once the stream is ACTIVE, with the AWS-managed key
(``alias/aws/kinesis``) unless ``stream.kms_key`` names a customer key; the stream is then
UPDATING until the change is done, and we wait for ACTIVE again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from iotpipe import policies
from iotpipe.aws import Gateway, error_code, error_message
from iotpipe.resources.base import Context, Discovery, Grant, Props, Resource
from iotpipe.resources.common import deleted, get_or_none, wait
from iotpipe.resources.streamkey import is_aws_managed
from iotpipe.verdict import Check

MODES = {"on_demand": "ON_DEMAND", "provisioned": "PROVISIONED"}


def same_key(ctx: Context, configured: str, described: str | None) -> bool:
    """Kinesis reports the KeyId as given; accept the key's ARN or an alias's ARN too."""
    if not described:
        return False
    if described == configured or described.endswith(f":{configured}"):
        return True
    if configured.endswith(f":{described}"):
        return True
    if is_aws_managed(configured):
        return is_aws_managed(described)
    return described == ctx.stream_key_arn


def already_exists(exc: ClientError) -> bool:
    """ResourceInUseException also means "busy"; only "already exists" means it is there."""
    return error_code(exc) == "ResourceInUseException" and "already exists" in (
        error_message(exc).lower()
    )


def list_streams(gateway: Gateway, prefix: str) -> Iterator[str]:
    for page in gateway.client("kinesis").get_paginator("list_streams").paginate():
        yield from page.get("StreamNames", [])


def stream_health(ctx: Context) -> Check:
    summary = ctx.client("kinesis").describe_stream_summary(StreamName=ctx.names.stream)
    status = summary["StreamDescriptionSummary"]["StreamStatus"]
    encrypted = summary["StreamDescriptionSummary"].get("EncryptionType") == "KMS"
    key = summary["StreamDescriptionSummary"].get("KeyId")
    at_rest = f"encrypted at rest with {key}" if encrypted else "NOT encrypted at rest"
    return Check(
        "Kinesis stream is ACTIVE",
        status == "ACTIVE",
        f"{status}, {at_rest}",
        "" if status == "ACTIVE" else "Wait for UPDATING/CREATING to finish, then verify again.",
    )


class Stream(Resource):
    """Kinesis stream ``<name>-stream-<suffix>``."""

    key = "stream"
    label = "Kinesis stream"
    shown_on_create = ("encryption",)
    discovery = (Discovery(lambda n: n.stream, list_streams),)
    health = (stream_health,)
    grants = (
        Grant("function_role", policies.read_stream),
        Grant("rule_role", policies.put_to_stream),
        Grant("function_role", policies.decrypt_stream, "key"),
        Grant("rule_role", policies.encrypt_for_stream, "key"),
    )
    fixes = {
        "encryption": "The stream is not encrypted at rest with the configured key "
        "(stream.kms_key): run 'iotpipe up' to turn on server-side encryption."
    }

    @property
    def name(self) -> str:
        return self.ctx.names.stream

    @property
    def _kinesis(self) -> Any:
        return self.ctx.client("kinesis")

    def desired(self) -> Props:
        cfg = self.ctx.config.stream
        props: Props = {
            "mode": MODES[cfg.mode],
            "retention_hours": cfg.retention_hours,
            "encryption": f"KMS {cfg.kms_key}",
        }
        if cfg.mode == "provisioned":
            props["shards"] = cfg.shards
        return props

    def describe(self) -> Props | None:
        found = get_or_none(lambda: self._kinesis.describe_stream_summary(StreamName=self.name))
        if found is None:
            return None
        summary = found["StreamDescriptionSummary"]
        if summary.get("StreamStatus") == "DELETING":
            # A stream on its way out cannot be updated or re-created until it is gone.
            self._wait_gone()
            return None
        return {
            "mode": summary.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED"),
            "retention_hours": summary.get("RetentionPeriodHours"),
            "shards": summary.get("OpenShardCount"),
            "encryption": self._encryption(summary),
        }

    def _encryption(self, summary: dict[str, Any]) -> str:
        if summary.get("EncryptionType", "NONE") != "KMS":
            return "NONE"
        configured, key = self.ctx.config.stream.kms_key, summary.get("KeyId")
        return f"KMS {configured if same_key(self.ctx, configured, key) else key}"

    def _encrypt(self) -> None:
        """Start (or change the key of) server-side encryption, then wait for ACTIVE."""
        self._kinesis.start_stream_encryption(
            StreamName=self.name, EncryptionType="KMS", KeyId=self.ctx.config.stream.kms_key
        )
        self._wait_active()

    def create(self) -> dict[str, Any]:
        want = self.desired()
        params: dict[str, Any] = {
            "StreamName": self.name,
            "StreamModeDetails": {"StreamMode": want["mode"]},
        }
        if "shards" in want:
            params["ShardCount"] = want["shards"]
        try:
            self._kinesis.create_stream(**params)
        except ClientError as exc:
            if not already_exists(exc):
                raise
        self._wait_active()
        # Tagged after ACTIVE rather than via CreateStream(Tags=...): moto ignores the latter.
        self._kinesis.add_tags_to_stream(StreamName=self.name, Tags=dict(self.ctx.tags))
        current = self.describe() or {}
        if current.get("retention_hours") != want["retention_hours"]:
            self._set_retention(current.get("retention_hours") or 24, want["retention_hours"])
        if current.get("encryption") != want["encryption"]:
            self._encrypt()
        return self.outputs()

    def update(self, current: Props, changes: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
        want = self.desired()
        if "mode" in changes:
            self._kinesis.update_stream_mode(
                StreamARN=self.ctx.names.stream_arn,
                StreamModeDetails={"StreamMode": want["mode"]},
            )
            self._wait_active()
        if "shards" in changes:
            self._kinesis.update_shard_count(
                StreamName=self.name,
                TargetShardCount=want["shards"],
                ScalingType="UNIFORM_SCALING",
            )
            self._wait_active()
        if "retention_hours" in changes:
            self._set_retention(current["retention_hours"], want["retention_hours"])
        if "encryption" in changes:
            self._encrypt()
        return self.outputs()

    def _set_retention(self, old: int, new: int) -> None:
        """Kinesis has one call to raise and another to lower the retention."""
        if new > old:
            self._kinesis.increase_stream_retention_period(
                StreamName=self.name, RetentionPeriodHours=new
            )
        else:
            self._kinesis.decrease_stream_retention_period(
                StreamName=self.name, RetentionPeriodHours=new
            )
        self._wait_active()

    def delete(self) -> bool:
        def call() -> None:
            self._kinesis.delete_stream(StreamName=self.name, EnforceConsumerDeletion=True)

        try:
            found = deleted(call)
        except ClientError as exc:
            # Still CREATING/UPDATING after a half-finished `up`: wait, then delete.
            if error_code(exc) != "ResourceInUseException":
                raise
            self._wait_active()
            found = deleted(call)
        if found:
            self._wait_gone()
        return found

    def outputs(self, current: Props | None = None) -> dict[str, Any]:
        return {"name": self.name, "arn": self.ctx.names.stream_arn}

    def _wait_active(self) -> None:
        wait(self.ctx, "kinesis", "stream_exists", StreamName=self.name)

    def _wait_gone(self) -> None:
        wait(self.ctx, "kinesis", "stream_not_exists", StreamName=self.name)
