"""The two IAM roles: the function's execution role and the IoT rule's role.

Each is one role with one inline policy, put together from the statements every enabled
kind grants it (``Resource.grants``, written by :mod:`iotpipe.policies`), named per
deployment and region (IAM is global): the recipe's ``iot-kinesis-rule-role`` collided
between deployments, and so did ours between regions. Both depend on nothing, because every
ARN they grant is derivable from names; that lets them be created first, so IAM has
propagated by the time Lambda and IoT need them.

Roles an older iotpipe named without the region are :class:`RetiredRoles`: ``up`` points
the function and the rule at the new roles, then deletes the old ones; ``down`` deletes
them too. Only when their policy grants this deployment's stream (this region, this
account): a same-named deployment elsewhere keeps its roles.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from functools import partial
from typing import Any, ClassVar
from urllib.parse import unquote

from iotpipe import policies
from iotpipe.aws import Gateway, tag_list
from iotpipe.naming import Names
from iotpipe.resources.base import PHASES, Context, Discovery, Props, Resource
from iotpipe.resources.common import deleted, get_or_none
from iotpipe.resources.registry import REGISTRY

POLICY_NAME = "iotpipe"


def delete_role(iam: Any, name: str) -> bool:
    """IAM refuses to delete a role that still has policies: remove them all first."""
    listed = get_or_none(lambda: iam.list_role_policies(RoleName=name))
    if listed is None:
        return False
    for policy_name in listed.get("PolicyNames", []):
        deleted(partial(iam.delete_role_policy, RoleName=name, PolicyName=policy_name))
    attached = get_or_none(lambda: iam.list_attached_role_policies(RoleName=name))
    for policy in (attached or {}).get("AttachedPolicies", []):
        deleted(partial(iam.detach_role_policy, RoleName=name, PolicyArn=policy["PolicyArn"]))
    return deleted(lambda: iam.delete_role(RoleName=name))


def grants(iam: Any, role: str, marker: str) -> bool:
    """Does ``role``'s inline policy grant a resource whose ARN contains ``marker``?"""
    found = get_or_none(lambda: iam.get_role_policy(RoleName=role, PolicyName=POLICY_NAME))
    if found is None:
        return False
    try:
        doc = parse_document(found["PolicyDocument"])
    except ValueError:
        return False
    for statement in doc.get("Statement", []):
        listed = statement.get("Resource", [])
        if any(marker in str(r) for r in ([listed] if isinstance(listed, str) else listed)):
            return True
    return False


def parse_document(doc: Any) -> Any:
    """A policy document as a dict, whatever form IAM returned it in.

    IAM returns documents URL-encoded; boto3 decodes them into dicts, other paths (a moto
    server, a proxy) may leave a JSON string, possibly still percent-encoded.
    """
    if isinstance(doc, dict):
        return doc
    text = str(doc)
    if text.lstrip().startswith("%7B") or text.lstrip().startswith("%7b"):
        text = unquote(text)
    return json.loads(text)


def role_policy(
    role: str, names: Names, key_arn: str | None = None, off: Collection[str] = ()
) -> policies.Document:
    """The inline policy of ``role`` (a role kind's key): every registered kind's grants
    for it, in phase then registration order (see ``Grant``). ``off``: keys of the kinds
    the config switched off, which grant nothing."""
    grants = [
        grant
        for kind in REGISTRY.kinds
        if kind.key not in off
        for grant in kind.grants
        if grant.role == role
    ]
    grants.sort(key=lambda g: PHASES.index(g.phase))  # stable: registration order within
    return policies.document([s for g in grants for s in g.statements(names, key_arn)])


def switched_off(ctx: Context) -> set[str]:
    """Keys of the kinds that grant something but are not enabled in this config."""
    return {k.key for k in REGISTRY.kinds if k.grants and not k(ctx).enabled()}


def function_policy(names: Names, queue: bool, key_arn: str | None = None) -> policies.Document:
    """The function role's policy with or without the failure queue, where there is no
    Context (tests, tools): what ``FunctionRole.policy`` builds from the config."""
    return role_policy(FunctionRole.key, names, key_arn, () if queue else ("queue",))


def rule_policy(names: Names, queue: bool, key_arn: str | None = None) -> policies.Document:
    """The rule role's policy, as :func:`function_policy`."""
    return role_policy(RuleRole.key, names, key_arn, () if queue else ("queue",))


def list_roles(gateway: Gateway, prefix: str) -> Iterator[str]:
    """Every role (IAM filters by path only, so ``prefix`` cannot narrow the listing)."""
    for page in gateway.client("iam").get_paginator("list_roles").paginate():
        yield from (r["RoleName"] for r in page["Roles"])


def grants_stream(gateway: Gateway, role: str, names: Names) -> bool:
    """A role named without the region is this region's when it grants this region's
    stream (of the same suffix and account)."""
    return grants(gateway.client("iam"), role, names.stream_arn)


class _Role(Resource):
    """One role, its trust policy and its single inline policy; subclasses pick the pair."""

    role_attr: ClassVar[str]
    purpose: ClassVar[str]

    @property
    def name(self) -> str:
        return str(getattr(self.ctx.names, self.role_attr))

    @property
    def _iam(self) -> Any:
        return self.ctx.client("iam")

    def trust(self) -> dict[str, Any]:
        raise NotImplementedError

    def policy(self) -> dict[str, Any]:
        """Built from the grants of the kinds this config enables."""
        return role_policy(
            self.key, self.ctx.names, self.ctx.stream_key_arn, switched_off(self.ctx)
        )

    def desired(self) -> Props:
        return {"trust": self.trust(), "policy": self.policy()}

    def describe(self) -> Props | None:
        role = get_or_none(lambda: self._iam.get_role(RoleName=self.name))
        if role is None:
            return None
        inline = get_or_none(
            lambda: self._iam.get_role_policy(RoleName=self.name, PolicyName=POLICY_NAME)
        )
        return {
            "trust": parse_document(role["Role"]["AssumeRolePolicyDocument"]),
            "policy": None if inline is None else parse_document(inline["PolicyDocument"]),
        }

    def create(self) -> dict[str, Any]:
        self._iam.create_role(
            RoleName=self.name,
            AssumeRolePolicyDocument=json.dumps(self.trust()),
            Description=f"iotpipe {self.ctx.names.deployment}: {self.purpose}",
            Tags=tag_list(self.ctx.tags),
        )
        self._put_policy()
        return self.outputs()

    def update(self, current: Props, changes: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
        if "trust" in changes:
            self._iam.update_assume_role_policy(
                RoleName=self.name, PolicyDocument=json.dumps(self.trust())
            )
        if "policy" in changes:
            self._put_policy()
        return self.outputs()

    def _put_policy(self) -> None:
        self._iam.put_role_policy(
            RoleName=self.name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(self.policy())
        )

    def delete(self) -> bool:
        return delete_role(self._iam, self.name)

    def outputs(self, current: Props | None = None) -> dict[str, Any]:
        return {"name": self.name, "arn": self.ctx.names.role_arn(self.name)}


class FunctionRole(_Role):
    """Execution role of the function: read the stream, write the table, log, quarantine."""

    key = "function_role"
    label = "IAM role (function)"
    discovery = (Discovery(lambda n: n.function_role, list_roles, narrow=False),)
    health = ()  # "configured" compares its trust and policy documents
    role_attr = "function_role"
    purpose = "execution role of the telemetry processor"

    def enabled(self) -> bool:
        return self.ctx.config.timestream.enabled  # the processor's: off with it

    def trust(self) -> dict[str, Any]:
        return policies.lambda_trust(self.ctx.names)


class RuleRole(_Role):
    """Role the IoT rule assumes to put records on the stream (and its error action)."""

    key = "rule_role"
    label = "IAM role (IoT rule)"
    discovery = (Discovery(lambda n: n.rule_role, list_roles, narrow=False),)
    health = ()  # "configured" compares its trust and policy documents
    role_attr = "rule_role"
    purpose = "role of the IoT topic rule"

    def trust(self) -> dict[str, Any]:
        return policies.rule_trust(self.ctx.names)


class RetiredRoles(Resource):
    """The two roles as named before names carried the region; only ever deleted."""

    key = "retired_roles"
    label = "IAM roles (names without region)"
    discovery = (
        Discovery(lambda n: n.retired_roles()[0], list_roles, grants_stream, narrow=False),
        Discovery(lambda n: n.retired_roles()[1], list_roles, grants_stream, narrow=False),
    )
    health = ()  # never wanted: verify skips it (not enabled)

    @property
    def name(self) -> str:
        return ", ".join(self.ctx.names.retired_roles())

    def enabled(self) -> bool:
        return False  # the engine deletes what exists, after the new roles are in use

    def _ours(self) -> list[str]:
        iam = self.ctx.client("iam")
        marker = self.ctx.names.stream_arn  # this region, account and suffix
        return [n for n in self.ctx.names.retired_roles() if grants(iam, n, marker)]

    def desired(self) -> Props:
        return {}

    def describe(self) -> Props | None:
        found = self._ours()
        return {"roles": found} if found else None

    def delete(self) -> bool:
        iam = self.ctx.client("iam")
        return any([delete_role(iam, n) for n in self._ours()])

    def outputs(self, current: Props | None = None) -> dict[str, Any]:
        return {}
