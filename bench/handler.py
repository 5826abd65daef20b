"""Benchmark: iotpipe's Lambda function against the recipe's, on the same batches.

Prints figures; it is not a timed test. Both functions get the same synthetic Kinesis
batches (by default 20,000 messages, 5 % invalid, 500 devices) and the same fake
Timestream: a real botocore client, configured as each function configures its own (so
parameter validation, JSON serialisation and SigV4 signing cost what they cost in
Lambda), whose HTTP send is replaced by a handler that counts calls, records and
request bytes and can model a round trip per call (a sleep, as I/O would be).

The baseline is the recipe's step-4 code, read at run time from
`../shared/seed/recipe.md` (override with IOTPIPE_RECIPE) with its missing `import os`
added; it is never copied into this repository.

    python bench/handler.py [--messages 20000] [--rtt-ms 15] [--repeat 3]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from botocore.awsrequest import AWSResponse  # noqa: E402

from lambda_handler import handler, settings, writer  # noqa: E402

DEFAULT_RECIPE = ROOT.parent / "shared/seed/recipe.md"
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC).timestamp()  # synthetic data starts here
NOW = T0 + 600  # the injected clock for iotpipe's time rules
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/iotpipe-bench-failures"
SEQ_BASE = 49_650_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000


def recipe_path() -> Path:
    return Path(os.environ.get("IOTPIPE_RECIPE") or DEFAULT_RECIPE)


def load_baseline(path: Path) -> dict[str, Any]:
    """The recipe's lambda_function.py (step 4), plus the `import os` it forgot."""
    text = path.read_text(encoding="utf-8")
    match = re.search(r"cat > lambda_function\.py << 'EOF'\n(.*?)\nEOF\n", text, re.S)
    if match is None:
        raise SystemExit(f"bench: no lambda_function.py heredoc found in {path}")
    namespace: dict[str, Any] = {"__name__": "recipe_lambda_function"}
    exec(compile("import os\n" + match.group(1), f"{path}:step4", "exec"), namespace)
    return namespace


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


class FakeAws:
    """A real botocore client with its network replaced: keeps the request bodies sent
    (to count calls, records and bytes after the timed run) and can model a round trip
    per call (a sleep, which releases the GIL as socket I/O would)."""

    def __init__(self, client: Any, operation: str, reply: dict[str, Any], rtt_s: float):
        self.client = client
        self.rtt_s = rtt_s
        self.reply = json.dumps(reply).encode()
        self.bodies: list[bytes] = []
        service_id = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-send.{service_id}.{operation}", self._send)

    def _send(self, request: Any, **_: Any) -> AWSResponse:
        self.bodies.append(request.body or b"")  # list.append is atomic
        if self.rtt_s:
            time.sleep(self.rtt_s)
        return AWSResponse(request.url, 200, {"x-amzn-RequestId": "bench"}, _Body(self.reply))

    def totals(self, key: str) -> tuple[int, int, int]:
        """(calls, items under `key` in all bodies, request body bytes)."""
        items = sum(len(json.loads(body).get(key) or ()) for body in self.bodies)
        return len(self.bodies), items, sum(len(body) for body in self.bodies)


_TS_REPLY = {"RecordsIngested": {"Total": 0, "MemoryStore": 0, "MagneticStore": 0}}


def recipe_timestream(rtt_s: float) -> FakeAws:
    """The recipe's client: `boto3.client('timestream-write')`, boto3's defaults (an
    endpoint is given only so that endpoint discovery does not go to the network)."""
    client = boto3.client("timestream-write", endpoint_url="https://timestream.bench.invalid")
    return FakeAws(client, "WriteRecords", _TS_REPLY, rtt_s)


def iotpipe_clients(rtt_s: float) -> tuple[FakeAws, FakeAws]:
    """The handler's clients exactly as it makes them (writer.make_client)."""
    env = {"AWS_ENDPOINT_URL": "https://aws.bench.invalid"}
    ts = FakeAws(writer.make_client("timestream-write", env), "WriteRecords", _TS_REPLY, rtt_s)
    sqs = FakeAws(writer.make_client("sqs", env), "SendMessageBatch", {"Failed": []}, rtt_s)
    return ts, sqs


def synthesize(count: int, invalid_share: float, devices: int, seed: int = 7) -> tuple[list, int]:
    """Kinesis event records shaped like the recipe's test data; returns (records, valid)."""
    rng = random.Random(seed)
    places = [f"factory_floor_{n}" for n in range(1, 11)] + ["warehouse"]
    names = [f"sensor{n:04d}" for n in range(devices)]
    bad = set(rng.sample(range(count), round(count * invalid_share)))
    records = []
    for i in range(count):
        number = rng.randrange(devices)
        device = names[number]
        when = T0 + i * 0.01
        msg: Any = {
            "timestamp": datetime.fromtimestamp(when, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "deviceId": device,
            "temperature": round(rng.uniform(15.0, 35.0), 1),
            "humidity": round(rng.uniform(30.0, 70.0), 1),
            "location": places[number % len(places)],
        }
        data = json.dumps(msg).encode()
        if i in bad:  # four kinds, all rejected whole by both functions
            kind = i % 4
            if kind == 0:
                msg.update(temperature=999, humidity=150)
                data = json.dumps(msg).encode()
            elif kind == 1:
                data = data[: len(data) // 2]
            elif kind == 2:
                del msg["deviceId"]
                data = json.dumps(msg).encode()
            else:
                data = json.dumps([msg]).encode()
        seq = str(SEQ_BASE + i)
        records.append(
            {
                "eventSource": "aws:kinesis",
                "eventID": f"shardId-000000000000:{seq}",
                "kinesis": {
                    "data": base64.b64encode(data).decode(),
                    "sequenceNumber": seq,
                    "partitionKey": device,
                    "approximateArrivalTimestamp": when + 0.05,
                },
            }
        )
    return records, count - len(bad)


def bench_settings(devices: int, model: str) -> settings.Settings:
    places = [f"factory_floor_{n}" for n in range(1, 11)] + ["warehouse"]
    registry = {
        f"sensor{n:04d}": {"location": places[n % len(places)], "device_type": "env_sensor"}
        for n in range(devices)
    }
    return settings.from_dict(
        {
            "version": 1,
            "record_model": model,
            "sensors": {
                "temperature": {"min": -50, "max": 150, "inclusive": False},
                "humidity": {"min": 0, "max": 100},
            },
            "devices": registry,
            "memory_retention_hours": 24,
            "magnetic_writes": False,
        },
        source="bench",
    )


def run(records: list, batch: int, invoke: Callable[[dict], Any]) -> tuple[float, float]:
    """Feed `records` in batches; return (CPU seconds, wall seconds)."""
    gc.collect()
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, len(records), batch):
            invoke({"Records": records[start : start + batch]})
        return time.process_time() - cpu, time.perf_counter() - wall


def baseline_invoker(code: dict[str, Any], rtt_s: float) -> tuple[Callable, FakeAws]:
    fake = recipe_timestream(rtt_s)
    code["timestream"] = fake.client
    return (lambda event: code["lambda_handler"](event, None)), fake


def iotpipe_invoker(
    conf: settings.Settings, rtt_s: float, totals: dict[str, int]
) -> tuple[Callable, FakeAws]:
    """process() as lambda_handler calls it, with the container's pool; the accounting
    of every batch is added to `totals`."""
    ts, sqs = iotpipe_clients(rtt_s)
    target = handler.Target("iot-sensor-db", "sensor-data", QUEUE_URL)
    pool = writer.shared_executor()

    def invoke(event: dict) -> None:
        out = handler.process(
            event,
            conf,
            timestream=ts.client,
            sqs=sqs.client,
            target=target,
            clock=lambda: NOW,
            executor=pool,
        )
        for key in ("received", "written", "quarantined", "retry"):
            totals[key] = totals.get(key, 0) + getattr(out.summary, key)

    return invoke, ts


Figures = dict[str, Any]


def measure_cpu(code: dict[str, Any], records: list, valid: int, args: Any) -> Figures:
    """CPU and volume without latency, at the event source mapping's default batch (100)
    and at 1,000. The machine may be shared: runs are interleaved, the best is kept."""
    totals: dict[str, int] = {}
    contenders = {
        "baseline": baseline_invoker(code, 0.0),
        "multi": iotpipe_invoker(bench_settings(args.devices, "multi"), 0.0, totals),
        "single": iotpipe_invoker(bench_settings(args.devices, "single"), 0.0, {}),
    }
    for invoke, _ in contenders.values():
        run(records[:1000], 100, invoke)  # warm up: imports, caches, connection setup
    cpu: dict[tuple[str, int], float] = {}
    volume: dict[str, tuple[float, float, int]] = {}
    accounting: dict[str, int] = {}
    for _ in range(args.repeat):
        for batch in (100, 1000):
            for name, (invoke, fake) in contenders.items():
                fake.bodies.clear()
                totals.clear()
                micros = run(records, batch, invoke)[0] / len(records) * 1e6
                cpu[name, batch] = min(cpu.get((name, batch), micros), micros)
                if batch == 100:
                    calls, written, sent = fake.totals("Records")
                    volume[name] = (written / valid, sent / valid, calls)
                    if name == "multi":
                        accounting = dict(totals)
    return {"cpu": cpu, "volume": volume, "accounting": accounting}


def measure_throughput(code: dict[str, Any], records: list, args: Any) -> dict:
    """Messages per second with a modelled round trip per AWS call."""
    rtt = args.rtt_ms / 1000
    multi = bench_settings(args.devices, "multi")
    rate: dict[tuple[str, int], float] = {}
    for batch in (100, 1000):
        for name, (invoke, _) in {
            "baseline": baseline_invoker(code, rtt),
            "multi": iotpipe_invoker(multi, rtt, {}),
        }.items():
            rate[name, batch] = len(records) / run(records, batch, invoke)[1]
    return rate


def print_figures(figures: Figures, rate: dict, total: int, valid: int, args: Any) -> bool:
    """The side-by-side table and the targets; True when every target is met."""
    cpu, volume, accounting = figures["cpu"], figures["volume"], figures["accounting"]
    names = ("baseline", "multi", "single")
    print(
        f"iotpipe handler benchmark: {total:,} messages ({args.invalid:.0%} invalid, "
        f"{args.devices} devices), {valid:,} valid; round trip {args.rtt_ms:g} ms per call"
    )
    print(f"{'':44}{'recipe':>12}{'iotpipe':>12}{'iotpipe':>12}")
    print(f"{'':44}{'(baseline)':>12}{'multi':>12}{'single':>12}")
    rows = [
        ("CPU us per message, batch 100", {k: cpu[k, 100] for k in names}, "{:.1f}"),
        ("CPU us per message, batch 1,000", {k: cpu[k, 1000] for k in names}, "{:.1f}"),
        ("Timestream records per valid message", {k: v[0] for k, v in volume.items()}, "{:.2f}"),
        ("request bytes per valid message", {k: v[1] for k, v in volume.items()}, "{:.0f}"),
        ("WriteRecords calls (batch 100)", {k: v[2] for k, v in volume.items()}, "{:,}"),
    ]
    for label, values, fmt in rows:
        print(f"{label:44}" + "".join(f"{fmt.format(values[k]):>12}" for k in names))
    for batch in (100, 1000):
        label = f"messages/s at batch {batch:,} ({args.rtt_ms:g} ms RTT)"
        print(f"{label:44}{rate['baseline', batch]:>12,.0f}{rate['multi', batch]:>12,.0f}{'-':>12}")
    print(f"iotpipe multi accounting (batch 100): {accounting}")
    base, mine = volume["baseline"], volume["multi"]
    checks = [
        *(
            (
                f"CPU per message <= 1/2 of baseline (batch {b:,})",
                cpu["multi", b] <= cpu["baseline", b] / 2,
                f"{cpu['multi', b] / cpu['baseline', b]:.2f}x",
            )
            for b in (100, 1000)
        ),
        (
            "1 record per valid message (multi) vs 2",
            abs(mine[0] - 1) < 1e-9,
            f"{mine[0]:.2f} vs {base[0]:.2f}",
        ),
        (
            "bytes per valid message <= 60% of baseline",
            mine[1] <= 0.6 * base[1],
            f"{mine[1] / base[1]:.0%}",
        ),
        (
            "throughput at batch 1,000 >= 5x baseline",
            rate["multi", 1000] >= 5 * rate["baseline", 1000],
            f"{rate['multi', 1000] / rate['baseline', 1000]:.1f}x",
        ),
        (
            "accounting balances",
            accounting.get("received") == total
            and total == accounting["written"] + accounting["quarantined"] + accounting["retry"],
            f"{accounting.get('received', 0):,} received",
        ),
    ]
    for label, ok, figure in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {label}: {figure}")
    return all(ok for _, ok, _ in checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--invalid", type=float, default=0.05)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--rtt-ms", type=float, default=15.0)
    parser.add_argument("--repeat", type=int, default=3, help="CPU runs per function (best kept)")
    args = parser.parse_args(argv)
    path = recipe_path()
    if not path.is_file():
        print(
            f"bench: the recipe is not at {path}; set IOTPIPE_RECIPE to its path "
            "(the baseline is read from it at run time).",
            file=sys.stderr,
        )
        return 2
    for key, value in (
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
    ):
        os.environ.setdefault(key, value)
    code = load_baseline(path)
    records, valid = synthesize(args.messages, args.invalid, args.devices)
    figures = measure_cpu(code, records, valid, args)
    rate = measure_throughput(code, records, args)
    return 0 if print_figures(figures, rate, len(records), valid, args) else 1


if __name__ == "__main__":
    sys.exit(main())
