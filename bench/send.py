"""send-test throughput against the embedded AWS, next to the recipe's way of sending.

One run: start an embedded AWS in a temporary home, deploy the pipeline (the event source
mapping is live, so the function runs while we send, as it would), then

* send-test's sender: PutRecords batches of <= 500, 4 calls in flight;
* the baseline: one ``put_record`` call per message, one after another (the recipe's step 9
  with boto3 instead of a process per ``aws kinesis put-record``, so a generous baseline).

Prints messages/s for both and the ratio; targets: >= 5,000 msg/s and >= 20x the baseline.
Not a timed test: run it by hand, ``python bench/send.py [--messages N]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from iotpipe.aws import Gateway
from iotpipe.config import Config
from iotpipe.engine import Engine
from iotpipe.fleet import SendOptions, message_source
from iotpipe.sinks import sink_for
from iotpipe.target import resolve
from iotpipe.traffic import deliver

TARGET_RATE = 5000.0
TARGET_RATIO = 20.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=50_000, help="for send-test")
    parser.add_argument("--baseline", type=int, default=2_000, help="for put_record")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    from iotpipe.local.lifecycle import start, stop

    with tempfile.TemporaryDirectory(prefix="iotpipe-bench-") as tmp:
        home = Path(tmp) / ".iotpipe"
        home.mkdir()
        os.environ["IOTPIPE_HOME"] = str(home)
        info = start(home)
        try:
            run(info.endpoint, args.messages, args.baseline, args.workers)
        finally:
            stop(home)


def run(endpoint: str, count: int, baseline_count: int, workers: int) -> None:
    config = Config(name="bench", target="local")
    gateway = Gateway(region=config.region, endpoint_url=endpoint, local=True, max_attempts=3)
    dep = resolve(config, gateway, create_suffix=True)
    Engine(dep).apply()
    try:
        opts = SendOptions(messages=count, seed=1, workers=workers)
        messages = list(message_source(config, opts, 1, datetime.now(UTC)))  # not timed
        sample = messages[:baseline_count]
        # The recipe first (one put_record per message), while the function is idle.
        kinesis = gateway.client("kinesis")
        started = time.perf_counter()
        for m in sample:
            kinesis.put_record(StreamName=dep.names.stream, Data=m.data, PartitionKey=m.device_id)
        slow = len(sample) / (time.perf_counter() - started)

        # send-test, exactly as the command does it (fleet, invalid messages, PutRecords).
        summary = deliver(messages, sink_for(dep, "kinesis"), workers=workers)
        fast = summary.rate
    finally:
        Engine(dep).destroy()

    ratio = fast / slow if slow else float("inf")
    print(f"embedded AWS at {endpoint}, stream {dep.names.stream}, mapping live")
    print(
        f"send-test  : {summary.sent:>7} messages in {summary.seconds:6.2f} s = {fast:9.0f} msg/s"
        f"  ({summary.batches} PutRecords calls, {summary.retried} resent, "
        f"{summary.failed} failed, {workers} in flight)"
    )
    print(f"put_record : {len(sample):>7} messages, one call each       = {slow:9.0f} msg/s")
    print(f"speed-up   : {ratio:.1f}x")
    print(
        f"targets    : >= {TARGET_RATE:.0f} msg/s {'met' if fast >= TARGET_RATE else 'MISSED'}; "
        f">= {TARGET_RATIO:.0f}x {'met' if ratio >= TARGET_RATIO else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
