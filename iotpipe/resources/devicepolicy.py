"""The deployment's IoT device policy: what a device certificate may do (connect as its
own thing, publish to its own topic). A changed document becomes a new default version,
since a policy in use by certificates cannot be replaced by delete + create."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from iotpipe.aws import Gateway, error_code, tag_list
from iotpipe.devicepolicy import device_policy, policy_json
from iotpipe.devices.scheme import policy_name
from iotpipe.poll import Backoff, retrying
from iotpipe.resources.base import Discovery, Props, Resource
from iotpipe.resources.common import deleted, get_or_none

MAX_VERSIONS = 5  # IoT keeps at most 5 versions of a policy
# DeletePolicy can fail for up to 5 minutes after the last detach (REFERENCE.md).
DELETE_TIMEOUT = 300.0


def list_policies(gateway: Gateway, prefix: str) -> Iterator[str]:
    for page in gateway.client("iot").get_paginator("list_policies").paginate():
        yield from (p["policyName"] for p in page.get("policies", []))


class DevicePolicy(Resource):
    key = "device_policy"
    label = "IoT device policy"
    shown_on_create = ("document",)
    discovery = (Discovery(policy_name, list_policies),)
    health = ()  # "configured" compares the document

    @property
    def name(self) -> str:
        return policy_name(self.ctx.names)

    @property
    def _iot(self) -> Any:
        return self.ctx.client("iot")

    @property
    def arn(self) -> str:
        return self.ctx.names.arn("iot", f"policy/{self.name}")

    def desired(self) -> Props:
        n = self.ctx.names
        doc = device_policy(
            self.ctx.config.iot_rule.topic,
            partition=n.partition,
            region=n.region,
            account=n.account,
        )
        return {"document": doc}

    def describe(self) -> Props | None:
        got = get_or_none(lambda: self._iot.get_policy(policyName=self.name))
        return None if got is None else {"document": json.loads(got["policyDocument"])}

    def create(self) -> dict[str, Any]:
        self._iot.create_policy(
            policyName=self.name,
            policyDocument=policy_json(self.desired()["document"]),
            tags=tag_list(self.ctx.tags),
        )
        return self.outputs()

    def update(self, current: Props, changes: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
        versions = self._non_default_versions()
        if len(versions) >= MAX_VERSIONS - 1:
            oldest = min(versions, key=lambda v: int(v["versionId"]))
            self._iot.delete_policy_version(
                policyName=self.name, policyVersionId=oldest["versionId"]
            )
        self._iot.create_policy_version(
            policyName=self.name,
            policyDocument=policy_json(self.desired()["document"]),
            setAsDefault=True,
        )
        return self.outputs()

    def _non_default_versions(self) -> list[dict[str, Any]]:
        listed = self._iot.list_policy_versions(policyName=self.name)["policyVersions"]
        return [v for v in listed if not v.get("isDefaultVersion")]

    def delete(self) -> bool:
        """Detach what is still attached (``down`` removed the devices first), delete the
        non-default versions, then the policy, retrying while IoT reports a conflict."""
        if self.describe() is None:
            return False
        for page in self._iot.get_paginator("list_targets_for_policy").paginate(
            policyName=self.name
        ):
            for target in page.get("targets", []):
                self._iot.detach_policy(policyName=self.name, target=target)
        for version in self._non_default_versions():
            self._iot.delete_policy_version(
                policyName=self.name, policyVersionId=version["versionId"]
            )

        def conflict(exc: Exception) -> bool:
            return isinstance(exc, ClientError) and error_code(exc) == "DeleteConflictException"

        return retrying(
            lambda: deleted(lambda: self._iot.delete_policy(policyName=self.name)),
            retry_if=conflict,
            timeout=DELETE_TIMEOUT,
            backoff=Backoff(first=1.0, cap=15.0),
            clock=self.ctx.poll_clock,
        )

    def outputs(self, current: Props | None = None) -> dict[str, Any]:
        return {"name": self.name, "arn": self.arn}
