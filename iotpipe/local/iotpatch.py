"""Replacements for moto's IoT: publish runs the matching topic rules (see `iotrules`).

moto's publish only stores the payload; CreateTopicRule accepts anything. Here publish
fires rules, and a rule the emulator could not run faithfully is refused at creation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iotpipe.local import kinesisstore
from iotpipe.local import motointernals as moto
from iotpipe.local.iotrules import on_publish, validate_rule
from iotpipe.local.iotsql import IotSqlError
from iotpipe.local.patching import service

IOT = service("iot")
KEEP_PAYLOADS = 1000  # moto keeps every published payload; keep the recent ones


@IOT.patch(moto.IoTDataPlaneBackend, "publish", pass_original=True)
def publish(original: Callable[..., None], self: Any, topic: str, payload: bytes) -> None:
    original(self, topic, payload)
    moto.trim_published(self, KEEP_PAYLOADS)
    data = payload if isinstance(payload, bytes) else str(payload).encode()
    on_publish(self.account_id, self.region_name, topic, data)
    kinesisstore.wait_pending()  # what the rules put is durable before the reply


def _validate(sql: str, kwargs: dict[str, Any]) -> None:
    try:
        validate_rule(
            sql,
            kwargs.get("aws_iot_sql_version"),
            kwargs.get("actions") or [],
            kwargs.get("error_action"),
        )
    except IotSqlError as e:
        raise moto.InvalidRequestException(f"{e} (iotpipe embedded AWS)") from None


@IOT.patch(moto.IoTBackend, "create_topic_rule", pass_original=True)
def create_topic_rule(
    original: Callable[..., Any], self: Any, rule_name: str, sql: str, **kwargs: Any
) -> Any:
    _validate(sql, kwargs)
    return original(self, rule_name, sql, **kwargs)


@IOT.patch(moto.IoTBackend, "replace_topic_rule", pass_original=True)
def replace_topic_rule(
    original: Callable[..., Any], self: Any, rule_name: str, **kwargs: Any
) -> Any:
    _validate(kwargs.get("sql", ""), kwargs)
    return original(self, rule_name, **kwargs)
