"""Start, stop and inspect the embedded AWS: the API the CLI and the engine call.

The emulator is one detached process (its own session, stdin from /dev/null, output to
``<home>/local.log``), so it never holds a caller's pipes; its address, pid and admin
token are in ``<home>/local.json`` (mode 0600: the token is what admin routes such as
``/_iotpipe/status`` and ``/moto-api/reset`` require). "Ready" means
``GET /_iotpipe/health`` answered, polled against a deadline. Stopping signals the whole
process group, so function workers go too.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iotpipe.errors import IotpipeError
from iotpipe.local import heaptrim
from iotpipe.local.guard import TOKEN_HEADER
from iotpipe.local.patching import PatchError
from iotpipe.poll import Backoff, Clock, TimedOut, until

READY_TIMEOUT_S = 30.0
PORT_FILE = "local.port"  # the last start's port, reused by the next start without --port
STATE_EXIT = 5  # `python -m iotpipe.local`: the state directory cannot be used as it is
STOP_TIMEOUT_S = 10.0
READY_BACKOFF = Backoff(first=0.02, factor=1.5, cap=0.2)  # quick at first: starts take ~1 s
GONE_BACKOFF = Backoff.fixed(0.02)
CLOCK = Clock()  # tests may replace it
DYING_S = 5.0  # how long a process that does not answer may take to finish dying
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # started here: reaped, never zombies


class LocalError(IotpipeError):
    """Something the user must act on; the message says what."""


@dataclass(frozen=True)
class LocalInfo:
    endpoint: str
    pid: int
    port: int
    started_at: float


# -- state file -------------------------------------------------------------------------
def _state_path(home: Path) -> Path:
    return home / "local.json"


def read_state(home: Path) -> dict[str, Any] | None:
    try:
        return json.loads(_state_path(home).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        raise LocalError(f"{_state_path(home)} is not valid JSON; delete it and retry") from None


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)
            return False
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def admin_token(home: Path) -> str:
    """The running emulator's admin token (from local.json), "" if there is none."""
    state = read_state(home.resolve()) or {}
    return str(state.get("token") or "")


def admin_request(home: Path, path: str, method: str = "GET") -> urllib.request.Request:
    """A request for an admin route (``/_iotpipe/*``, ``/moto-api/*``) carrying the token."""
    state = read_state(home.resolve()) or {}
    return urllib.request.Request(  # noqa: S310 (the emulator's own http:// endpoint)
        str(state.get("endpoint", "")) + path,
        method=method,
        headers={TOKEN_HEADER: str(state.get("token") or "")},
    )


def _probe(
    endpoint: str, path: str = "/_iotpipe/health", timeout: float = 2.0, token: str = ""
) -> Any:
    request = urllib.request.Request(endpoint + path, headers={TOKEN_HEADER: token})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
        return json.loads(resp.read())


def _answers(endpoint: str) -> bool:
    try:
        _probe(endpoint, timeout=1.0)
        return True
    except (OSError, ValueError):
        return False


def _log_tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text) or "    (empty)"


@contextlib.contextmanager
def _start_lock(home: Path) -> Iterator[None]:
    """Serialize starts, so two commands racing to start it make one emulator."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "local.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _check_port(port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise LocalError(
                f"port {port} on 127.0.0.1 is already in use by another process; "
                "choose another with --port, or omit --port to pick a free one"
            ) from None


def _running(home: Path) -> LocalInfo | None:
    """The healthy emulator described by local.json, None if none; stale files removed."""
    state = read_state(home)
    if state is None:
        return None
    pid, endpoint = int(state.get("pid", 0)), str(state.get("endpoint", ""))
    if pid and _alive(pid) and not _answers(endpoint):
        _wait_gone(pid, DYING_S)  # killed a moment ago (kill -9 in an fsync): let it go
    if not pid or not _alive(pid):
        _state_path(home).unlink(missing_ok=True)
        print(
            f"iotpipe: removed a stale {_state_path(home)} (pid {pid} is not running)",
            file=sys.stderr,
        )
        return None
    if not _answers(endpoint):
        raise LocalError(
            f"{_state_path(home)} names pid {pid}, which is alive but does not answer at "
            f"{endpoint}. If it is not the embedded AWS, delete the file; otherwise stop it "
            f"with `kill {pid}`. Log: {home / 'local.log'}"
        )
    return LocalInfo(endpoint, pid, int(state["port"]), float(state["started_at"]))


# -- public API -------------------------------------------------------------------------
def start(
    home: Path, port: int = 0, foreground: bool = False, ephemeral: bool = False
) -> LocalInfo:
    """Start the emulator (background unless `foreground`); raise LocalError if running.

    In the foreground this returns when the emulator stops (SIGINT/SIGTERM). `ephemeral`
    keeps everything in memory and leaves ``<home>/data/`` alone.
    """
    home = home.resolve()
    with _start_lock(home):
        if not foreground:
            return _start_locked(home, port, ephemeral)
        _refuse_if_running(home)
        _check_port(port)
    started = time.time()
    try:
        # Deferred: it loads moto (and a moto that moved a class raises PatchError here);
        # only a foreground start, which becomes the emulator, needs it.
        from iotpipe.local.durable import StateError
        from iotpipe.local.server import run

        try:
            run(home, port, None, ephemeral)
        except StateError as e:
            raise LocalError(str(e)) from None
    except PatchError as e:
        raise LocalError(str(e)) from None
    except OSError as e:
        raise LocalError(f"cannot listen on 127.0.0.1:{port}: {e}") from None
    return LocalInfo("", os.getpid(), port, started)


def _refuse_if_running(home: Path) -> None:
    running = _running(home)
    if running is not None:
        raise LocalError(
            f"the embedded AWS is already running at {running.endpoint} (pid {running.pid}); "
            "`iotpipe local stop` first to restart it"
        )


def _start_locked(home: Path, port: int, ephemeral: bool = False) -> LocalInfo:
    """Spawn the detached emulator and wait until it answers (caller holds the lock)."""
    _refuse_if_running(home)
    _check_port(port)
    port = port or _previous_port(home)
    log = home / "local.log"
    command = [sys.executable, "-m", "iotpipe.local", "--home", str(home), "--port", str(port)]
    command += ["--log", str(log)] + (["--ephemeral"] if ephemeral else [])
    with open(log, "ab") as out:
        started_at = out.tell()
        proc = subprocess.Popen(
            command,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            close_fds=True,
            cwd=home,
            env={"MALLOC_ARENA_MAX": heaptrim.ARENAS, **os.environ},  # see `heaptrim`
        )
    _CHILDREN[proc.pid] = proc
    info = _wait_ready(home, proc, log, started_at)
    with contextlib.suppress(OSError):
        (home / PORT_FILE).write_text(str(info.port))
    return info


def _previous_port(home: Path) -> int:
    """The port of the last start, if it is free: what the saved state's URLs name.

    Queue URLs (in IoT rules' error actions, functions' environments) and a user's
    exported AWS_ENDPOINT_URL carry the endpoint; a restart on the same port keeps them
    right. 0 (any free port) when there was none or it is taken.
    """
    try:
        port = int((home / PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return 0
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def _refusal(log: Path, offset: int) -> str | None:
    """The one-line reason the emulator gave for refusing its state (exit STATE_EXIT)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(offset)
            lines = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    found = [line for line in lines if line.startswith("iotpipe local: ")]
    return found[-1].removeprefix("iotpipe local: ") if found else None


def _wait_ready(home: Path, proc: subprocess.Popen[bytes], log: Path, offset: int = 0) -> LocalInfo:
    def ready() -> LocalInfo | None:
        code = proc.poll()
        if code is not None:
            _CHILDREN.pop(proc.pid, None)
            why = _refusal(log, offset) if code == STATE_EXIT else None
            if why:
                raise LocalError(why)
            raise LocalError(
                f"the embedded AWS exited during start (status {code}). Log {log}:\n"
                + _log_tail(log)
            )
        state = read_state(home)
        if state and state.get("pid") == proc.pid and _answers(state["endpoint"]):
            return LocalInfo(
                state["endpoint"], proc.pid, int(state["port"]), float(state["started_at"])
            )
        return None

    try:
        return until(ready, timeout=READY_TIMEOUT_S, backoff=READY_BACKOFF, clock=CLOCK)
    except TimedOut:
        _terminate(proc.pid)
        raise LocalError(
            f"the embedded AWS did not answer within {READY_TIMEOUT_S:.0f} s. Log {log}:\n"
            + _log_tail(log)
        ) from None


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _wait_gone(pid: int, timeout: float) -> bool:
    try:
        until(lambda: not _alive(pid) or None, timeout=timeout, backoff=GONE_BACKOFF, clock=CLOCK)
    except TimedOut:
        return False
    return True


def _terminate(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the process group, wait, SIGKILL if needed; reap it if it is our child."""
    _signal_group(pid, signal.SIGTERM)
    if not _wait_gone(pid, timeout):
        _signal_group(pid, signal.SIGKILL)
        _wait_gone(pid, 5.0)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # function workers left in the group, if any
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.wait(timeout=5)


def stop(home: Path) -> bool:
    """Stop the emulator and its workers; False if none was running."""
    home = home.resolve()
    state = read_state(home)
    if state is None:
        return False
    pid = int(state.get("pid", 0))
    if not pid or not _alive(pid):
        _state_path(home).unlink(missing_ok=True)
        return False
    _terminate(pid)
    _state_path(home).unlink(missing_ok=True)
    return True


def status(home: Path) -> dict[str, Any] | None:
    """The emulator's status JSON (endpoint, pid, uptime, counts...), None if not running."""
    info = _running(home.resolve())
    if info is None:
        return None
    try:
        return _probe(info.endpoint, "/_iotpipe/status", timeout=5.0, token=admin_token(home))
    except (OSError, ValueError) as e:
        raise LocalError(
            f"the embedded AWS at {info.endpoint} did not report status: {e}"
        ) from None


def ensure_running(home: Path) -> tuple[str, bool]:
    """The emulator's endpoint, starting it if needed; True when it had to start it."""
    home = home.resolve()
    with _start_lock(home):
        info = _running(home)
        if info is not None:
            return info.endpoint, False
        return _start_locked(home, 0).endpoint, True
