"""The function's log group, created before the function rather than by Lambda.

Lambda creates ``/aws/lambda/<function>`` on first invocation with retention "never
expire", untagged, and ``down`` would not know to remove it. Creating it up front gives it
a retention (``function.log_retention_days``) and the deployment tag.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from iotpipe import policies
from iotpipe.aws import Gateway, error_code
from iotpipe.resources.base import Discovery, Grant, Props, Resource
from iotpipe.resources.common import deleted


def list_log_groups(gateway: Gateway, prefix: str) -> Iterator[str]:
    pages = gateway.client("logs").get_paginator("describe_log_groups")
    for page in pages.paginate(logGroupNamePrefix=prefix):
        yield from (g["logGroupName"] for g in page["logGroups"])


class LogGroup(Resource):
    """CloudWatch Logs group ``/aws/lambda/<function>``."""

    key = "log_group"
    label = "CloudWatch log group"
    discovery = (Discovery(lambda n: n.log_group, list_log_groups),)
    health = ()  # a group has no run-time state to go wrong
    grants = (Grant("function_role", policies.write_logs),)
    # Its ``Names`` entry: the lake's transform has a group of its own (this class).
    names_attr: ClassVar[str] = "log_group"

    def enabled(self) -> bool:
        return self.ctx.config.timestream.enabled  # the processor's: off with it

    @property
    def name(self) -> str:
        return str(getattr(self.ctx.names, self.names_attr))

    @property
    def arn(self) -> str:
        return self.ctx.names.arn("logs", f"log-group:{self.name}")

    @property
    def _logs(self) -> Any:
        return self.ctx.client("logs")

    def desired(self) -> Props:
        return {"retention_days": self.ctx.config.function.log_retention_days}

    def describe(self) -> Props | None:
        pages = self._logs.get_paginator("describe_log_groups").paginate(
            logGroupNamePrefix=self.name
        )
        for page in pages:
            for group in page.get("logGroups", []):
                if group.get("logGroupName") == self.name:
                    return {"retention_days": group.get("retentionInDays")}
        return None

    def create(self) -> dict[str, Any]:
        try:
            self._logs.create_log_group(logGroupName=self.name, tags=dict(self.ctx.tags))
        except ClientError as exc:
            # Lambda itself creates the group when a function logs before we get here.
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise
            self._logs.tag_resource(resourceArn=self.arn, tags=dict(self.ctx.tags))
        self._set_retention()
        return self.outputs()

    def update(self, current: Props, changes: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
        self._set_retention()
        return self.outputs()

    def _set_retention(self) -> None:
        self._logs.put_retention_policy(
            logGroupName=self.name, retentionInDays=self.desired()["retention_days"]
        )

    def delete(self) -> bool:
        return deleted(lambda: self._logs.delete_log_group(logGroupName=self.name))

    def outputs(self, current: Props | None = None) -> dict[str, Any]:
        return {"name": self.name, "arn": self.arn}
