"""Which deployment a command is about: the suffix is generated once and kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from iotpipe.aws import Gateway
from iotpipe.config import Config
from iotpipe.state import State
from iotpipe.target import NotDeployed, resolve


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.setenv("IOTPIPE_HOME", str(tmp_path))
    with mock_aws():
        yield Gateway(region="us-east-1", local=True)


def test_a_generated_suffix_is_kept_so_plan_and_up_agree(gateway: Gateway, tmp_path: Path) -> None:
    first = resolve(Config(), gateway, create_suffix=True)  # e.g. `plan`
    second = resolve(Config(), gateway, create_suffix=True)  # then `up`
    assert first.names.suffix == second.names.suffix
    assert State.for_deployment("iot-telemetry", tmp_path).suffix == first.names.suffix


def test_unknown_deployment_without_create_says_what_to_do(gateway: Gateway) -> None:
    with pytest.raises(NotDeployed, match="run 'iotpipe up' first"):
        resolve(Config(), gateway)


def test_another_suffix_does_not_overwrite_the_known_one(gateway: Gateway, tmp_path: Path) -> None:
    known = resolve(Config(), gateway, create_suffix=True)
    other = resolve(Config(), gateway, suffix="zzzz99")
    other.state.record("stream", {"name": "x"})
    other.state.delete()
    assert State.for_deployment("iot-telemetry", tmp_path).suffix == known.names.suffix
    assert other.names.suffix == "zzzz99"


def test_cached_resources_of_another_target_are_dropped(gateway: Gateway) -> None:
    dep = resolve(Config(), gateway, create_suffix=True)
    dep.state.record("stream", {"arn": "arn:from:the:embedded:aws"})
    moved = resolve(Config(target="aws"), gateway)
    assert moved.names.suffix == dep.names.suffix  # names stay
    assert moved.state.resources == {}  # ARNs of the other target do not
