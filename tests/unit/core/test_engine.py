"""The engine's DAG, diffing and state-after-every-step, with fake resources (no AWS)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

from iotpipe import engine as engine_mod
from iotpipe.aws import Gateway
from iotpipe.config import Config
from iotpipe.engine import Engine, StepFailed
from iotpipe.errors import UsageError
from iotpipe.naming import Names
from iotpipe.resources.base import Resource
from iotpipe.resources.registry import KindError
from iotpipe.state import State
from iotpipe.target import Deployment


class World:
    """What 'AWS' holds, and a log of every mutating call, shared by the fake resources."""

    def __init__(self) -> None:
        self.props: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_on: set[tuple[str, str]] = set()
        self.barrier: threading.Barrier | None = None
        self.lock = threading.Lock()

    def mutate(self, op: str, key: str) -> None:
        with self.lock:
            self.calls.append((op, key))
        if (op, key) in self.fail_on:
            raise RuntimeError(f"{op} {key} broke")


def fake_kind(key_: str, deps: tuple[str, ...] = (), replace: frozenset[str] = frozenset()) -> type:
    class Fake(Resource):
        key: ClassVar[str] = key_
        label: ClassVar[str] = f"fake {key_}"
        depends_on: ClassVar[tuple[str, ...]] = deps
        replace_on: ClassVar[frozenset[str]] = replace
        world: ClassVar[World]
        wanted: ClassVar[dict[str, Any]] = {"size": 1, "mode": "a"}

        @property
        def name(self) -> str:
            return f"{key_}-x"

        def desired(self) -> dict[str, Any]:
            return dict(self.wanted)

        def describe(self) -> dict[str, Any] | None:
            return self.world.props.get(key_)

        def create(self) -> dict[str, Any]:
            if self.world.barrier is not None and not deps:
                self.world.barrier.wait(timeout=5)
            self.world.mutate("create", key_)
            self.world.props[key_] = self.desired()
            return {"name": self.name}

        def update(self, current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
            self.world.mutate("update", key_)
            self.world.props[key_] = self.desired()
            return {"name": self.name}

        def delete(self) -> bool:
            self.world.mutate("delete", key_)
            return self.world.props.pop(key_, None) is not None

        def outputs(self, current: dict[str, Any] | None = None) -> dict[str, Any]:
            return {"name": self.name}

    return Fake


ROOTS = ("queue", "stream", "timestream", "function_role", "rule_role")


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> World:
    w = World()
    kinds = [fake_kind(k) for k in ROOTS] + [
        fake_kind("function", ("function_role", "queue", "timestream")),
        fake_kind("mapping", ("function", "stream", "queue"), replace=frozenset({"mode"})),
        fake_kind("rule", ("rule_role", "stream", "queue")),
    ]
    for kind in kinds:
        kind.world = w
        kind.wanted = {"size": 1, "mode": "a"}
    w.kinds = {k.key: k for k in kinds}  # type: ignore[attr-defined]
    monkeypatch.setattr(
        engine_mod.resources, "build", lambda ctx: [k(ctx) for k in kinds], raising=False
    )
    monkeypatch.setenv("IOTPIPE_HOME", str(tmp_path))
    return w


def deployment(tmp_path: Path, config: Config | None = None) -> Deployment:
    cfg = config or Config()
    names = Names.of(cfg, "abc123", "123456789012")
    return Deployment(cfg, Gateway(region="us-east-1"), names, State(tmp_path / "d.json"))


def test_cold_apply_creates_in_dependency_order_and_roots_side_by_side(
    world: World, tmp_path: Path
) -> None:
    world.barrier = threading.Barrier(len(ROOTS))  # times out unless all roots run at once
    Engine(deployment(tmp_path)).apply()
    order = [key for op, key in world.calls]
    assert set(order[:5]) == set(ROOTS)
    assert order.index("function") > max(order.index(k) for k in ("function_role", "queue"))
    assert order.index("mapping") > order.index("function")
    assert all(op == "create" for op, _ in world.calls)


def test_second_apply_makes_no_mutating_call(world: World, tmp_path: Path) -> None:
    Engine(deployment(tmp_path)).apply()
    world.calls.clear()
    plan = Engine(deployment(tmp_path)).plan()
    assert plan.changes == []
    Engine(deployment(tmp_path)).apply()
    assert world.calls == []


def test_changed_field_updates_only_that_resource(world: World, tmp_path: Path) -> None:
    Engine(deployment(tmp_path)).apply()
    world.calls.clear()
    world.kinds["function"].wanted = {"size": 2, "mode": "a"}  # type: ignore[attr-defined]
    plan = Engine(deployment(tmp_path)).plan()
    assert [(s.key, s.action, s.changes) for s in plan.changes] == [
        ("function", "update", {"size": (1, 2)})
    ]
    Engine(deployment(tmp_path)).apply()
    assert world.calls == [("update", "function")]


def test_field_that_cannot_change_in_place_replaces(world: World, tmp_path: Path) -> None:
    Engine(deployment(tmp_path)).apply()
    world.calls.clear()
    world.kinds["mapping"].wanted = {"size": 1, "mode": "b"}  # type: ignore[attr-defined]
    Engine(deployment(tmp_path)).apply()
    assert world.calls == [("delete", "mapping"), ("create", "mapping")]


def test_failure_midway_records_what_was_made_and_rerun_completes(
    world: World, tmp_path: Path
) -> None:
    world.fail_on = {("create", "function")}
    dep = deployment(tmp_path)
    with pytest.raises(StepFailed, match="function-x: RuntimeError: create function broke"):
        Engine(dep).apply()
    saved = json.loads(dep.state.path.read_text())
    assert saved["suffix"] == "abc123"
    # The rule needs no function: it may or may not have started before the failure.
    assert set(ROOTS) <= set(saved["resources"]) <= set(ROOTS) | {"rule"}
    assert "mapping" not in world.props  # never started: its dependency failed
    world.fail_on = set()
    world.calls.clear()
    Engine(deployment(tmp_path)).apply()
    made = [c for c in world.calls if c != ("create", "rule")]
    assert made == [("create", "function"), ("create", "mapping")]


def test_destroy_goes_in_reverse_order_and_forgets_state(world: World, tmp_path: Path) -> None:
    dep = deployment(tmp_path)
    Engine(dep).apply()
    world.calls.clear()
    report = Engine(dep).destroy()
    order = [key for _, key in world.calls]
    assert order.index("mapping") < order.index("function") < order.index("function_role")
    assert order.index("rule") < order.index("rule_role") and order.index("rule") < order.index(
        "stream"
    )
    assert world.props == {} and not dep.state.path.exists()
    assert all(r["deleted"] for r in report)
    # Again, with nothing there: NotFound counts as done.
    assert not any(r["deleted"] for r in Engine(dep).destroy())


def test_destroy_after_half_finished_up(world: World, tmp_path: Path) -> None:
    world.fail_on = {("create", "mapping")}
    with pytest.raises(StepFailed):
        Engine(deployment(tmp_path)).apply()
    world.fail_on = set()
    Engine(deployment(tmp_path)).destroy()
    assert world.props == {}


def test_legacy_enabled_without_client_stops_before_any_call(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iotpipe.config import LegacyConfig

    cfg = Config(legacy=LegacyConfig(enabled=True))
    with pytest.raises(UsageError) as info:
        Engine(deployment(tmp_path, cfg)).apply()
    text = str(info.value)
    assert "2025-12-15" in text and "sensors.temperature" in text and "devices" in text
    assert world.calls == []


def test_an_unknown_dependency_is_refused_when_the_engine_is_built(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kinds = [fake_kind("stream"), fake_kind("function", ("stream", "fuction_role"))]
    monkeypatch.setattr(engine_mod.resources, "build", lambda ctx: [k(ctx) for k in kinds])
    with pytest.raises(KindError, match=r"'function' depends on 'fuction_role'"):
        Engine(deployment(tmp_path))
    assert world.calls == []


def test_an_unchanged_step_hands_what_it_described_to_outputs(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Engine(deployment(tmp_path)).apply()
    seen: list[Any] = []

    def outputs(self: Resource, current: dict[str, Any] | None = None) -> dict[str, Any]:
        seen.append(current)
        return {"name": self.name}

    monkeypatch.setattr(world.kinds["stream"], "outputs", outputs)  # type: ignore[attr-defined]
    Engine(deployment(tmp_path)).apply()
    assert seen == [{"size": 1, "mode": "a"}]
