"""Which deployment a command is about: the suffix is generated once and kept; a deployment
is (name, suffix, target, account, region); its lock makes concurrent commands take turns."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from iotpipe.aws import Gateway
from iotpipe.config import Config
from iotpipe.errors import UsageError
from iotpipe.lock import DeploymentBusy, DeploymentLock
from iotpipe.state import Identity, State
from iotpipe.target import NotDeployed, TargetOptions, effective_region, make_gateway, resolve

ACCOUNT = "123456789012"
HERE = Identity("iot-telemetry", "local", "us-east-1", ACCOUNT)


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.setenv("IOTPIPE_HOME", str(tmp_path))
    with mock_aws():
        yield Gateway(region="us-east-1", local=True)


def test_a_generated_suffix_is_kept_so_plan_and_up_agree(gateway: Gateway, tmp_path: Path) -> None:
    first = resolve(Config(), gateway, create_suffix=True)  # e.g. `plan`
    second = resolve(Config(), gateway, create_suffix=True)  # then `up`
    assert first.names.suffix == second.names.suffix
    assert State.for_identity(HERE, tmp_path).suffix == first.names.suffix
    assert (tmp_path / "iot-telemetry.local.us-east-1.123456789012.json").is_file()


def test_unknown_deployment_without_create_says_what_to_do(gateway: Gateway) -> None:
    with pytest.raises(NotDeployed, match="run 'iotpipe up' first"):
        resolve(Config(), gateway)


def test_another_suffix_does_not_overwrite_the_known_one(gateway: Gateway, tmp_path: Path) -> None:
    known = resolve(Config(), gateway, create_suffix=True)
    other = resolve(Config(), gateway, suffix="zzzz99")
    other.state.record("stream", {"name": "x"})
    other.state.delete()
    assert State.for_identity(HERE, tmp_path).suffix == known.names.suffix
    assert other.names.suffix == "zzzz99"


def test_another_target_has_its_own_state(gateway: Gateway, tmp_path: Path) -> None:
    dep = resolve(Config(), gateway, create_suffix=True)
    dep.state.record("stream", {"arn": "arn:from:the:embedded:aws"})
    moved = resolve(Config(target="aws"), gateway, create_suffix=True)
    assert moved.state.path != dep.state.path
    assert moved.state.resources == {}  # ARNs of the other target are not reused


def test_the_pre_region_state_file_is_kept_when_it_is_this_deployment(
    gateway: Gateway, tmp_path: Path
) -> None:
    old = {"suffix": "old123", "target": "local", "region": "us-east-1", "account": ACCOUNT}
    (tmp_path / "iot-telemetry.json").write_text(json.dumps({**old, "resources": {}}))
    dep = resolve(Config(), gateway, create_suffix=True)
    assert dep.names.suffix == "old123"  # existing users keep their suffix
    assert dep.state.path.name == HERE.file_name()
    assert not (tmp_path / "iot-telemetry.json").exists()  # moved, not copied


def test_the_pre_region_state_file_of_another_region_is_left_alone(
    gateway: Gateway, tmp_path: Path
) -> None:
    old = {"suffix": "old123", "target": "local", "region": "eu-west-1", "account": ACCOUNT}
    (tmp_path / "iot-telemetry.json").write_text(json.dumps(old))
    dep = resolve(Config(), gateway, create_suffix=True)
    assert dep.names.suffix != "old123"
    assert json.loads((tmp_path / "iot-telemetry.json").read_text()) == old


def test_the_region_option_is_the_one_region_of_everything(tmp_path: Path) -> None:
    with mock_aws():
        opts = TargetOptions(region="eu-west-1", endpoint_url="http://unused.invalid")
        gw = make_gateway(Config(target="aws", region="us-east-1"), opts)
        assert gw.region == "eu-west-1"
        gw = Gateway(region=gw.region, local=True)  # moto in-process, same region
        dep = resolve(Config(region="us-east-1"), gw, create_suffix=True, base=tmp_path)
        home_gw = Gateway(region="us-east-1", local=True)
        home = resolve(Config(region="us-east-1"), home_gw, create_suffix=True, base=tmp_path)
    n = dep.names
    assert dep.config.region == n.region == "eu-west-1"
    for arn in (n.stream_arn, n.queue_arn, n.function_arn, n.table_arn, n.rule_arn):
        assert ":eu-west-1:" in arn, arn
    assert "eu-west-1" in n.function_role and "eu-west-1" in n.rule_role
    assert home.names.function_role != n.function_role  # IAM is global: never shared
    assert home.state.path != dep.state.path  # each region's deployment has its own state


@pytest.mark.parametrize("region", ["eu-west", "EU-WEST-1", "us-east-1; rm", "a" * 30 + "-b-1"])
def test_a_bad_region_option_is_a_usage_error(region: str) -> None:
    with pytest.raises(UsageError, match=r"--region: .* is not an AWS Region code"):
        effective_region(Config(), TargetOptions(region=region))


def test_a_command_that_needs_a_deployment_does_not_start_the_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_start(home: Path) -> tuple[str, bool]:
        raise AssertionError("must not start the embedded AWS")

    monkeypatch.setattr("iotpipe.local.lifecycle.ensure_running", no_start)
    with pytest.raises(NotDeployed, match="Nothing deployed"):
        make_gateway(Config(), TargetOptions(), base=tmp_path, start=False)
    assert not (tmp_path / "local.json").exists()
    # A stale record (its pid is gone) is not a running emulator either.
    (tmp_path / "local.json").write_text(json.dumps({"pid": 2**22 + 7, "endpoint": "x"}))
    with pytest.raises(NotDeployed, match="Nothing deployed"):
        make_gateway(Config(), TargetOptions(), base=tmp_path, start=False)


# --- the lock ----------------------------------------------------------------------------------


def test_concurrent_resolves_choose_one_suffix(gateway: Gateway, tmp_path: Path) -> None:
    """Two `up` at once: without the lock each could pick (and keep) its own suffix."""
    suffixes: list[str] = []
    barrier = threading.Barrier(8)

    def one() -> None:
        barrier.wait()
        suffixes.append(resolve(Config(), gateway, create_suffix=True).names.suffix)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(suffixes) == 8 and len(set(suffixes)) == 1
    assert State.for_identity(HERE, tmp_path).suffix == suffixes[0]


def test_a_held_deployment_makes_the_second_command_wait_then_name_the_holder(
    gateway: Gateway, tmp_path: Path
) -> None:
    first = resolve(Config(), gateway, create_suffix=True, lock=True)
    assert first.lock is not None and first.lock.held
    now = [0.0]
    waits: list[str] = []
    lock = DeploymentLock(
        first.lock.path,
        "iot-telemetry (us-east-1)",
        timeout_s=5,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
        on_wait=waits.append,
    )
    with pytest.raises(DeploymentBusy) as caught:
        lock.acquire()
    text = str(caught.value)
    assert f"pid {os.getpid()}" in text and "since 20" in text
    assert "holds its lock" in text and "Waited 5 s" in text and "IOTPIPE_LOCK_TIMEOUT" in text
    assert len(waits) == 1 and waits[0].startswith("Waiting for pid ")
    assert now[0] == pytest.approx(5.0)  # bounded: it gave up at the deadline, no real sleep
    first.release()
    lock.acquire()  # free once the first command is done
    lock.release()


def test_the_lock_is_held_until_the_deployment_is_released(gateway: Gateway) -> None:
    with resolve(Config(), gateway, create_suffix=True, lock=True) as dep:
        assert dep.lock is not None and dep.lock.held
        probe = DeploymentLock(dep.lock.path, "x", timeout_s=0)
        with pytest.raises(DeploymentBusy):
            probe.acquire()
    probe.acquire()
    probe.release()
