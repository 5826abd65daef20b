"""The IoT Core topic rule that forwards device messages to the stream.

Created after its role (the recipe created it before, and IoT refuses a role it cannot
assume), with an errorAction to the failure queue: without one a failing Kinesis action
is invisible. IoT checks the role at create time and says "unable to assume role" while
IAM propagates; that message (and only that) is retried.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

from iotpipe.aws import Gateway
from iotpipe.resources.base import Discovery, Props, Resource
from iotpipe.resources.common import deleted, failure_queue_url, get_or_none, retry_iam

SQL_VERSION = "2016-03-23"
ROLE_NOT_READY = ("unable to assume role",)
ROLE_NOT_READY_CODES = ("InvalidRequestException",)
# IoT answers a missing rule with UnauthorizedException in some versions.
MISSING_RULE = ("UnauthorizedException",)


def list_rules(gateway: Gateway, prefix: str) -> Iterator[str]:
    for page in gateway.client("iot").get_paginator("list_topic_rules").paginate():
        yield from (r["ruleName"] for r in page.get("rules", []))


class TopicRule(Resource):
    """IoT rule ``<name>_rule_<suffix>``: topic filter -> Kinesis, errors -> SQS."""

    key = "rule"
    label = "IoT topic rule"
    depends_on = ("rule_role", "stream", "queue")
    discovery = (Discovery(lambda n: n.rule, list_rules),)
    health = ()  # "configured" already checks it is enabled and points at the stream
    fixes = {
        "disabled": "The rule is disabled, so IoT messages go nowhere: "
        "run 'iotpipe up' to enable it.",
        "actions": "The rule does not send to this deployment's stream with its role: "
        "run 'iotpipe up' to restore the action.",
    }

    @property
    def name(self) -> str:
        return self.ctx.names.rule

    @property
    def _iot(self) -> Any:
        return self.ctx.client("iot")

    def desired(self) -> Props:
        names = self.ctx.names
        role_arn = names.role_arn(names.rule_role)
        rule = self.ctx.config.iot_rule
        queue_url = failure_queue_url(self.ctx)
        return {
            # The topic is validated by config.py to be safe inside single quotes.
            "sql": f"SELECT *, timestamp() AS processing_time FROM '{rule.topic}'",
            "sql_version": SQL_VERSION,
            "disabled": False,
            "actions": [
                {
                    "kinesis": {
                        "streamName": names.stream,
                        "partitionKey": rule.partition_key,
                        "roleArn": role_arn,
                    }
                }
            ],
            "error_action": (
                {"sqs": {"queueUrl": queue_url, "roleArn": role_arn, "useBase64": False}}
                if queue_url
                else None
            ),
        }

    def describe(self) -> Props | None:
        found = get_or_none(lambda: self._iot.get_topic_rule(ruleName=self.name), *MISSING_RULE)
        if found is None:
            return None
        rule = found.get("rule", {})
        return {
            "sql": rule.get("sql"),
            "sql_version": rule.get("awsIotSqlVersion"),
            "disabled": bool(rule.get("ruleDisabled", False)),
            "actions": rule.get("actions", []),
            "error_action": rule.get("errorAction") or None,
        }

    def _payload(self) -> dict[str, Any]:
        want = self.desired()
        payload: dict[str, Any] = {
            "sql": want["sql"],
            "description": f"iotpipe {self.ctx.names.deployment}: sensor telemetry to Kinesis",
            "actions": want["actions"],
            "ruleDisabled": want["disabled"],
            "awsIotSqlVersion": want["sql_version"],
        }
        if want["error_action"]:
            payload["errorAction"] = want["error_action"]
        return payload

    def create(self) -> dict[str, Any]:
        payload = self._payload()
        # CreateTopicRule takes tags as one URL-encoded query string: "k=v&k2=v2" (%20, not +).
        tags = urlencode(sorted(self.ctx.tags.items()), quote_via=quote)
        retry_iam(
            self.ctx,
            lambda: self._iot.create_topic_rule(
                ruleName=self.name, topicRulePayload=payload, tags=tags
            ),
            ROLE_NOT_READY,
            ROLE_NOT_READY_CODES,
        )
        return self.outputs()

    def update(self, current: Props, changes: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
        payload = self._payload()
        retry_iam(
            self.ctx,
            lambda: self._iot.replace_topic_rule(ruleName=self.name, topicRulePayload=payload),
            ROLE_NOT_READY,
            ROLE_NOT_READY_CODES,
        )
        return self.outputs()

    def delete(self) -> bool:
        return deleted(lambda: self._iot.delete_topic_rule(ruleName=self.name), *MISSING_RULE)

    def outputs(self, current: Props | None = None) -> dict[str, Any]:
        return {"name": self.name, "arn": self.ctx.names.rule_arn}
