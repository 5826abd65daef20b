"""Durability of the embedded AWS, persistent beside ephemeral (issue 11's benchmark).

    python bench/local.py --durable-only [--retained 2000000] [--pipeline-messages 200000]

Run from bench/local.py (``--durable-only``: this section alone; with ``--sustained-only``
only (2), both modes). In one run:
(1) PutRecords throughput, 500-record batches from several client threads, into a bare
stream on a persistent and on an ephemeral emulator; (2) the real pipeline (``iotpipe up``
in a temporary folder with the default config, then ``iotpipe send-test``) from put to
queryable, polling ``/_iotpipe/status`` until Timestream rows + quarantined == sent;
(3) the emulator's RSS (and its function workers') at that point and, persistent only,
with ``--retained`` messages in the stream and in Timestream; (4) ``lifecycle.stop`` then
the time ``lifecycle.start`` takes to answer with that many retained; (5) ``kill -9``
of the emulator while a PutRecords loop runs, then the time to answer and to drain every
acknowledged record. Ephemeral rows are n/a where it keeps nothing by design.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from iotpipe.config import Config
from iotpipe.fleet import SendOptions, message_source
from iotpipe.local import lifecycle

IOTPIPE = [sys.executable, "-m", "iotpipe"]
SEND_CHUNK = 500_000  # messages built up front per chunk: keep each list modest
FLEET_DEVICES = 500  # the retained fill's fleet
TARGET_RATIO, TARGET_E2E, TARGET_RSS_MB, TARGET_START_S = 0.7, 15_000.0, 400.0, 3.0
DRAIN_TIMEOUT_S = 1800.0
STALL_S = 60.0  # rows stopped growing: report what got there instead of hanging


def note(text: str) -> None:
    """Progress on stderr, so a long run shows where it is; figures go to stdout at the end."""
    print(time.strftime("%H:%M:%S ", time.gmtime()) + text, file=sys.stderr, flush=True)


def kinesis(endpoint: str) -> Any:
    """A client that closes each connection: on a kept-alive one (local/keepalive.py) every
    PutRecords after the first stalled until botocore's 60 s read timeout (2026-12-02)."""
    client = boto3.client(
        "kinesis",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.meta.events.register("after-call.kinesis", lambda **_: _fresh(client))
    return client


def _fresh(client: Any) -> None:
    client._endpoint.http_session.close()  # the next call opens a new connection


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def group_members(pgid: int) -> list[int]:
    """The emulator's function workers: the other processes of its process group."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == pgid:
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry.name))
    return sorted(found)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited orphan waits for a pid 1 that may not reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@dataclass
class PutLoop:
    """PutRecords from several threads; counts only entries the emulator acknowledged."""

    endpoint: str
    stream: str
    batches: list[list[dict[str, Any]]]
    threads: int = 4
    acked: int = 0
    errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next: int = 0

    def _take(self) -> list[dict[str, Any]] | None:
        with self._lock:
            if self._next >= len(self.batches):
                return None
            self._next += 1
            return self.batches[self._next - 1]

    def _worker(self) -> None:
        client = kinesis(self.endpoint)
        while (batch := self._take()) is not None:
            try:
                out = client.put_records(StreamName=self.stream, Records=batch)
            except Exception:  # the emulator died (kill -9): what it acked is counted
                with self._lock:
                    self.errors += 1
                return
            with self._lock:
                self.acked += len(batch) - int(out["FailedRecordCount"])

    def start(self) -> list[threading.Thread]:
        workers = [threading.Thread(target=self._worker) for _ in range(self.threads)]
        for w in workers:
            w.start()
        return workers

    def run(self) -> float:
        """Records/s acknowledged, all batches put."""
        started = time.perf_counter()
        for w in self.start():
            w.join()
        return self.acked / (time.perf_counter() - started)


def plain_batches(n: int) -> list[list[dict[str, Any]]]:
    now = int(time.time() * 1000)
    recs = [
        {
            "Data": json.dumps(
                {
                    "deviceId": f"sensor{i % 50:03d}",
                    "timestamp": now + i,
                    "temperature": 21.5,
                    "humidity": 45.5,
                    "pressure": 1013.25,
                    "vibration": 0.1,
                }
            ).encode(),
            "PartitionKey": f"sensor{i % 50:03d}",
        }
        for i in range(n)
    ]
    return [recs[i : i + 500] for i in range(0, n, 500)]


def put_throughput(ephemeral: bool, records: int, threads: int) -> float:
    """Records/s into a bare 4-shard stream; the same emulator but for persistence."""
    home = Path(tempfile.mkdtemp(prefix="iotpipe-bench-tput-"))
    info = lifecycle.start(home, ephemeral=ephemeral)
    try:
        client = kinesis(info.endpoint)
        client.create_stream(StreamName="tput", StreamModeDetails={"StreamMode": "ON_DEMAND"})
        client.get_waiter("stream_exists").wait(StreamName="tput", WaiterConfig={"Delay": 1})
        work = plain_batches(records + 500)
        client.put_records(StreamName="tput", Records=work[0])  # warm-up
        return PutLoop(info.endpoint, "tput", work[1:], threads).run()
    finally:
        lifecycle.stop(home)
        shutil.rmtree(home, ignore_errors=True)


@dataclass
class Pipeline:
    """`iotpipe up` with the default config in a temporary folder, driven as a user would."""

    ephemeral: bool
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="iotpipe-bench-")))

    @property
    def home(self) -> Path:
        return self.folder / ".iotpipe"

    def cli(self, *args: str) -> str:
        env = {**os.environ, "IOTPIPE_HOME": str(self.home)}
        out = subprocess.run(
            [*IOTPIPE, *args], cwd=self.folder, env=env, capture_output=True, text=True
        )
        if out.returncode:
            raise RuntimeError(f"iotpipe {' '.join(args)}: {out.stdout}{out.stderr}")
        return out.stdout

    def up(self) -> None:
        if self.ephemeral:  # `up` finds it running and deploys onto it
            lifecycle.start(self.home, ephemeral=True)
        self.cli("up")

    def send(self, n: int) -> tuple[float, float]:
        """(first put, last put) as perf_counter times; last put = send-test's exit."""
        data = json.loads(
            self.cli("send-test", "-n", str(n), "--invalid-ratio", "0", "--output", "json")
        )
        last = time.perf_counter()
        return last - float(data["seconds"]), last

    def counts(self) -> dict[str, Any]:
        return (lifecycle.status(self.home) or {}).get("counts", {})

    def done(self) -> int:
        c = self.counts()
        return int(c.get("timestream_rows", 0)) + int(c.get("failure_queue_messages", 0))

    def wait_done(self, target: int, timeout: float = DRAIN_TIMEOUT_S) -> tuple[float, int]:
        """(perf_counter when rows + quarantined reached target, the count then)."""
        deadline = time.monotonic() + timeout
        last, moved = -1, time.monotonic()
        while (n := self.done()) < target and time.monotonic() < deadline:
            if n != last:
                last, moved = n, time.monotonic()
            elif time.monotonic() - moved > STALL_S:
                note(f"no progress for {STALL_S:.0f} s at {n:,} of {target:,}: giving up")
                break
            time.sleep(0.2)
        return time.perf_counter(), n

    def pid(self) -> int:
        return int((lifecycle.read_state(self.home) or {})["pid"])

    def rss(self) -> str:
        pid = self.pid()
        workers = [rss_mb(w) for w in group_members(pid)]
        shown = ", ".join(f"{w:.0f}" for w in workers) or "none"
        return f"emulator {rss_mb(pid):.0f} MB; {len(workers)} function worker(s) {shown} MB"

    def held(self) -> dict[str, Any]:
        return dict((lifecycle.status(self.home) or {}).get("held", {}))

    def stream(self) -> str:
        endpoint = str((lifecycle.read_state(self.home) or {})["endpoint"])
        return str(kinesis(endpoint).list_streams()["StreamNames"][0])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            lifecycle.stop(self.home)
        shutil.rmtree(self.folder, ignore_errors=True)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def sustained(p: Pipeline, n: int, out: list[str]) -> None:
    """Section 2 and the first half of 3, for one mode."""
    mode = "ephemeral " if p.ephemeral else "persistent"
    p.up()
    note(f"{mode}: pipeline up in {p.folder}; send-test -n {n}")
    first, last = p.send(n)
    done_at, count = p.wait_done(n)
    e2e = n / (done_at - first)
    out.append(
        f"  put -> queryable, {mode}  : {n:,} sent at {n / (last - first):,.0f}/s; all "
        f"{count:,} rows+quarantined {done_at - last:.1f} s after the last put; "
        f"{e2e:,.0f} msg/s end to end   [target >= {TARGET_E2E:,.0f}/s: {verdict(e2e >= TARGET_E2E)}]"
    )
    out.append(f"  RSS at {n:,} retained, {mode}: {p.rss()}   [target <= {TARGET_RSS_MB:.0f} MB]")


def fleet_batches(n: int, ends: datetime, seed: int) -> list[list[dict[str, Any]]]:
    """``n`` messages of FLEET_DEVICES devices, 1 ms apart, the last at ``ends``."""
    opts = SendOptions(messages=n, seed=seed, invalid_ratio=0.0, devices=FLEET_DEVICES)
    recs = [
        {"Data": m.data, "PartitionKey": m.device_id}
        for m in message_source(Config(target="local"), opts, seed, ends)
    ]
    return [recs[i : i + 500] for i in range(0, len(recs), 500)]


def retained(p: Pipeline, already: int, total: int, out: list[str]) -> None:
    """Section 3's second half: fill the stream and Timestream to `total` messages.

    As a fleet fills it: one timeline, each chunk after the one before (all of it before
    the first section's messages, so none is in the future). Chunks of `send-test` would
    each end "now" and reach back one millisecond per message, so every chunk would be
    late data overlapping the last (and a third of it conflicting values)."""
    left, started = total - already, time.perf_counter()
    endpoint = str((lifecycle.read_state(p.home) or {})["endpoint"])
    stream = p.stream()
    ms = timedelta(milliseconds=1)
    begin = datetime.now(UTC) - ms * (already + total + 60_000)
    sent = 0
    while left > 0:
        chunk = min(SEND_CHUNK, left)
        note(
            f"persistent: PutRecords {chunk:,} fleet messages ({already + sent + chunk:,}/{total:,})"
        )
        PutLoop(endpoint, stream, fleet_batches(chunk, begin + ms * (sent + chunk), sent)).run()
        sent += chunk
        left -= chunk
    done_at, count = p.wait_done(total)
    took = done_at - started
    rss = rss_mb(p.pid())
    out.append(
        f"  RSS at {count:,} retained, persistent: {p.rss()}   [target <= {TARGET_RSS_MB:.0f} MB: "
        f"{verdict(rss <= TARGET_RSS_MB)}]  (filled in {took:.0f} s, {(total - already) / took:,.0f} msg/s)"
    )
    out.append(f"  held then                      : {json.dumps(p.held())}")


def restart(p: Pipeline, out: list[str]) -> None:
    """Section 4: clean stop, then the time start takes to answer with all that retained."""
    before = p.held()
    lifecycle.stop(p.home)
    started = time.perf_counter()
    lifecycle.start(p.home)
    took = time.perf_counter() - started
    after = p.held()
    same = "same held counts" if after == before else f"held now {json.dumps(after)}"
    out.append(
        f"  start with {before.get('timestream_rows', 0):,} rows retained: {took:.2f} s to answer "
        f"({same}; RSS after start: {p.rss()})   [target <= {TARGET_START_S:.0f} s: "
        f"{verdict(took <= TARGET_START_S)}]"
    )


def kill_and_recover(p: Pipeline, messages: int, out: list[str]) -> None:
    """Section 5: SIGKILL the emulator half-way through a PutRecords loop, start, drain."""
    base, pid = p.done(), p.pid()
    endpoint = str((lifecycle.read_state(p.home) or {})["endpoint"])
    opts = SendOptions(messages=messages, seed=11, invalid_ratio=0.0)
    recs = [
        {"Data": m.data, "PartitionKey": m.device_id}
        for m in message_source(Config(target="local"), opts, 11, datetime.now(UTC))
    ]
    loop = PutLoop(endpoint, p.stream(), [recs[i : i + 500] for i in range(0, len(recs), 500)])
    threads = loop.start()
    while loop.acked < messages // 2 and any(t.is_alive() for t in threads):
        time.sleep(0.005)
    workers = group_members(pid)
    os.kill(pid, signal.SIGKILL)
    for t in threads:
        t.join()
    time.sleep(1.0)
    orphans = [w for w in workers if _running(w)]  # exited ones may linger as zombies
    for w in orphans:  # ours (the bench's emulator's workers), by pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(w, signal.SIGKILL)
    note(f"persistent: killed pid {pid} with {loop.acked:,} acknowledged; starting")
    started = time.perf_counter()
    lifecycle.start(p.home)
    answered = time.perf_counter() - started
    done_at, count = p.wait_done(base + loop.acked, timeout=600)
    time.sleep(3.0)  # anything beyond the acknowledged (an unacknowledged in-flight batch)
    final = p.done() - base
    out.append(
        f"  kill -9 during a put ({loop.acked:,} of {messages:,} acknowledged, {len(orphans)} "
        f"worker(s) outlived it): start answered in {answered:.2f} s; acknowledged all "
        f"queryable {done_at - started:.1f} s after start; accounted {final:,} "
        f"(acknowledged {loop.acked:,}, {'all there' if count >= base + loop.acked else 'MISSING'})"
    )


def run(args: argparse.Namespace) -> None:
    """Every section in order; the figures are printed at the end, even after a failure."""
    out = [time.strftime("embedded AWS durability benchmark, %Y-%m-%d %H:%M UTC", time.gmtime())]
    try:
        if args.sustained_only:  # the put -> queryable section alone, both modes
            for eph in (True, False):
                p = Pipeline(eph)
                try:
                    sustained(p, args.pipeline_messages, out)
                finally:
                    p.close()
            return
        rates = {}
        for eph in (False, True):
            note(f"PutRecords throughput, {'ephemeral' if eph else 'persistent'}")
            rates[eph] = put_throughput(eph, args.put_records, args.put_threads)
        ratio = rates[False] / rates[True]
        out.append(
            f"  PutRecords ({args.put_records:,} records, 500/call, {args.put_threads} threads): "
            f"persistent {rates[False]:,.0f}/s, ephemeral {rates[True]:,.0f}/s = {ratio:.2f}x   "
            f"[target >= {TARGET_RATIO}x: {verdict(ratio >= TARGET_RATIO)}]"
        )
        for eph in (True, False):
            p = Pipeline(eph)
            try:
                sustained(p, args.pipeline_messages, out)
                if not eph:
                    retained(p, args.pipeline_messages, args.retained, out)
                    restart(p, out)
                    kill_and_recover(p, args.kill_messages, out)
            finally:
                p.close()
        out.append("  ephemeral: retained/start/kill -9 rows n/a (it keeps nothing by design)")
    finally:
        print("\n".join(out), flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--durable-only", action="store_true", help="only the durability section")
    parser.add_argument(
        "--sustained-only",
        action="store_true",
        help="with --durable-only: only put -> queryable, ephemeral and persistent",
    )
    parser.add_argument("--retained", type=int, default=2_000_000, help="messages retained")
    parser.add_argument("--pipeline-messages", type=int, default=200_000)
    parser.add_argument("--put-records", type=int, default=100_000, help="throughput section")
    parser.add_argument("--put-threads", type=int, default=4)
    parser.add_argument("--kill-messages", type=int, default=100_000, help="put during kill -9")


if __name__ == "__main__":
    main_parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(main_parser)
    run(main_parser.parse_args())
