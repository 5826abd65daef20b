"""One long-lived function worker: imports the deployed handler once, then serves invokes.

Run as ``python -m iotpipe.local.worker <handler>`` with the unpacked zip as the working
directory (so the deployed code, not a copy elsewhere on sys.path, is what is imported)
and the function's environment. Standard library only: this runs the user's code and must
start fast.

Protocol: one JSON request per line on stdin (``{"id", "event", "deadline_ms",
"request_id"}``); one JSON reply per line on the original stdout (``{"id", "ok",
"result"}`` or ``{"id", "ok": false, "error": {errorType, errorMessage, stackTrace}}``).
The function's own stdout, stderr and logging all go to stderr, which the emulator keeps
as the function's log, with Lambda-style START/END/REPORT lines.

The worker ends with the emulator: at stdin's EOF between invocations, and, when the
emulator dies mid-invocation (``kill -9``), at once (`_exit_with_parent`), so no handler
goes on writing to an emulator that is gone or to the one started after it.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import select
import sys
import threading
import time
import traceback
from typing import Any

from iotpipe import gcpolicy
from iotpipe.local import kinesisevent


class LambdaContext:
    """The attributes of Lambda's Python context object that functions use."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("IOTPIPE_FUNCTION_ARN", "")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _setup_logging() -> _RequestIdFilter:
    """Root logger like Lambda's: a handler is present, level WARNING until the code says."""
    handler = logging.StreamHandler(sys.stdout)
    rid = _RequestIdFilter()
    handler.addFilter(rid)
    fmt = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"
    formatter = logging.Formatter(fmt, "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    return rid


def _error(kind: str, exc: BaseException | None = None, message: str = "") -> dict[str, Any]:
    if exc is not None:
        stack = traceback.format_tb(exc.__traceback__)
        return {"errorType": type(exc).__name__, "errorMessage": str(exc), "stackTrace": stack}
    return {"errorType": kind, "errorMessage": message, "stackTrace": []}


def _load(handler: str) -> tuple[Any, dict[str, Any] | None]:
    module_name, _, func_name = handler.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        err = _error("Runtime.ImportModuleError", e)
        err["errorType"] = "Runtime.ImportModuleError"
        err["errorMessage"] = f"Unable to import module '{module_name}': {e}"
        return None, err
    func = getattr(module, func_name, None)
    if not callable(func):
        msg = f"Handler '{func_name}' missing on module '{module_name}'"
        return None, _error("Runtime.HandlerNotFound", message=msg)
    return func, None


def _exit_with_parent() -> None:
    """A thread that ends this process when its parent (the emulator) exits."""
    parent = os.getppid()

    def watch() -> None:
        try:  # Linux: a descriptor that becomes readable when the parent exits
            fd = os.pidfd_open(parent)
            select.select([fd], [], [])
        except (AttributeError, OSError):  # elsewhere: notice the re-parenting
            while os.getppid() == parent:
                time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def main(argv: list[str]) -> int:
    handler_name = argv[1]
    _exit_with_parent()
    replies = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # print() and logging now land in the function's log
    sys.stdout = os.fdopen(1, "w", buffering=1, encoding="utf-8", closefd=False)
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.path.insert(0, os.getcwd())
    rid = _setup_logging()
    gcpolicy.for_bulk_process()
    func, load_error = _load(handler_name)
    gcpolicy.freeze_startup()  # the runtime, boto3's models and the handler's module
    version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        rid.request_id = request_id = request["request_id"]
        print(f"START RequestId: {request_id} Version: {version}", flush=True)
        started = time.perf_counter()
        reply: dict[str, Any] = {"id": request["id"]}
        if load_error is not None:
            reply.update(ok=False, error=load_error)
        else:
            try:
                ctx = LambdaContext(request_id, int(request["deadline_ms"]))
                result = func(kinesisevent.expand(request["event"]), ctx)
                reply.update(ok=True, result=result)
                json.dumps(reply)
            except Exception as e:
                err = _error("", e)
                print(json.dumps(err), file=sys.stderr, flush=True)
                reply = {"id": request["id"], "ok": False, "error": err}
        duration = (time.perf_counter() - started) * 1000
        print(f"END RequestId: {request_id}", flush=True)
        print(
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
            f"Billed Duration: {int(duration) + 1} ms",
            flush=True,
        )
        try:
            replies.write(json.dumps(reply, default=str) + "\n")
        except BrokenPipeError:
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
