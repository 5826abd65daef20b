"""Runs deployed Lambda functions: one long-lived worker process per function.

The zip moto stored at CreateFunction/UpdateFunctionCode is unpacked under
``<home>/functions/<name>-<sha>/`` and run by `iotpipe.local.worker` with the function's
handler, environment, timeout, fake credentials and ``AWS_ENDPOINT_URL`` pointing back at
the emulator, so its boto3 calls land here. A worker is replaced when the function's
code or configuration changes (the next invoke is a cold start, as on Lambda); a crash or
timeout is recorded, counted and the worker replaced at once.

Function output goes to ``<home>/functions/<name>.log`` and to moto's CloudWatch Logs
(``/aws/lambda/<name>``), so ``aws logs filter-log-events`` works as on AWS; its
embedded-metric-format lines become CloudWatch metrics (`metrics`), as on Lambda. An
invoke returns once the worker's log of it has been read, so its metrics are in.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

from iotpipe.local import metrics
from iotpipe.local import motointernals as moto
from iotpipe.local.counters import COUNTERS
from iotpipe.local.functionspec import FunctionSpec, InvokeResult, Stats

REPORT_WAIT_S = 2.0  # at most, for the log of an invoke that answered
# One unpack at a time: a worker starting while another re-extracts the same code dir
# imports half-written (truncated) modules ("cannot import name ...").
_UNPACK_LOCK = threading.Lock()
FAILURE_COUNTERS = {
    "error": "function_errors",
    "timeout": "function_timeouts",
    "crash": "function_crashes",
}


class FunctionWorker:
    """The process behind one function version; invokes are serialized (one at a time)."""

    def __init__(self, spec: FunctionSpec, code: bytes, home: Path, endpoint: str) -> None:
        self.spec = spec
        self._code = code
        self._home = home
        self._endpoint = endpoint
        self._proc: subprocess.Popen[bytes] | None = None
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._lock = threading.Lock()
        self.stats = Stats()
        self._pending: list[tuple[str, int, str]] = []
        self._pending_lock = threading.Lock()
        self._reported: dict[str, threading.Event] = {}
        self._log_stream = "local"
        self.log_path = home / "functions" / f"{spec.name}.log"

    # -- process management ---------------------------------------------------------
    def _code_dir(self) -> Path:
        target = self._home / "functions" / f"{self.spec.name}-{self.spec.code_sha[:12]}"
        with _UNPACK_LOCK:
            if not (target / ".unpacked").exists():
                target.mkdir(parents=True, exist_ok=True)
                with zipfile.ZipFile(io.BytesIO(self._code)) as zf:
                    zf.extractall(target)
                (target / ".unpacked").write_text(self.spec.code_sha)
        return target

    def _environment(self) -> dict[str, str]:
        s = self.spec
        env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ") if k in os.environ}
        env.update(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_REGION": s.region,
                "AWS_DEFAULT_REGION": s.region,
                "AWS_ENDPOINT_URL": self._endpoint,
                "AWS_LAMBDA_FUNCTION_NAME": s.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(s.memory_mb),
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(s.timeout_s)),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{s.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": self._log_stream,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{s.runtime}",
                "IOTPIPE_FUNCTION_ARN": s.arn,
                "LAMBDA_TASK_ROOT": str(self._code_dir()),
                "_HANDLER": s.handler,
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        env.update(dict(s.env))
        return env

    def _start(self) -> subprocess.Popen[bytes]:
        self._log_stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        code_dir = self._code_dir()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "iotpipe.local.worker", self.spec.handler],
            cwd=code_dir,
            env=self._environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
        )
        replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._replies = replies
        threading.Thread(target=self._read_replies, args=(proc, replies), daemon=True).start()
        threading.Thread(target=self._read_logs, args=(proc,), daemon=True).start()
        return proc

    @staticmethod
    def _read_replies(proc: subprocess.Popen[bytes], replies: queue.Queue[Any]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                replies.put(json.loads(line))
            except ValueError:
                continue
        replies.put(None)  # EOF: the worker exited

    def _read_logs(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        stream = self._log_stream
        with open(self.log_path, "ab", buffering=0) as log:
            for line in proc.stderr:
                log.write(line)
                text = line.decode("utf-8", "replace").rstrip("\n")
                metrics.from_log_line(self.spec.account, self.spec.region, text)
                with self._pending_lock:
                    self._pending.append((stream, int(time.time() * 1000), text))
                    if text.startswith("REPORT RequestId: "):
                        done = self._reported.pop(text.split()[2], None)
                        if done is not None:
                            done.set()

    def flush_logs(self) -> None:
        """Move buffered log lines to moto's CloudWatch Logs (called by the pool's flusher)."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
        by_stream: dict[str, list[dict[str, Any]]] = {}
        for stream, ts, text in pending:
            by_stream.setdefault(stream, []).append({"timestamp": ts, "message": text})
        for stream, events in by_stream.items():
            _to_cloudwatch(self.spec, stream, events)

    def kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream:
                stream.close()

    def alive_pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    # -- invocation -----------------------------------------------------------------
    def busy(self) -> bool:
        return self._lock.locked()

    def invoke(self, event: Any) -> InvokeResult:
        with self._lock:
            return self._invoke(event)

    def _invoke(self, event: Any) -> InvokeResult:
        if self._proc is not None and self._proc.poll() is not None:
            self._restart()  # died between invokes
        if self._proc is None:
            self._proc = self._start()
        proc = self._proc
        request_id = str(uuid.uuid4())
        deadline = time.time() + self.spec.timeout_s
        request = {"id": request_id, "request_id": request_id, "event": event}
        request["deadline_ms"] = int(deadline * 1000)
        reported = threading.Event()
        with self._pending_lock:  # invokes are serialized: anything older is stale
            self._reported = {request_id: reported}
        started = time.perf_counter()
        self.stats.invocations += 1
        COUNTERS.add("invocations")
        try:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.flush()
            reply = self._replies.get(timeout=max(0.01, deadline - time.time()))
        except queue.Empty:
            self._restart()
            msg = f"Task timed out after {self.spec.timeout_s:.2f} seconds"
            self._log(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {request_id} {msg}")
            return self._failed("timeout", "Sandbox.Timedout", msg, started)
        except (BrokenPipeError, OSError):
            reply = None
        if reply is None:
            try:
                code: int | None = proc.wait(timeout=2)
            except subprocess.TimeoutExpired:  # closed its pipe but lives on: kill it
                code = None
            self._restart()
            msg = f"Runtime exited with error: exit status {code}"
            self._log(f"RequestId: {request_id} Error: {msg}")
            return self._failed("crash", "Runtime.ExitError", msg, started)
        reported.wait(REPORT_WAIT_S)  # its REPORT line follows the reply by microseconds
        elapsed = (time.perf_counter() - started) * 1000
        if reply.get("ok"):
            return InvokeResult(True, reply.get("result"), duration_ms=elapsed)
        err = reply.get("error") or {}
        return self._failed(
            "error", err.get("errorType", "Error"), err.get("errorMessage", ""), started, err
        )

    def _restart(self) -> None:
        """Replace a crashed or timed-out worker right away, so the retry is not a cold start."""
        self.kill()
        self.stats.restarts += 1
        self._proc = self._start()

    def _failed(
        self, kind: str, etype: str, msg: str, started: float, err: dict[str, Any] | None = None
    ) -> InvokeResult:
        self.stats.errors += 1
        if kind == "timeout":
            self.stats.timeouts += 1
        elif kind == "crash":
            self.stats.crashes += 1
        self.stats.last_error = f"{etype}: {msg}"
        COUNTERS.add("errors")
        COUNTERS.add(FAILURE_COUNTERS[kind])
        error = err or {"errorType": etype, "errorMessage": msg}
        return InvokeResult(False, None, error, kind, (time.perf_counter() - started) * 1000)

    def _log(self, text: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(text + "\n")
        with self._pending_lock:
            self._pending.append((self._log_stream, int(time.time() * 1000), text))


def _to_cloudwatch(spec: FunctionSpec, stream: str, events: list[dict[str, Any]]) -> None:
    """Append lines to moto's /aws/lambda/<name> log group (best effort)."""
    with contextlib.suppress(Exception):  # a convenience: never fail an invoke for it
        moto.put_log_events(spec.account, spec.region, f"/aws/lambda/{spec.name}", stream, events)


SPARES = 3  # extra workers per function, for invokes that overlap (pollers of other shards)


class FunctionPool:
    """All workers of the emulator, keyed by (account, region, function name).

    Like Lambda's execution environments: an invoke that arrives while the function's
    worker is busy gets a spare worker (up to `SPARES`, then it waits for the first one),
    so the pollers of a stream's shards run their batches in parallel instead of queueing
    behind one process. Spares share the primary's spec, stats and log.
    """

    def __init__(self, home: Path, endpoint: str) -> None:
        self.home = home
        self.endpoint = endpoint
        self._workers: dict[tuple[str, str, str], FunctionWorker] = {}
        self._spares: dict[tuple[str, str, str], list[FunctionWorker]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._flush_loop, name="function-logs", daemon=True).start()

    def _flush_loop(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                workers = list(self._workers.values())
            with self._lock:
                spares = [w for ws in self._spares.values() for w in ws]
            for w in workers + spares:
                w.flush_logs()

    def worker_for(self, fn: Any) -> FunctionWorker:
        spec = FunctionSpec.from_moto(fn)
        key = spec.key
        with self._lock:
            worker = self._workers.get(key)
            if worker is not None and worker.spec != spec:
                worker.kill()  # code or configuration changed: next invoke is a cold start
                for spare in self._spares.pop(key, []):
                    spare.kill()
                fresh = FunctionWorker(spec, fn.code_bytes, self.home, self.endpoint)
                fresh.stats = worker.stats
                worker = self._workers[key] = fresh
            elif worker is None:
                worker = FunctionWorker(spec, fn.code_bytes, self.home, self.endpoint)
                self._workers[key] = worker
            return worker

    def invoke(self, fn: Any, event: Any) -> InvokeResult:
        primary = self.worker_for(fn)
        worker = self._free_worker(fn, primary)
        return worker.invoke(event)

    def _free_worker(self, fn: Any, primary: FunctionWorker) -> FunctionWorker:
        """The primary if idle, else an idle (or new) spare, else the primary (wait)."""
        if not primary.busy():
            return primary
        key = primary.spec.key
        with self._lock:
            spares = self._spares.setdefault(key, [])
            for spare in spares:
                if not spare.busy():
                    return spare
            if len(spares) >= SPARES:
                return primary
            spare = FunctionWorker(primary.spec, fn.code_bytes, self.home, self.endpoint)
            spare.stats = primary.stats
            spares.append(spare)
            return spare

    def stats(self) -> list[dict[str, Any]]:
        with self._lock:
            workers = list(self._workers.values())
        out = []
        for w in workers:
            s = w.stats
            out.append(
                {
                    "name": w.spec.name,
                    "pid": w.alive_pid(),
                    "invocations": s.invocations,
                    "errors": s.errors,
                    "timeouts": s.timeouts,
                    "crashes": s.crashes,
                    "restarts": s.restarts,
                    "last_error": s.last_error,
                    "log": str(w.log_path),
                }
            )
        return out

    def prune(self, live: set[tuple[str, str, str]]) -> None:
        """Stop the workers of functions that no longer exist ((account, region, name) keys)."""
        with self._lock:
            gone = [key for key in self._workers if key not in live]
            workers = [self._workers.pop(key) for key in gone]
            workers += [w for key in gone for w in self._spares.pop(key, [])]
        for w in workers:
            w.kill()

    def shutdown(self) -> None:
        self._stop.set()
        self.shutdown_workers()

    def shutdown_workers(self) -> None:
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
            workers += [w for ws in self._spares.values() for w in ws]
            self._spares = {}
        for w in workers:
            w.kill()
