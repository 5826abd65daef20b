"""send-test: bad options and files are refused before any AWS call; a run that stops
(an error, Ctrl-C) reports what was sent, acknowledged and failed, and what a re-run does."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from botocore.exceptions import EndpointConnectionError
from click.testing import CliRunner, Result
from rich.console import Console

from iotpipe.cli import main
from iotpipe.cli.progress import PlainProgress
from iotpipe.config import Config
from iotpipe.fleet import Message
from iotpipe.traffic import BatchCounts


class StubSink:
    """Takes batches of 500; ``fail_at`` (1-based) raises instead, as a dead endpoint does."""

    max_records = 500
    max_bytes = 5 * 1024 * 1024

    def __init__(self, fail_at: int | None = None, error: BaseException | None = None) -> None:
        self.fail_at = fail_at
        self.error = error
        self.calls = 0
        self.sent: list[Message] = []

    def send(self, batch: list[Message]) -> BatchCounts:
        self.calls += 1
        if self.calls == self.fail_at:
            raise self.error or EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        out = BatchCounts()
        for m in batch:
            if len(m.data) + len(m.partition_key) > 1024 * 1024:
                out.failed += 1
                out.errors["RecordTooLarge"] += 1
            else:
                out.sent += 1
                self.sent.append(m)
        return out


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("bad usage must be refused before any AWS call")

    monkeypatch.setattr("iotpipe.cli.app.App.deployment", boom)
    monkeypatch.setattr("iotpipe.cli.app.App.gateway", boom)


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> StubSink:
    stub = StubSink()
    dep = SimpleNamespace(
        config=Config(), names=SimpleNamespace(stream="the-stream", deployment="d-x")
    )
    monkeypatch.setattr("iotpipe.cli.app.App.deployment", lambda self, **k: dep)
    monkeypatch.setattr("iotpipe.cli.exercise.sink_for", lambda d, via: stub)
    return stub


def clean(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--rate", "nan"], "--rate is messages per second"),
        (["--rate", "inf"], "x<=1000000"),
        (["--duration", "1e12", "--rate", "1e12"], "x<=604800"),
        (["--duration", "inf", "--rate", "1"], "x<=604800"),
        (["--duration", "nan", "--rate", "1"], "--duration is seconds"),
        (["--duration", "600000", "--rate", "1000"], "at most 10,000,000"),
        (["--messages", "100", "--rate", "0.0001"], "a run lasts at most 7 days"),
        (["--messages", str(10**30)], "1<=x<=10000000"),
        (["--seed", "9" * 5000], "is not a valid integer"),
        (["--invalid-ratio", "nan"], "fraction from 0 to 1"),
    ],
)
def test_bad_numbers_are_usage_errors(no_aws: None, args: list[str], words: str) -> None:
    out = clean(CliRunner().invoke(main, ["send-test", *args]), 2)
    assert words in out, out


def bad_file(tmp_path: Path, name: str) -> tuple[str, str]:
    path = tmp_path / "data.jsonl"
    ok = b'{"deviceId": "s1", "temperature": 20}\n'
    if name == "latin-1":
        path.write_bytes(ok + '{"deviceId": "café"}\n'.encode("latin-1"))
        return str(path), f"{path}:2: not UTF-8 text (byte 0xe9 at column 18)"
    if name == "binary":
        path.write_bytes(ok * 3 + b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
        return str(path), f"{path}:4: not UTF-8 text (byte 0x89 at column 1)"
    if name == "2 MiB line":
        path.write_bytes(ok * 2 + b'{"deviceId": "s1", "x": "' + b"a" * 2 * 1024 * 1024 + b'"}\n')
        return str(path), f"{path}:3: the line is longer than 1 MiB, the most a Kinesis record"
    if name == "200 KiB line via iot":
        path.write_bytes(b'{"x": "' + b"a" * 200 * 1024 + b'"}\n')
        return str(path), f"{path}:1: the line is longer than 128 KiB"
    return "/dev/zero", "/dev/zero:1: the line is longer than 1 MiB"


@pytest.mark.parametrize(
    "name", ["latin-1", "binary", "2 MiB line", "200 KiB line via iot", "zero"]
)
def test_bad_files_are_refused_with_their_line_before_any_aws_call(
    no_aws: None, tmp_path: Path, name: str
) -> None:
    path, words = bad_file(tmp_path, name)
    via = ["--via", "iot"] if "iot" in name else []
    started = time.monotonic()
    out = clean(CliRunner().invoke(main, ["send-test", "--file", path, *via]), 2)
    assert time.monotonic() - started < 10  # /dev/zero was a MemoryError
    assert words in out, out
    assert "after retries" not in out


def test_a_too_large_line_in_a_pipe_is_refused_without_retry(
    sink: StubSink, tmp_path: Path
) -> None:
    """A pipe is read once, so its lines are checked as they go: the bad line is named, the
    counts say what was sent (nothing: the first batch was still filling), no retry."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    pid = os.fork()
    if pid == 0:  # the writer; the reader stops at the bad line, so EPIPE is expected
        try:
            with open(fifo, "wb") as fh:
                fh.write(b'{"deviceId": "s1"}\n' * 3 + b"x" * (2 * 1024 * 1024) + b"\n")
        finally:
            os._exit(0)
    result = CliRunner().invoke(main, ["send-test", "--file", str(fifo), "--workers", "1"])
    os.waitpid(pid, 0)
    out = clean(result, 2)
    assert f"{fifo}:4: the line is longer than 1 MiB" in out
    assert "send-test stopped: 0 sent and acknowledged, 0 failed, 0 unconfirmed" in out
    assert sink.calls == 0 and "after retries" not in out


def test_file_replay_prints_the_file_not_seed_none(sink: StubSink, tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"deviceId": "s1", "temperature": 1}\n\n{"deviceId": "s2"}\n')
    out = clean(CliRunner().invoke(main, ["send-test", "--file", str(data)]), 0)
    rows = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert "file" in rows and "seed" not in rows and " None" not in out
    result = CliRunner().invoke(main, ["send-test", "--file", str(data), "-o", "json"])
    clean(result, 0)
    data_out = json.loads(result.stdout)
    assert data_out["file"] == str(data) and "seed" not in data_out and data_out["sent"] == 2


def test_failure_midway_reports_counts_and_what_a_rerun_does(sink: StubSink) -> None:
    sink.fail_at = 3
    result = CliRunner().invoke(
        main, ["send-test", "-n", "2000", "--seed", "7", "--workers", "1", "-o", "json"]
    )
    clean(result, 1)
    err = result.stderr
    assert "send-test stopped: 1,000 sent and acknowledged, 0 failed, 500 unconfirmed" in err
    assert "500 not sent" in err
    assert "A re-run sends all 2,000 messages again from the start" in err
    assert "--seed 7 gives the same values" in err
    assert "Could not connect to the endpoint URL" in err
    data = json.loads(result.stdout)
    assert (data["sent"], data["failed"], data["unconfirmed"], data["planned"]) == (
        1000,
        0,
        500,
        2000,
    )
    assert "Could not connect" in data["stopped"]


def test_ctrl_c_while_sending_reports_counts_and_exits_130(sink: StubSink) -> None:
    sink.fail_at, sink.error = 2, KeyboardInterrupt()
    result = CliRunner().invoke(main, ["send-test", "-n", "1200", "--workers", "1"])
    clean(result, 130)
    err = result.stderr
    assert "send-test stopped (interrupted): 500 sent and acknowledged" in err
    assert "Interrupted. A re-run sends all 1,200 messages again from the start" in err
    assert "add --seed" in err  # the random seed is printed so the values can be repeated
    assert "continue where it stopped" not in err


def test_too_large_is_said_so_not_after_retries(sink: StubSink, tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    # Within the line bound, over the record bound once the partition key is added.
    data.write_bytes(b'{"deviceId": "s1"}\n' + b'"' + b"a" * (1024 * 1024 - 2) + b'"\n')
    out = clean(CliRunner().invoke(main, ["send-test", "--file", str(data)]), 1)
    assert "1 message(s) too large for a Kinesis record" in out and "not retried" in out
    assert "after retries" not in out


def test_slow_rate_without_a_terminal_prints_its_schedule(
    sink: StubSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("iotpipe.traffic.time.sleep", lambda s: None)
    out = clean(CliRunner().invoke(main, ["send-test", "-n", "30", "--rate", "0.5"]), 0)
    assert "Sending 30 messages at 0.5/s: about 1m00s, until" in out


def test_plain_progress_prints_a_line_every_interval() -> None:
    now = [0.0]
    console = Console(width=200, record=True, force_terminal=False)
    view = PlainProgress(console, 10, 0.1, clock=lambda: now[0], every=30)
    for _ in range(10):
        now[0] += 10
        view.on_batch(BatchCounts(sent=1, errors=Counter()))
    lines = console.export_text().splitlines()
    assert lines[0].startswith("Sending 10 messages at 0.1/s: about 1m40s")
    assert lines[1:] == [
        "sent 3/10, failed 0, 30s elapsed",
        "sent 6/10, failed 0, 1m00s elapsed",
        "sent 9/10, failed 0, 1m30s elapsed",
    ]
