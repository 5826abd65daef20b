"""Replacements for moto's IoT: publish runs the matching topic rules (see `iotrules`).

moto's publish only stores the payload; CreateTopicRule accepts anything. Here publish
fires rules, and a rule the emulator could not run faithfully is refused at creation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iotpipe.local.runtime import original


def publish(self: Any, topic: str, payload: bytes) -> None:
    from iotpipe.local.iotrules import on_publish

    original("moto.iotdata.models", "IoTDataPlaneBackend", "publish")(self, topic, payload)
    if len(self.published_payloads) > 1000:  # moto keeps every payload; keep the recent ones
        del self.published_payloads[:-1000]
    data = payload if isinstance(payload, bytes) else str(payload).encode()
    on_publish(self.account_id, self.region_name, topic, data)


def validated(attr: str) -> Callable[..., Any]:
    def replacement(self: Any, rule_name: str, *args: Any, **kwargs: Any) -> Any:
        from moto.iot.exceptions import InvalidRequestException

        from iotpipe.local.iotrules import validate_rule
        from iotpipe.local.iotsql import IotSqlError

        sql = args[0] if args else kwargs.get("sql", "")
        try:
            validate_rule(
                sql,
                kwargs.get("aws_iot_sql_version"),
                kwargs.get("actions") or [],
                kwargs.get("error_action"),
            )
        except IotSqlError as e:
            raise InvalidRequestException(f"{e} (iotpipe embedded AWS)") from None
        return original("moto.iot.models", "IoTBackend", attr)(self, rule_name, *args, **kwargs)

    return replacement
