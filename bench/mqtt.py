"""Benchmark of the embedded MQTT broker (prints figures; not a timed test).

    python bench/mqtt.py [--devices 50] [--messages 20000] [--hold 1000] [--hold-s 60]

In one run, on one embedded AWS: a Kinesis stream fed by a topic rule; messages/s from
``--devices`` devices publishing at QoS 1 over MQTT (mutual TLS, IoT policies evaluated for
every publish, the rule run before each PUBACK) against the same messages published over
HTTP (``iot-data publish``, what ``send-test --via iot`` does), counted into Kinesis; connect
time per device; then ``--hold`` device connections held for ``--hold-s`` seconds: how many
stay connected and the emulator's RSS growth.
Targets: >= 3,000 messages/s over MQTT; all held connections stay connected.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import paho.mqtt.client as mqtt

from iotpipe.devicepolicy import device_policy, policy_json
from iotpipe.devices.endpoint import local_mqtt
from iotpipe.local import lifecycle
from iotpipe.local.mqttd import raise_open_files_limit

REGION, ACCOUNT = "us-east-1", "123456789012"
TOPIC = "iot/sensors/+/data"


def clients(endpoint: str) -> dict[str, Any]:
    kw = {
        "endpoint_url": endpoint,
        "region_name": REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    return {n: boto3.client(n, **kw) for n in ("iot", "iot-data", "kinesis", "iam")}


def provision(c: dict[str, Any]) -> None:
    """A stream, the rule that feeds it, the device policy."""
    c["kinesis"].create_stream(StreamName="bench", ShardCount=4)
    c["kinesis"].get_waiter("stream_exists").wait(StreamName="bench")
    role = c["iam"].create_role(RoleName="bench-rule", AssumeRolePolicyDocument="{}")["Role"]
    c["iot"].create_topic_rule(
        ruleName="bench",
        topicRulePayload={
            "sql": f"SELECT * FROM '{TOPIC}'",
            "awsIotSqlVersion": "2016-03-23",
            "actions": [
                {
                    "kinesis": {
                        "streamName": "bench",
                        "roleArn": role["Arn"],
                        "partitionKey": "${topic(3)}",
                    }
                }
            ],
        },
    )
    doc = device_policy(TOPIC, partition="aws", region=REGION, account=ACCOUNT)
    c["iot"].create_policy(policyName="bench-devices", policyDocument=policy_json(doc))


def make_devices(c: dict[str, Any], folder: Path, count: int, prefix: str) -> list[str]:
    def one(i: int) -> str:
        thing = f"{prefix}{i:05d}"
        c["iot"].create_thing(thingName=thing)
        made = c["iot"].create_keys_and_certificate(setAsActive=True)
        (folder / f"{thing}.pem").write_text(made["certificatePem"])
        key = folder / f"{thing}.key"
        key.write_text(made["keyPair"]["PrivateKey"])
        key.chmod(0o600)
        c["iot"].attach_policy(policyName="bench-devices", target=made["certificateArn"])
        c["iot"].attach_thing_principal(thingName=thing, principal=made["certificateArn"])
        return thing

    # One at a time, as `devices add` does: moto's IoT registry iterates its certificates
    # while another request adds one ("OrderedDict mutated during iteration").
    return [one(i) for i in range(count)]


def connect(folder: Path, thing: str, host: str, port: int) -> tuple[mqtt.Client, float]:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=thing, protocol=mqtt.MQTTv311)
    c.tls_set(str(folder / "root.pem"), str(folder / f"{thing}.pem"), str(folder / f"{thing}.key"))
    ready = threading.Event()
    c.on_connect = lambda *a: ready.set()
    start = time.perf_counter()
    c.connect(host, port, keepalive=60)
    c.loop_start()
    if not ready.wait(30) or not c.is_connected():
        raise RuntimeError(f"{thing} did not connect")
    return c, time.perf_counter() - start


def kinesis_count(k: Any) -> int:
    total = 0
    for shard in k.list_shards(StreamName="bench")["Shards"]:
        it = k.get_shard_iterator(
            StreamName="bench", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while it:
            page = k.get_records(ShardIterator=it, Limit=10000)
            total += len(page["Records"])
            it = page.get("NextShardIterator") if page["Records"] else None
    return total


def mqtt_rate(conns: list[tuple[str, mqtt.Client]], messages: int) -> float:
    """Each device publishes its share at QoS 1 with up to 20 in flight; until all PUBACKs."""
    per = messages // len(conns)
    body = json.dumps({"temperature": 21.5, "humidity": 40.0}).encode()

    def run(thing: str, cl: mqtt.Client) -> None:
        acks: queue.Queue[int] = queue.Queue()
        cl.on_publish = lambda c, u, mid, rc, p: acks.put(mid)
        inflight = 0
        for _ in range(per):
            cl.publish(f"iot/sensors/{thing}/data", body, qos=1)
            inflight += 1
            if inflight >= 20:
                acks.get(timeout=30)
                inflight -= 1
        for _ in range(inflight):
            acks.get(timeout=30)

    start = time.perf_counter()
    with ThreadPoolExecutor(len(conns)) as pool:
        list(pool.map(lambda tc: run(*tc), conns))
    return per * len(conns) / (time.perf_counter() - start)


def http_rate(data: Any, things: list[str], messages: int) -> float:
    body = json.dumps({"temperature": 21.5, "humidity": 40.0}).encode()
    start = time.perf_counter()

    def run(i: int) -> None:
        data.publish(topic=f"iot/sensors/{things[i % len(things)]}/data", qos=1, payload=body)

    with ThreadPoolExecutor(8) as pool:  # send-test --via iot's default is 4 workers
        list(pool.map(run, range(messages)))
    return messages / (time.perf_counter() - start)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _hold_group(folder: str, things: list[str], host: str, port: int, seconds: float) -> int:
    """In a child process: connect these devices, hold them, return how many stayed up.
    (paho's loop uses select(), which cannot watch descriptors past 1,024 in one process.)"""
    conns = [connect(Path(folder), t, host, port)[0] for t in things]
    time.sleep(seconds)  # the point is to hold them for wall-clock time
    alive = sum(cl.is_connected() for cl in conns)
    for cl in conns:
        cl.disconnect()
        cl.loop_stop()
    return alive


def hold(
    folder: Path, c: dict[str, Any], info: Any, args: argparse.Namespace, mqtt_info: dict
) -> None:
    things = make_devices(c, folder, args.hold, "hold")
    before = rss_mb(info.pid)
    groups = [things[i : i + 200] for i in range(0, len(things), 200)]
    with ProcessPoolExecutor(len(groups)) as pool:
        futures = [
            pool.submit(
                _hold_group, str(folder), g, mqtt_info["host"], mqtt_info["port"], args.hold_s
            )
            for g in groups
        ]
        time.sleep(args.hold_s * 0.9)  # near the end of the hold, all connected
        during = rss_mb(info.pid)
        connected = lifecycle.status(folder.parent)  # the devices live under the home
        alive = sum(f.result() for f in futures)
    print(
        f"held {args.hold} connections for {args.hold_s:.0f} s: {alive} still connected "
        f"(target: all); emulator RSS {before:.0f} -> {during:.0f} MB "
        f"(+{(during - before) * 1024 / max(1, args.hold):.0f} KB per connection)"
        + (f"; broker saw {connected['mqtt']['connections']}" if connected else "")
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--http-messages", type=int, default=2_000)
    ap.add_argument("--hold", type=int, default=1000)
    ap.add_argument("--hold-s", type=float, default=60.0)
    args = ap.parse_args()
    raise_open_files_limit()  # paho holds three descriptors per client; the emulator inherits it
    home = Path(tempfile.mkdtemp(prefix="iotpipe-bench-mqtt-"))
    info = lifecycle.start(home)
    try:
        c = clients(info.endpoint)
        mqtt_info = local_mqtt(info.endpoint)
        folder = home / "devices"
        folder.mkdir()
        (folder / "root.pem").write_text(mqtt_info["ca_pem"])
        provision(c)
        things = make_devices(c, folder, args.devices, "dev")
        print(
            time.strftime("run %Y-%m-%d %H:%M UTC", time.gmtime()),
            f"python {sys.version.split()[0]}, {os.cpu_count()} cpus",
        )
        conns, times = [], []
        for t in things:
            cl, took = connect(folder, t, mqtt_info["host"], mqtt_info["port"])
            conns.append((t, cl))
            times.append(took)
        print(
            f"connect per device (TLS + CONNECT + policy): p50 {statistics.median(times) * 1000:.1f} ms, "
            f"max {max(times) * 1000:.1f} ms"
        )
        m_rate = mqtt_rate(conns, args.messages)
        for _, cl in conns:
            cl.disconnect()
            cl.loop_stop()
        h_rate = http_rate(c["iot-data"], things, args.http_messages)
        expected = args.messages // args.devices * args.devices + args.http_messages
        got = kinesis_count(c["kinesis"])
        print(f"{'route':<34}{'messages/s':>12}")
        print(
            f"{'MQTT QoS 1, ' + str(args.devices) + ' devices (target >= 3,000)':<34}{m_rate:>12,.0f}"
        )
        print(f"{'HTTP publish (--via iot), 8 threads':<34}{h_rate:>12,.0f}")
        print(
            f"MQTT / HTTP: {m_rate / h_rate:.1f}x; records in Kinesis {got:,} of {expected:,} sent"
        )
        if args.hold:
            hold(folder, c, info, args, mqtt_info)
    finally:
        lifecycle.stop(home)
        shutil.rmtree(home, ignore_errors=True)  # its emulator's state and device keys
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
