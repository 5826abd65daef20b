"""Real devices on the embedded AWS, as a user runs it: `up`, `devices add`, then devices
publish over MQTT with their own files (paho-mqtt, a client nobody here wrote) and their
messages reach Timestream; IoT's policy refuses what the device policy does not allow."""

from __future__ import annotations

import json
import queue
import stat
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cli_process import run_iotpipe, user_env
from localaws_helpers import aws, wait_for

from iotpipe.local import lifecycle

pytestmark = pytest.mark.integration

CONFIG = """\
name: devs
target: local
event_source:
  batching_window_s: 0
"""
WAIT = 15.0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    work = tmp_path_factory.mktemp("devices")
    (work / "iotpipe.yaml").write_text(CONFIG)
    home = work / ".iotpipe"
    env = user_env(home)
    try:
        up = run_iotpipe(work, env, "up", "-o", "json", timeout=180)
        assert up.returncode == 0, up.stderr
        added = {}
        for dev in ("s1", "s2"):
            done = run_iotpipe(work, env, "devices", "add", dev, "--location", "hall", "-o", "json")
            assert done.returncode == 0, done.stderr
            added[dev] = json.loads(done.stdout)
        yield work, env, home, added
    finally:
        lifecycle.stop(home)


def _client(info: dict[str, Any], client_id: str | None = None, v5: bool = False) -> Any:
    proto = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
    c = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or info["client_id"], protocol=proto
    )
    c.tls_set(info["root_ca"], info["cert"], info["private_key"])
    events: queue.Queue[Any] = queue.Queue()
    c.on_connect = lambda cl, u, f, rc, p: events.put(("connect", rc))
    c.on_publish = lambda cl, u, mid, rc, p: events.put(("puback", rc))
    c.on_disconnect = lambda cl, u, f, rc, p: events.put(("closed", rc))
    c.connect(info["endpoint"], info["port"], keepalive=60)
    c.loop_start()
    return c, events


def _rows(endpoint: str, device: str) -> int:
    """Rows of `device` in the deployment's table (0 until its first row gives the columns)."""
    ts = aws(endpoint, "timestream-query")
    dbs = [r["Data"][0]["ScalarValue"] for r in ts.query(QueryString="SHOW DATABASES")["Rows"]]
    db = next(d for d in dbs if d.startswith("devs-"))
    sql = f'SELECT count(*) FROM "{db}"."sensor-data" WHERE DeviceId = \'{device}\''
    try:
        out = ts.query(QueryString=sql)
    except ts.exceptions.ValidationException:
        return 0
    return int(out["Rows"][0]["Data"][0]["ScalarValue"])


def test_devices_add_writes_files_and_says_where_to_connect(world: Any) -> None:
    _, _, home, added = world
    info = added["s1"]
    assert info["client_id"] == info["thing"] and info["thing"].endswith("-s1")
    assert info["topic"] == f"iot/sensors/{info['thing']}/data"
    assert info["endpoint"] == "127.0.0.1" and info["port"] > 0
    assert stat.S_IMODE(Path(info["private_key"]).stat().st_mode) == 0o600
    status = lifecycle.status(home) or {}
    assert status["mqtt"]["port"] == info["port"]


def test_a_device_publishes_with_its_files_and_the_message_reaches_timestream(world: Any) -> None:
    _, _, home, added = world
    info = added["s1"]
    c, events = _client(info)
    assert not events.get(timeout=WAIT)[1].is_failure
    body = {"deviceId": "s1", "timestamp": "now", "temperature": 22.5, "humidity": 50.0}
    from datetime import UTC, datetime

    body["timestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    c.publish(info["topic"], json.dumps(body), qos=1)
    kind, rc = events.get(timeout=WAIT)
    assert kind == "puback" and not rc.is_failure
    c.disconnect()
    endpoint = (lifecycle.read_state(home) or {})["endpoint"]
    wait_for(lambda: _rows(endpoint, "s1") >= 1, timeout=30, what="the MQTT message as a row")


def test_another_devices_topic_and_client_id_are_refused(world: Any) -> None:
    _, _, _, added = world
    s1, s2 = added["s1"], added["s2"]
    c, events = _client(s1, v5=True)
    assert not events.get(timeout=WAIT)[1].is_failure
    c.publish(s2["topic"], b"{}", qos=1)
    kind, rc = events.get(timeout=WAIT)
    assert kind == "puback" and rc.is_failure  # MQTT 5: PUBACK "not authorized"
    c.disconnect()
    c.loop_stop()
    c2, events2 = _client(s1, client_id=s2["client_id"])  # s1's certificate as s2
    kind, rc = events2.get(timeout=WAIT)
    assert rc.is_failure
    c2.loop_stop()


def test_an_inactive_certificate_is_refused(world: Any) -> None:
    _, _, home, added = world
    endpoint = (lifecycle.read_state(home) or {})["endpoint"]
    iot = aws(endpoint, "iot")
    info = added["s2"]
    iot.update_certificate(certificateId=info["certificate_id"], newStatus="INACTIVE")
    try:

        def refused() -> bool:
            c, events = _client(info)
            kind, rc = events.get(timeout=WAIT)
            c.loop_stop()
            return kind == "connect" and rc.is_failure

        assert wait_for(refused, timeout=10, what="the inactive certificate to be refused")
    finally:
        iot.update_certificate(certificateId=info["certificate_id"], newStatus="ACTIVE")

    def accepted() -> bool:
        c, events = _client(info)
        kind, rc = events.get(timeout=WAIT)
        c.disconnect()
        c.loop_stop()
        return kind == "connect" and not rc.is_failure

    wait_for(accepted, timeout=10, what="the re-activated certificate to connect again")


def test_send_test_via_mqtt_sends_as_the_identities(world: Any) -> None:
    work, env, _, _ = world
    done = run_iotpipe(
        work, env, "send-test", "--via", "mqtt", "-n", "200", "-o", "json", timeout=120
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["sent"] == 200 and summary["failed"] == 0
    assert "2 device(s)" in done.stderr


def test_down_removes_devices_the_policy_and_the_device_files(world: Any) -> None:
    work, env, home, added = world
    folder = Path(added["s1"]["private_key"]).parent
    assert folder == home / "devices" / folder.name
    files = sorted(str(p) for p in folder.iterdir())
    assert {Path(info[k]).name for info in added.values() for k in ("cert", "private_key")} <= {
        Path(f).name for f in files
    }
    asked = run_iotpipe(work, env, "down", timeout=60)  # no terminal: it names them, no more
    assert asked.returncode == 2 and f"{len(files)} device file(s) in" in asked.stderr
    assert sorted(str(p) for p in folder.iterdir()) == files
    down = run_iotpipe(work, env, "down", "--yes", "-o", "json", timeout=180)
    assert down.returncode == 0, down.stderr
    assert sorted(json.loads(down.stdout)["files_deleted"]) == files
    assert not folder.exists()  # keys of deleted certificates do not linger
    endpoint = (lifecycle.read_state(home) or {})["endpoint"]
    iot = aws(endpoint, "iot")
    assert iot.list_things()["things"] == []
    assert iot.list_certificates()["certificates"] == []
    assert iot.list_policies()["policies"] == []
