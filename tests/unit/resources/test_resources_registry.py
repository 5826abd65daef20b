"""The registry of resource kinds: a kind is refused unless it is declared completely, and
``down`` (discovery), ``verify`` and the roles' policies cover every registered kind."""

from __future__ import annotations

import json
from typing import Any

import pytest
from resource_helpers import SUFFIX, make_ctx

from iotpipe import verify
from iotpipe.config import Config, LakeConfig
from iotpipe.discover import find_suffixes
from iotpipe.resources import ALL_KINDS, REGISTRY, build
from iotpipe.resources.base import Context, Resource
from iotpipe.resources.registry import KindError, Registry
from iotpipe.resources.roles import function_policy, rule_policy
from iotpipe.verdict import Check

# Kinds found only through another kind (documented on each): a new kind with no
# discovery must be added here on purpose, or `down` could never find it.
FOUND_THROUGH_OTHERS = {"mapping", "legacy"}


def kind(key_: str, deps: tuple[str, ...] = (), **declared: Any) -> type[Resource]:
    attrs: dict[str, Any] = {"key": key_, "label": key_, "depends_on": deps, **declared}
    return type(f"Kind_{key_}", (Resource,), attrs)


def test_a_dependency_on_an_unknown_kind_is_refused() -> None:
    registry = Registry()
    registry.register(kind("stream", discovery=(), health=()))
    with pytest.raises(KindError, match=r"'function' depends on 'strem'"):
        registry.register(kind("function", ("strem",), discovery=(), health=()))
    assert [k.key for k in registry.kinds] == ["stream"]


def test_a_dependency_registered_later_is_refused() -> None:
    registry = Registry()
    with pytest.raises(KindError, match="registered before it"):
        registry.register(kind("function", ("stream",), discovery=(), health=()))


@pytest.mark.parametrize("missing", ["discovery", "health"])
def test_a_kind_that_does_not_say_how_down_or_verify_see_it_is_refused(missing: str) -> None:
    declared = {"discovery": (), "health": ()}
    del declared[missing]
    with pytest.raises(KindError, match=f"does not declare {missing}"):
        Registry().register(kind("bucket", **declared))


def test_a_key_registered_twice_is_refused() -> None:
    registry = Registry()
    registry.register(kind("stream", discovery=(), health=()))
    with pytest.raises(KindError, match="twice"):
        registry.register(kind("stream", discovery=(), health=()))


def test_every_kind_is_discoverable_unless_found_through_another() -> None:
    silent = {k.key for k in ALL_KINDS if not k.discovery}
    assert silent == FOUND_THROUGH_OTHERS


@pytest.mark.usefixtures("moto")
def test_discovery_finds_every_discoverable_kind_alone() -> None:
    """Each kind's own listing finds the deployment: made for real on moto, then each
    kind is asked alone, so a kind whose discovery is wrong cannot hide behind another.
    Both stores are on, so the lake's kinds are made too."""
    ctx = make_ctx(Config(lake=LakeConfig(enabled=True)))
    for res in build(ctx):
        if res.enabled():
            ctx.outputs[res.key] = res.create()
    iam = ctx.client("iam")
    for role in ctx.names.retired_roles():  # what an older iotpipe named without region
        iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
        doc = json.dumps(function_policy(ctx.names, queue=True))
        iam.put_role_policy(RoleName=role, PolicyName="iotpipe", PolicyDocument=doc)
    ident = ctx.gateway.identity()
    for registered in ALL_KINDS:
        for way in registered.discovery:
            found = find_suffixes(ctx.config, ctx.gateway, ident, kinds=[registered])
            assert (registered.key, found) == (registered.key, [SUFFIX]), way
    assert find_suffixes(ctx.config, ctx.gateway, ident) == [SUFFIX]


def test_verify_runs_every_registered_kinds_health_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[str] = []

    def recorder(key: str) -> Any:
        def check(ctx: Context) -> Check:
            ran.append(key)
            return Check(key, True)

        return check

    for registered in ALL_KINDS:
        monkeypatch.setattr(registered, "health", (recorder(registered.key),))
    monkeypatch.setattr(verify, "configured", lambda res: (Check(res.key, True), {}))
    ctx = make_ctx()
    verify.resource_checks(None, ctx)  # type: ignore[arg-type]
    assert sorted(ran) == sorted(k.key for k in ALL_KINDS if k(ctx).enabled())
    assert {"stream", "timestream", "function", "mapping", "queue"} <= set(ran)


def test_every_grant_names_a_registered_role() -> None:
    roles = {k.key for k in REGISTRY.kinds}
    assert all(g.role in roles for k in ALL_KINDS for g in k.grants)
    assert {g.role for k in ALL_KINDS for g in k.grants} == {
        "function_role",
        "rule_role",
        "transform_role",
        "firehose_role",
    }


def test_policies_keep_the_statement_order_deployed_roles_have() -> None:
    """Built from the kinds' grants, in the order roles already carry (another order would
    be an update of every existing role in `plan`)."""
    ctx = make_ctx()
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    fn = function_policy(ctx.names, queue=True, key_arn=key)["Statement"]
    assert [s["Sid"] for s in fn] == [
        "ReadStream",
        "WriteTable",
        "DiscoverTimestreamEndpoints",
        "WriteLogs",
        "DecryptStream",
        "Quarantine",
    ]
    rule = rule_policy(ctx.names, queue=True, key_arn=key)["Statement"]
    assert [s["Sid"] for s in rule] == ["PutToStream", "EncryptForStream", "ErrorAction"]
    assert [s["Sid"] for s in rule_policy(ctx.names, queue=False)["Statement"]] == ["PutToStream"]
