"""The emulator process: moto's WSGI app, patched, plus pollers, workers and DuckDB.

`run()` is what ``python -m iotpipe.local`` executes (in the background, detached by
`lifecycle`, or in the foreground). It binds 127.0.0.1 only, writes ``local.json`` once
it answers, serves until SIGTERM/SIGINT, then stops its pollers and function workers
and removes ``local.json``.

Every request first passes `guard` (own Host, no foreign browser Origin, the token for
admin routes, a valid SigV4 signature for AWS calls). The token is made at start and kept
only in ``local.json`` (mode 0600). Extra routes, answered before moto sees the request:
``GET /_iotpipe/health`` (readiness probe, open) and ``GET /_iotpipe/status`` (counters
JSON, token). ``POST /moto-api/reset`` (token) also clears the DuckDB store, workers and
pollers.

Persistence (`durable.PERSISTENCE`) is opened before serving (restoring every part) and
closed after the pollers stop; a control-plane change (`requestkind`) is answered only
once the control snapshot holds it (`snapshot`), unless ``--ephemeral``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
import signal
import threading
import time
from pathlib import Path
from typing import Any

from iotpipe import gcpolicy
from iotpipe.local import athenapatch, heaptrim, hotpath, inventory, patches, snapshot
from iotpipe.local import motointernals as moto
from iotpipe.local.athenaplan import AthenaEngine
from iotpipe.local.counters import COUNTERS
from iotpipe.local.durable import PERSISTENCE
from iotpipe.local.esm import EsmManager
from iotpipe.local.failures import queue_from_url
from iotpipe.local.firehose import FirehoseManager
from iotpipe.local.functions import FunctionPool
from iotpipe.local.guard import MQTT_INFO, guarded
from iotpipe.local.httpserve import make_server
from iotpipe.local.mqttd import MqttService
from iotpipe.local.requestkind import Kind, classify
from iotpipe.local.runtime import RUNTIME
from iotpipe.local.tsquery import QueryEngine
from iotpipe.local.tsstore import store
from iotpipe.state import write_private

log = logging.getLogger("iotpipe.local")


def write_state(home: Path, data: dict[str, Any]) -> None:
    """Atomically replace ``local.json``, readable by its owner only (it holds the token)."""
    write_private(home / "local.json", json.dumps(data, indent=2))


class Emulator:
    """One running embedded AWS."""

    def __init__(self, home: Path, port: int = 0, log_path: Path | None = None) -> None:
        patches.apply()  # self-test first: a changed moto stops us here
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.home = home.resolve()
        self.log_path = log_path
        self.started_at = time.time()
        self.token = secrets.token_urlsafe(32)  # for admin routes; only local.json holds it
        self._moto = moto.DomainDispatcherApplication(moto.create_backend_app)
        self.port = 0
        app = guarded(self._app, lambda: self.port, self.token)
        self.httpd = make_server("127.0.0.1", port, app)
        self.port = int(self.httpd.server_address[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        RUNTIME.store = store()
        RUNTIME.engine = QueryEngine(RUNTIME.store)
        RUNTIME.pool = FunctionPool(self.home, self.endpoint)
        RUNTIME.esm = EsmManager(RUNTIME.pool)
        self.athena = AthenaEngine(self.home)  # Athena queries: DuckDB over S3's Parquet
        athenapatch.use(self.athena)
        RUNTIME.firehose = FirehoseManager(RUNTIME.pool)
        self.mqtt = MqttService(self.home)  # the devices' endpoint; its CA issues IoT's certs
        self._thread: threading.Thread | None = None
        self._trimmed = threading.Event()  # set at stop: the heap trimmer ends

    # -- WSGI -------------------------------------------------------------------------
    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_iotpipe/"):
            if path == "/_iotpipe/health":
                return _reply(start_response, "200 OK", {"ok": True})
            if path == "/_iotpipe/status":
                return _reply(start_response, "200 OK", self.status())
            if path == MQTT_INFO:
                return _reply(start_response, "200 OK", self.mqtt_info())
            return _reply(start_response, "404 Not Found", {"error": "unknown route"})
        if path == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            result = self._moto(environ, start_response)
            self.reset_extensions()
            snapshot.CONTROL.after_mutation()  # the persisted state is moto's, reset too
            return result
        if hotpath.handles(environ):  # data-plane calls: no control-plane snapshot needed
            if PERSISTENCE.enabled:
                snapshot.CONTROL.mark_dirty()
            return hotpath.answer(environ, start_response)
        if not PERSISTENCE.enabled:
            return self._moto(environ, start_response)
        kind = classify(environ)
        if kind is Kind.CONTROL:
            return self._durable(environ, start_response)
        if kind is Kind.DATA:
            snapshot.CONTROL.mark_dirty()
        return self._moto(environ, start_response)

    def _durable(self, environ: dict[str, Any], start_response: Any) -> Any:
        """A control-plane change: its reply goes out only once the snapshot holds it."""
        held: list[Any] = []
        body = list(self._moto(environ, lambda *args: held.append(args)))
        if not held:  # moto always answers; never acknowledge what it did not
            return _reply(start_response, "500 Internal Server Error", {"error": "no reply"})
        if str(held[0][0]).startswith("2"):
            try:
                snapshot.CONTROL.after_mutation()
            except Exception as exc:  # not acknowledged: the client sees why
                return _reply(start_response, "503 Service Unavailable", _unsaved(exc))
        start_response(*held[0])
        return body

    def reset_extensions(self) -> None:
        """Forget everything built on moto's state after moto's own reset."""
        RUNTIME.store.reset()
        RUNTIME.pool.shutdown_workers()
        RUNTIME.esm.sync()
        RUNTIME.firehose.sync()
        COUNTERS.reset()
        self.athena.shutdown()  # moto forgot its executions: so does the engine
        self.athena = AthenaEngine(self.home)
        athenapatch.use(self.athena)

    # -- status -----------------------------------------------------------------------
    def mqtt_info(self) -> dict[str, Any]:
        """What a device needs: the broker's host and port and the CA certificate."""
        info = self.mqtt.info()
        return {"host": info["host"], "port": info["port"], "ca_pem": self.mqtt.ca.ca_pem}

    def status(self) -> dict[str, Any]:
        counters = COUNTERS.snapshot()
        queues = failure_queues()
        return {
            "endpoint": self.endpoint,
            "pid": os.getpid(),
            "port": self.port,
            "started_at": self.started_at,
            "uptime_s": round(time.time() - self.started_at, 3),
            "moto_version": moto.VERSION,
            "log": str(self.log_path) if self.log_path else None,
            "counts": {
                "records_put": counters.get("records_put", 0),
                "invocations": counters.get("invocations", 0),
                "errors": counters.get("errors", 0),
                "timestream_rows": RUNTIME.store.row_count(),
                "failure_queue_messages": sum(q["messages"] for q in queues),
            },
            "held": inventory.held(),
            "counters": counters,
            "functions": RUNTIME.pool.stats(),
            "mappings": RUNTIME.esm.status(),
            "delivery_streams": RUNTIME.firehose.status(),
            "failure_queues": queues,
            "mqtt": self.mqtt.info(),
            "persistence": {**PERSISTENCE.usage(), "snapshot": snapshot.CONTROL.stats()},
        }

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Serve in a background thread (tests, `run`); returns once answering."""
        RUNTIME.esm.start()
        RUNTIME.firehose.start()
        self.mqtt.start()
        heaptrim.start(self._trimmed)
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._trimmed.set()
        self.mqtt.stop()
        self.athena.shutdown()
        athenapatch.use(None)
        RUNTIME.esm.stop()
        RUNTIME.firehose.stop()  # before the pool: no flush is cut off half-way
        RUNTIME.pool.shutdown()
        self.httpd.shutdown()  # no new connections
        self.httpd.close_connections()  # nor requests on open ones; in-flight ones finish
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)


def failure_queues() -> list[dict[str, Any]]:
    """Queues that receive failures: mapping OnFailure, rule errorAction, FAILURE_QUEUE_URL."""
    found: set[tuple[str, str, str]] = set()
    for _, _, esm in moto.all_event_source_mappings():
        dest = ((esm.destination_config or {}).get("OnFailure") or {}).get("Destination", "")
        if dest.startswith("arn:") and dest.split(":")[2] == "sqs":
            _, _, _, r, a, name = dest.split(":", 5)
            found.add((a, r, name))
    for account, region, fn in moto.all_latest_functions():
        url = (fn.environment_vars or {}).get("FAILURE_QUEUE_URL")
        if url:
            found.add(queue_from_url(url, account, region))
    for account, region, rule in moto.all_topic_rules():
        url = ((rule.error_action or {}).get("sqs") or {}).get("queueUrl")
        if url:
            found.add(queue_from_url(url, account, region))
    return [
        {"name": name, "account": a, "region": r, "messages": moto.queue_depth(a, r, name)}
        for a, r, name in sorted(found)
    ]


def _unsaved(exc: Exception) -> dict[str, str]:
    """The AWS-shaped error of a change that was made but could not be made durable."""
    where = PERSISTENCE.root
    message = f"the embedded AWS could not save its state in {where}: {exc}"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        message = f"the embedded AWS's disk is full ({where}): free space and retry ({exc})"
    return {"__type": "ServiceUnavailable", "message": message, "Message": message}


def _reply(start_response: Any, status: str, body: Any) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


def run(home: Path, port: int = 0, log_path: Path | None = None, ephemeral: bool = False) -> int:
    """Serve until SIGTERM/SIGINT; the process behind ``iotpipe local start``.

    The state under ``<home>/data/`` is restored before anything is served (a StateError
    leaves it untouched and stops the start) and closed after the pollers stopped.
    """
    gcpolicy.for_bulk_process()  # restoring a large state is faster too
    emulator = Emulator(home, port, log_path)  # self-test and bind first: fail before anything else
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        PERSISTENCE.open(emulator.home, ephemeral)
    except BaseException:
        emulator.httpd.server_close()
        raise
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    emulator.start()
    state = {
        "endpoint": emulator.endpoint,
        "pid": os.getpid(),
        "port": emulator.port,
        "started_at": emulator.started_at,
        "log": str(log_path) if log_path else None,
        "token": emulator.token,
        "ephemeral": not PERSISTENCE.enabled,
    }
    gcpolicy.freeze_startup()  # before anyone knows the endpoint: no request waits
    write_state(emulator.home, state)
    log.info("embedded AWS listening at %s (pid %d)", emulator.endpoint, os.getpid())
    try:
        while not stop.wait(0.1):
            pass
    finally:
        log.info("stopping")
        emulator.stop()
        PERSISTENCE.close()  # after the pollers: nothing writes any more
        path = emulator.home / "local.json"
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass
    return 0
