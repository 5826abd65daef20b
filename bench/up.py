"""Benchmark for `up` / `down` (issue 2). Prints figures; asserts nothing.

Part 1, against a moto server started here: cold `up` wall time and API calls, no-op
re-`up` wall time and mutating calls, `down` wall time.

Part 2, a latency model of real AWS (stream ACTIVE after 20 s, role assumable after 10 s,
function Active after 5 s, mapping Enabled after 15 s, everything else 0.5 s), run through
the real engine with the real dependency graph on a scaled clock (1 modelled second =
SCALE real seconds): modelled `up` time against the same steps one after another, and
against the critical path.

    python bench/up.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from iotpipe import engine as engine_mod
from iotpipe.aws import Gateway
from iotpipe.config import Config
from iotpipe.engine import Engine
from iotpipe.resources import ALL_KINDS
from iotpipe.resources.base import Resource
from iotpipe.target import resolve

READS = ("Describe", "Get", "List")
SCALE = 0.01  # real seconds per modelled second


def count_calls(gateway: Gateway) -> dict[str, int]:
    counts = {"all": 0, "mutating": 0}

    def attach(client: Any) -> None:
        def before_call(model: Any, **_: Any) -> None:
            counts["all"] += 1
            if not model.name.startswith(READS):
                counts["mutating"] += 1

        client.meta.events.register("before-call", before_call)

    gateway.hooks.append(attach)
    return counts


def against_moto() -> list[tuple[str, str, str]]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    config = Config(target="aws")
    rows = []
    try:

        def run(action: str) -> tuple[float, dict[str, int]]:
            gw = Gateway(region="us-east-1", endpoint_url=endpoint, local=True)
            counts = count_calls(gw)
            dep = resolve(config, gw, create_suffix=True)
            start = time.perf_counter()
            getattr(Engine(dep), action)()
            return time.perf_counter() - start, counts

        cold, c1 = run("apply")
        noop, c2 = run("apply")
        down, c3 = run("destroy")
        rows.append(("cold up (moto server)", f"{cold:.2f} s", f"{c1['all']} calls"))
        rows.append(("no-op re-up", f"{noop:.2f} s", f"{c2['mutating']} mutating calls"))
        rows.append(("down", f"{down:.2f} s", f"{c3['all']} calls"))
    finally:
        server.stop()
    return rows


# --- the latency model ----------------------------------------------------------------------

CREATE_SECONDS = {"stream": 20.0, "function": 5.0, "mapping": 15.0}
ROLE_PROPAGATION = 10.0
OTHER = 0.5


class Model:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.created: dict[str, float] = {}
        self.lock = threading.Lock()

    def now(self) -> float:
        return (time.perf_counter() - self.t0) / SCALE

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds * SCALE)


def modelled_kind(real: type[Resource], model: Model) -> type[Resource]:
    users_of_role = {"function": "function_role", "rule": "rule_role"}

    class Modelled(Resource):
        key: ClassVar[str] = real.key
        label: ClassVar[str] = real.label
        depends_on: ClassVar[tuple[str, ...]] = real.depends_on

        @property
        def name(self) -> str:
            return self.key

        def enabled(self) -> bool:
            return self.key != "legacy"

        def desired(self) -> dict[str, Any]:
            return {}

        def describe(self) -> dict[str, Any] | None:
            return None

        def create(self) -> dict[str, Any]:
            role = users_of_role.get(self.key)
            if role:  # retry until the role has propagated, as retry_on_message would
                ready_at = model.created[role] + ROLE_PROPAGATION
                model.sleep(max(0.0, ready_at - model.now()))
            model.sleep(CREATE_SECONDS.get(self.key, OTHER))
            with model.lock:
                model.created[self.key] = model.now()
            return {}

    return Modelled


def critical_path() -> float:
    finish: dict[str, float] = {}
    for kind in ALL_KINDS:
        if kind.key == "legacy":
            continue
        start = max((finish[d] for d in kind.depends_on), default=0.0)
        role = {"function": "function_role", "rule": "rule_role"}.get(kind.key)
        if role:
            start = max(start, finish[role] + ROLE_PROPAGATION)
        finish[kind.key] = start + CREATE_SECONDS.get(kind.key, OTHER)
    return max(finish.values())


def modelled(max_workers: int) -> float:
    model = Model()
    kinds = [modelled_kind(k, model) for k in ALL_KINDS]
    original = engine_mod.resources.build
    engine_mod.resources.build = lambda ctx: [k(ctx) for k in kinds]  # type: ignore[assignment]
    try:
        gw = Gateway(region="us-east-1", local=True)
        gw._identity = {"account": "123456789012", "partition": "aws", "arn": "x"}
        dep = resolve(Config(target="aws"), gw, create_suffix=True)
        model.t0 = time.perf_counter()
        Engine(dep, max_workers=max_workers).apply()
        return model.now()
    finally:
        engine_mod.resources.build = original


def main() -> None:
    os.environ.setdefault("IOTPIPE_HOME", tempfile.mkdtemp(prefix="iotpipe-bench-"))
    rows = against_moto()
    side = modelled(max_workers=6)
    one_by_one = modelled(max_workers=1)
    path = critical_path()
    rows.append(
        ("modelled up (AWS latencies)", f"{side:.1f} s", f"{side / path:.2f} x critical path")
    )
    rows.append(("same steps one after another", f"{one_by_one:.1f} s", "baseline"))
    rows.append(("critical path", f"{path:.1f} s", ""))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>9}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>9}  {note}")
    print(
        "\ntargets: no-op re-up <= 1 s with 0 mutating calls; cold up <= 3 s; "
        "modelled up <= 1.2 x critical path"
    )


if __name__ == "__main__":
    main()
