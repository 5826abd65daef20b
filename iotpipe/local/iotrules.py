"""IoT topic rules that fire: ``iot-data publish`` runs every enabled rule whose filter matches.

moto's publish only stores the payload. The emulator's replacement (`iotpatch.publish`)
and the MQTT broker (`mqttd`) call `on_publish`, which evaluates each matching rule's SQL (`iotsql`) and runs its actions
in-process; when an action fails, the rule's errorAction receives AWS's error message.
Rules run synchronously inside the publish call, so a test can read the stream right after.
Like IoT Core, every rule publishes its metrics to CloudWatch (namespace AWS/IoT:
``TopicMatch`` and ``ParseError`` by RuleName, ``Success`` and ``Failure`` by RuleName and
ActionType), which is where ``iotpipe query quality`` counts what a rule did not deliver.

Actions supported: ``kinesis`` (streamName, partitionKey template, explicitHashKey) and
``sqs`` (queueUrl, useBase64), as actions and as the errorAction. Rules using other
actions or SQL outside the `iotsql` subset are refused at CreateTopicRule/ReplaceTopicRule
with an InvalidRequestException that says what is unsupported.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from functools import lru_cache
from typing import Any

from iotpipe.local import failures, metrics
from iotpipe.local import motointernals as moto
from iotpipe.local.counters import COUNTERS
from iotpipe.local.iotsql import (
    IotSqlError,
    PublishedMessage,
    Rule,
    check_template,
    parse_rule,
    substitute,
)

log = logging.getLogger("iotpipe.local.iot")

SUPPORTED_ACTIONS = ("kinesis", "sqs")
# The ActionType dimension of the rule action metrics (Success, Failure).
ACTION_TYPES = {"kinesis": "Kinesis", "sqs": "SQS"}


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter match: ``+`` is exactly one level, ``#`` (last) is any number (even 0)."""
    f_parts, t_parts = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(f_parts):
        if part == "#":
            return i == len(f_parts) - 1
        if i >= len(t_parts):
            return False
        if part != "+" and part != t_parts[i]:
            return False
    return len(f_parts) == len(t_parts)


@lru_cache(maxsize=256)
def compiled(sql: str, version: str) -> Rule:
    return parse_rule(sql, version)


def validate_rule(
    sql: str,
    version: str | None,
    actions: list[dict[str, Any]],
    error_action: dict[str, Any] | None,
) -> None:
    """Raise IotSqlError when the rule uses anything the emulator cannot run faithfully."""
    compiled(sql, version or "2016-03-23")
    for action in [*(actions or []), *([error_action] if error_action else [])]:
        kinds = [k for k in action if action[k] is not None]
        for kind in kinds:
            if kind not in SUPPORTED_ACTIONS:
                raise IotSqlError(
                    f"rule action '{kind}' is not supported by the embedded AWS "
                    f"(supported: {', '.join(SUPPORTED_ACTIONS)})"
                )
        for template_field in ("partitionKey", "explicitHashKey", "streamName", "queueUrl"):
            for kind in kinds:
                value = action[kind].get(template_field)
                if isinstance(value, str):
                    check_template(value)


def on_publish(account: str, region: str, topic: str, payload: bytes, client_id: str = "") -> int:
    """Run the rules matching `topic`; return how many fired.

    What IoT Core documents for a payload that is not a JSON object ("binary payloads"):
    a rule whose SELECT is only ``*`` passes the bytes on unchanged; any other SELECT
    (``SELECT *, timestamp() AS t`` adds data, which needs a JSON object) cannot be
    evaluated: the rule's ``ParseError`` metric (AWS/IoT, RuleName) counts it and no
    action runs - the errorAction is for failed actions, not for the rule's SQL.
    An empty payload counts as an empty JSON object, as on AWS.
    """
    COUNTERS.add("iot_messages")
    parsed = _json_object(payload)
    ctx = PublishedMessage(
        payload=parsed,
        topic=topic,
        client_id=client_id or "iotpipe-local",
        timestamp_ms=int(time.time() * 1000),
    )
    fired = 0
    for rule in moto.topic_rules(account, region):
        program = _program(rule, topic)
        if program is None:
            continue
        metrics.iot_rule(account, region, rule.rule_name, "TopicMatch")
        if parsed is None and not program.select_star_only:
            _parse_error(account, region, rule.rule_name, payload)
            continue
        message = program.evaluate(ctx)
        if message is None:
            continue
        body = payload if parsed is None else json.dumps(message, separators=(",", ":")).encode()
        fired += 1
        COUNTERS.add("iot_rules_fired")
        _run_actions(account, region, rule, ctx, body, payload)
    return fired


def _json_object(payload: bytes) -> dict[str, Any] | None:
    """The payload as a JSON object ({} when empty), or None: IoT's "non-JSON" payload.

    IoT Core's own example calls the payload ``80`` non-JSON: only an object can have
    data added by SELECT, so arrays, numbers and strings count as non-JSON here too.
    """
    if not payload.strip():
        return {}
    try:
        parsed = json.loads(payload)
    except ValueError:  # UnicodeDecodeError is a ValueError
        return None
    return parsed if isinstance(parsed, dict) else None


def _program(rule: Any, topic: str) -> Rule | None:
    """The compiled rule when it is enabled and listens to `topic`."""
    if rule.rule_disabled:
        return None
    try:
        program = compiled(rule.sql, rule.aws_iot_sql_version)
    except IotSqlError as e:
        log.warning("rule %s: %s", rule.rule_name, e)
        return None
    return program if topic_matches(program.topic_filter, topic) else None


def _parse_error(account: str, region: str, rule_name: str, payload: bytes) -> None:
    COUNTERS.add("iot_parse_errors")
    COUNTERS.add("iot_not_delivered")
    metrics.iot_rule(account, region, rule_name, "ParseError")
    log.warning(
        "rule %s: the payload (%d bytes) is not a JSON object and the rule's SELECT is "
        "not only '*': not delivered (ParseError)",
        rule_name,
        len(payload),
    )


def _run_actions(
    account: str, region: str, rule: Any, ctx: PublishedMessage, body: bytes, original: bytes
) -> None:
    errors: list[dict[str, str]] = []
    for action in rule.actions:
        for kind, params in action.items():
            action_type = ACTION_TYPES.get(kind, kind)
            try:
                _run(account, region, kind, params or {}, ctx, body)
            except Exception as e:
                COUNTERS.add("iot_action_errors")
                metrics.iot_rule(account, region, rule.rule_name, "Failure", action_type)
                errors.append(
                    {
                        "failedAction": f"{kind[0].upper()}{kind[1:]}Action",
                        "failedResource": _resource(kind, params or {}),
                        "errorMessage": f"Failed to run {kind} action: {e}",
                    }
                )
            else:
                metrics.iot_rule(account, region, rule.rule_name, "Success", action_type)
    if errors:
        COUNTERS.add("iot_not_delivered")
    if not errors or not rule.error_action:
        return
    record = failures.iot_error_record(rule.rule_name, ctx.topic, ctx.client_id, original, errors)
    err_body = json.dumps(record).encode()
    for kind, params in rule.error_action.items():
        try:
            _run(account, region, kind, params or {}, ctx, err_body)
        except Exception as e:  # nowhere left to report it but the log and the counters
            COUNTERS.add("iot_error_action_errors")
            log.warning("rule %s: errorAction %s failed: %s", rule.rule_name, kind, e)


def _resource(kind: str, params: dict[str, Any]) -> str:
    return str(params.get("streamName") or params.get("queueUrl") or kind)


def _run(
    account: str, region: str, kind: str, params: dict[str, Any], ctx: PublishedMessage, body: bytes
) -> None:
    if kind == "kinesis":
        key_template = params.get("partitionKey") or "${newuuid()}"
        key = substitute(key_template, ctx) or str(uuid.uuid4())
        explicit = params.get("explicitHashKey")
        moto.put_record(
            account,
            region,
            substitute(params["streamName"], ctx),
            key,
            substitute(explicit, ctx) if explicit else None,
            base64.b64encode(body).decode(),
        )
    elif kind == "sqs":
        q_account, q_region, name = failures.queue_from_url(params["queueUrl"], account, region)
        text = base64.b64encode(body).decode() if params.get("useBase64") else body.decode()
        moto.send_message(q_account, q_region, name, text)
    else:
        raise IotSqlError(f"rule action '{kind}' is not supported by the embedded AWS")
