"""The embedded MQTT broker alone: QoS 1 messages/s from N paho clients (prints; not a test).

    python bench/mqtt_broker_only.py [--devices 50] [--messages 400] [--idle 0]

The broker (``iotpipe.local.broker.MqttBroker``, mutual TLS, certificates from a throwaway
EmulatorCA) runs in its own process with an allow-all authorizer and a no-op ``on_publish``,
so the figure is the broker's ceiling, not the pipeline's (bench/mqtt.py measures that: IoT
policies, topic rules and Kinesis). ``--idle`` adds that many connected devices that only
sit there, which shows what each publish costs per connection held (delivery looks at every
session). The clients run in this process, one paho thread each: on a small machine they
compete with the broker for the CPU, so the figure is a floor.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import queue
import shutil
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from iotpipe.local.broker import MqttBroker
from iotpipe.local.ca import EmulatorCA


def serve(home: str, ports: Any, stop: Any) -> None:
    ca = EmulatorCA.load_or_create(Path(home))
    broker = MqttBroker(ca.server_context(), lambda *_: True, lambda *_: None)
    broker.start()
    ports.put(broker.port)
    stop.wait()
    broker.stop()


def device_files(ca: EmulatorCA, home: Path, name: str) -> tuple[str, str]:
    cert, _, key = ca.issue_new()
    (home / f"{name}.pem").write_text(cert)
    (home / f"{name}.key").write_text(key)
    return str(home / f"{name}.pem"), str(home / f"{name}.key")


def idle_connection(home: Path, files: tuple[str, str], port: int, cid: str) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(home / "root.pem"))
    ctx.load_cert_chain(*files)
    tls = ctx.wrap_socket(
        socket.create_connection(("127.0.0.1", port)), server_hostname="localhost"
    )
    raw = cid.encode()
    body = b"\x00\x04MQTT\x04\x02" + struct.pack(">H", 1200) + struct.pack(">H", len(raw)) + raw
    tls.sendall(bytes([0x10, len(body)]) + body)
    if tls.recv(4)[:1] != b"\x20":
        raise RuntimeError(f"{cid} was not accepted")
    return tls


def publisher(home: Path, files: tuple[str, str], port: int, cid: str) -> tuple[Any, Any]:
    acks: queue.Queue[int] = queue.Queue()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid)
    c.tls_set(str(home / "root.pem"), *files)
    c.max_inflight_messages_set(20)
    c.on_publish = lambda _c, _u, mid, _rc, _p: acks.put(mid)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c, acks


def run(args: argparse.Namespace) -> None:
    home = Path(tempfile.mkdtemp(prefix="mqtt-bench-"))
    ca = EmulatorCA.load_or_create(home)
    (home / "root.pem").write_text(ca.ca_pem)
    ports: Any = mp.Queue()
    stop: Any = mp.Event()
    proc = mp.Process(target=serve, args=(str(home), ports, stop), daemon=True)
    proc.start()
    port = ports.get(timeout=30)
    files = device_files(ca, home, "device")  # the allow-all broker takes any client id
    idle = [idle_connection(home, files, port, f"idle-{i}") for i in range(args.idle)]
    clients = [publisher(home, files, port, f"dev-{i}") for i in range(args.devices)]
    payload = b'{"device_id": "dev", "temperature": 21.5, "humidity": 40}'
    done = threading.Barrier(args.devices + 1)

    def drive(c: Any, acks: queue.Queue[int]) -> None:
        for _ in range(args.messages):
            c.publish("iot/sensors/dev/data", payload, qos=1)
        for _ in range(args.messages):
            acks.get(timeout=120)
        done.wait()

    start = time.perf_counter()
    for c, acks in clients:
        threading.Thread(target=drive, args=(c, acks), daemon=True).start()
    done.wait()
    elapsed = time.perf_counter() - start
    total = args.devices * args.messages
    print(
        f"{total} QoS 1 messages from {args.devices} clients ({args.idle} idle connections held):"
        f" {elapsed:.2f} s, {total / elapsed:,.0f} messages/s acknowledged"
    )
    for c, _ in clients:
        c.disconnect()
        c.loop_stop()
    for s in idle:
        s.close()
    stop.set()
    proc.join(15)
    shutil.rmtree(home, ignore_errors=True)  # the CA's key and the device's


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=50)
    p.add_argument("--messages", type=int, default=400, help="per device")
    p.add_argument("--idle", type=int, default=0)
    run(p.parse_args())


if __name__ == "__main__":
    sys.exit(main())
