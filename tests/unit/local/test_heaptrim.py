"""The heap trimmer: runs on glibc until stopped, and the emulator gets fewer arenas."""

from __future__ import annotations

import platform
import threading

import pytest

from iotpipe.local import heaptrim


def test_it_trims_until_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    twice = threading.Event()

    def trim() -> int:
        calls.append(1)
        if len(calls) >= 2:
            twice.set()
        return 1

    monkeypatch.setattr(heaptrim, "_trimmer", lambda: trim)
    stopped = threading.Event()
    thread = heaptrim.start(stopped, every_s=0.01)
    assert thread is not None and twice.wait(5)
    stopped.set()
    thread.join(5)
    assert not thread.is_alive()


def test_without_glibc_nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heaptrim, "_trimmer", lambda: None)
    assert heaptrim.start(threading.Event()) is None


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_the_real_trim_is_found_on_glibc() -> None:
    trim = heaptrim._trimmer()
    assert trim is not None
    trim()
