"""The deployment's IoT device policy document (pure).

Least privilege per REFERENCE.md section 6: a device may connect only with its own thing
name as client id while its certificate is attached to that thing, and publish only to its
own telemetry topic. ``${iot:Connection.Thing.ThingName}`` is a policy variable that IoT
resolves at connect time, so one document serves every device of the deployment.
"""

from __future__ import annotations

import json
from typing import Any

THING_VAR = "${iot:Connection.Thing.ThingName}"


def device_topic(topic_filter: str, thing: str) -> str:
    """The topic one device publishes to: the rule's filter with the thing in place of
    each ``+`` (and of a trailing ``#``, which no publish may carry)."""
    levels = [thing if level in ("+", "#") else level for level in topic_filter.split("/")]
    return "/".join(levels)


def policy_topic(topic_filter: str) -> str:
    """The topic part of the Publish ARN. MQTT wildcards are literal in policy ARNs, so
    ``+`` becomes the thing-name variable and a trailing ``#`` the policy wildcard ``*``."""
    levels = []
    for level in topic_filter.split("/"):
        levels.append(THING_VAR if level == "+" else "*" if level == "#" else level)
    return "/".join(levels)


def device_policy(
    topic_filter: str, *, partition: str, region: str, account: str
) -> dict[str, Any]:
    """The policy as a dict; ``policy_json`` is the string IoT stores."""
    base = f"arn:{partition}:iot:{region}:{account}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": f"{base}:client/{THING_VAR}",
                "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
            },
            {
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": f"{base}:topic/{policy_topic(topic_filter)}",
            },
        ],
    }


def policy_json(document: dict[str, Any]) -> str:
    """Compact and key-sorted, so the same document is always the same string (the
    comparison ``plan`` makes against the default version)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))
