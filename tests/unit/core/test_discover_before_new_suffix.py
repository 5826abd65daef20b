"""`plan` and `up` look for an existing deployment before making a new suffix, and do it under
the deployment's lock, so a lost state file never starts a second deployment and two commands
at once never discover (or make) two suffixes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from iotpipe.aws import Gateway
from iotpipe.config import Config
from iotpipe.errors import UsageError
from iotpipe.lock import DeploymentBusy, DeploymentLock
from iotpipe.state import Identity, State
from iotpipe.target import resolve

HERE = Identity("iot-telemetry", "local", "us-east-1", "123456789012")


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.setenv("IOTPIPE_HOME", str(tmp_path))
    with mock_aws():
        yield Gateway(region="us-east-1", local=True)


def lock_path(tmp_path: Path) -> Path:
    return tmp_path / HERE.file_name(ext="lock")


def test_discovery_runs_under_the_lock_and_its_one_suffix_is_kept(
    gateway: Gateway, tmp_path: Path
) -> None:
    held: list[bool] = []
    notes: list[str] = []

    def discover(*_: Any) -> list[str]:
        try:
            DeploymentLock(lock_path(tmp_path), "probe", timeout_s=0).acquire()
        except DeploymentBusy:
            held.append(True)
        else:
            held.append(False)
        return ["y3a49e"]

    dep = resolve(Config(), gateway, create_suffix=True, discover=discover, on_found=notes.append)
    assert dep.names.suffix == "y3a49e" and held == [True]
    assert notes == [
        "Found deployment iot-telemetry-y3a49e by its resources (no state file here): using it."
    ]
    assert State.for_identity(HERE, tmp_path).suffix == "y3a49e"


def test_concurrent_first_runs_discover_once_and_choose_one_suffix(
    gateway: Gateway, tmp_path: Path
) -> None:
    asked: list[int] = []
    suffixes: list[str] = []
    barrier = threading.Barrier(6)

    def discover(*_: Any) -> list[str]:
        asked.append(1)
        return []  # an empty account: a new suffix, once

    def one() -> None:
        barrier.wait()
        dep = resolve(Config(), gateway, create_suffix=True, discover=discover)
        suffixes.append(dep.names.suffix)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(suffixes)) == 1 and len(suffixes) == 6
    assert asked == [1]  # the others found the suffix in the state the first one wrote


def test_several_found_is_a_usage_error_that_says_how_to_choose(gateway: Gateway) -> None:
    def two(*_: Any) -> list[str]:
        return ["bbbb22", "aaaa11"]

    with pytest.raises(UsageError) as caught:
        resolve(Config(), gateway, create_suffix=True, discover=two)
    text = str(caught.value)
    assert "aaaa11, bbbb22" in text and "'suffix:' in the config" in text
    assert "--suffix" not in text  # plan and up have no such option
    with pytest.raises(UsageError, match="or pass --suffix"):
        resolve(Config(), gateway, discover=two, suffix_option=True)


def test_a_known_suffix_is_not_second_guessed_by_discovery(
    gateway: Gateway, tmp_path: Path
) -> None:
    first = resolve(Config(), gateway, create_suffix=True)

    def elsewhere(*_: Any) -> list[str]:
        raise AssertionError("the state knows the suffix: no discovery")

    again = resolve(Config(), gateway, create_suffix=True, discover=elsewhere)
    assert again.names.suffix == first.names.suffix
    given = resolve(Config(suffix="abcd12"), gateway, create_suffix=True, discover=elsewhere)
    assert given.names.suffix == "abcd12"
