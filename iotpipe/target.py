"""Where a command's AWS calls go, and which deployment (suffix) they are about.

``target: local`` means the embedded AWS: started on demand, fake credentials, its endpoint.
``target: aws`` means boto3's usual resolution (profile, env, ``AWS_ENDPOINT_URL``), with
``--endpoint-url`` winning, which is also how iotpipe is tested against a moto server.

A command has one effective region (``--region``, else the config's): the gateway's, which
every name, ARN and the state file's identity use. A deployment is (name, suffix, target,
account, region); commands that change it hold its lock (:mod:`iotpipe.lock`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from botocore.exceptions import NoCredentialsError, NoRegionError, ProfileNotFound

from iotpipe.aws import Gateway
from iotpipe.config import REGION_RE, Config
from iotpipe.errors import UsageError
from iotpipe.local import lifecycle
from iotpipe.lock import DeploymentLock
from iotpipe.naming import Names, new_suffix
from iotpipe.state import Identity, State, home

# Role names carry the region and must fit IAM's 64 characters (see naming.py).
MAX_REGION_LENGTH = 20


@dataclass(frozen=True)
class TargetOptions:
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None


class NotDeployed(UsageError):
    """No suffix is known and none was found: there is no such deployment here."""


def effective_region(config: Config, opts: TargetOptions) -> str:
    """``--region`` wins over the config; checked like the config's own value."""
    region = opts.region or config.region
    if not REGION_RE.fullmatch(region) or len(region) > MAX_REGION_LENGTH:
        where = "--region" if opts.region else f"{config.source}: region"
        raise UsageError(f"{where}: {region[:40]!r} is not an AWS Region code such as us-east-1")
    return region


def emulator_running(base: Path) -> bool:
    """Is an embedded AWS recorded as running in ``base``? Never starts one."""
    recorded = lifecycle.read_state(base)
    if recorded is None:
        return False
    try:
        pid = int(recorded.get("pid", 0))
    except (TypeError, ValueError):
        return True  # odd: let ensure_running say what it is
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # alive, but another user's: let ensure_running say what it is
    return True


def make_gateway(
    config: Config,
    opts: TargetOptions,
    announce: Callable[[str], None] | None = None,
    *,
    base: Path | None = None,
    start: bool = True,
) -> Gateway:
    """A gateway for the config's target; starts the embedded AWS if it is the target.

    ``start=False`` is for commands that need an existing deployment: the embedded AWS
    keeps everything in memory, so when it is not running nothing is deployed on it, and
    starting it (and leaving it running) would only hide that.
    """
    region = effective_region(config, opts)
    if config.target == "local" and not opts.endpoint_url:
        where = base or home()
        if not start and not emulator_running(where):
            raise NotDeployed(
                f"Nothing deployed: no deployment named {config.name!r} exists on the "
                f"embedded AWS, which is not running (in {where}). Run 'iotpipe up' first."
            )
        endpoint, started = lifecycle.ensure_running(where)
        if started and announce:
            announce(f"Started the embedded AWS at {endpoint} (stop it with: iotpipe local stop)")
        return Gateway(region=region, endpoint_url=endpoint, local=True, max_attempts=3)
    local = config.target == "local"
    return Gateway(
        region=region,
        profile=None if local else opts.profile,
        endpoint_url=opts.endpoint_url or None,
        local=local,
    )


def check_credentials(gateway: Gateway) -> dict[str, str]:
    """Who we are, or a :class:`UsageError` that says what to set."""
    try:
        return gateway.identity()
    except NoCredentialsError:
        raise UsageError(
            "No AWS credentials found. Set AWS_PROFILE (or pass --profile), or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run 'aws configure'; "
            "or use 'target: local' to run on the embedded AWS."
        ) from None
    except ProfileNotFound as exc:
        raise UsageError(f"{exc}. List profiles with 'aws configure list-profiles'.") from None
    except NoRegionError:
        raise UsageError("No AWS Region: set 'region' in the config or pass --region.") from None


@dataclass
class Deployment:
    """A config bound to a target, an account and a suffix: everything needed to name things.

    ``with`` it to release its lock (if the command took one) when the command is done.
    """

    config: Config
    gateway: Gateway
    names: Names
    state: State
    lock: DeploymentLock | None = field(default=None, repr=False)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


Discover = Callable[[Config, Gateway, dict[str, str]], list[str]]


def resolve(
    config: Config,
    gateway: Gateway,
    *,
    suffix: str | None = None,
    create_suffix: bool = False,
    discover: Discover | None = None,
    base: Path | None = None,
    lock: bool = False,
    on_wait: Callable[[str], None] | None = None,
    on_found: Callable[[str], None] | None = None,
    suffix_option: bool = False,
) -> Deployment:
    """Find the deployment's suffix: option, config, state, discovery, or a new one.

    Discovery (``discover``) runs only when the option, the config and the state are all
    silent, and before a new suffix is made: a lost state file must not turn ``plan`` or
    ``up`` into a second deployment. ``on_found`` hears that a suffix was recovered;
    ``suffix_option`` says the command has ``--suffix`` (for the "several found" error).

    ``lock`` holds the deployment's lock until the Deployment is released (``up``,
    ``down``); without it the lock is taken only to choose and record a suffix, so
    two commands never pick two suffixes.
    """
    ident = check_credentials(gateway)
    config = config.with_overrides(region=gateway.region)  # one region for everything
    who = Identity(config.name, config.target, gateway.region, ident["account"])
    base = base or home()
    guard = DeploymentLock(
        base / who.file_name(ext="lock"), f"{config.name} ({who.region})", on_wait=on_wait
    )
    if lock:
        guard.acquire()
    try:
        chosen, state = _choose(config, who, base, guard, suffix)
        if chosen is None and (discover is not None or create_suffix):
            finder = _Finder(config, gateway, ident, discover, on_found, suffix_option)
            chosen, state = _new_suffix(config, who, base, guard, finder, create_suffix)
        if chosen is None:
            raise NotDeployed(
                f"No deployment named {config.name!r} is known here (no {state.path}): "
                "run 'iotpipe up' first, or set 'suffix' in the config to use one "
                "created elsewhere."
            )
    except BaseException:
        guard.release()
        raise
    names = Names.of(config, chosen, ident["account"], ident["partition"], gateway.region)
    return Deployment(config, gateway, names, state, guard if lock else None)


def _choose(
    config: Config, who: Identity, base: Path, guard: DeploymentLock, suffix: str | None
) -> tuple[str | None, State]:
    """The suffix the option, the config or the state names (None: none of them does)."""
    state = State.for_identity(who, base)
    chosen = suffix or config.suffix or state.suffix
    if chosen is None:
        return None, state
    return chosen, _keep(config, who, base, guard, state, chosen)


def _keep(
    config: Config, who: Identity, base: Path, guard: DeploymentLock, state: State, chosen: str
) -> State:
    if state.suffix is not None and state.suffix != chosen:
        # Another deployment of the same name (--suffix, or the config's suffix changed):
        # its own cache file, so the one that knows the other suffix is never overwritten.
        state = State.for_identity(who, base, suffix=chosen)
    if not who.matches(state.data):
        # Cached ARNs of another target or account would mislead: keep only the suffix.
        state.data = {"resources": {}}
    if state.suffix is None:
        # Keep a given (or recovered) suffix at once: `plan` then `up` must name the same
        # resources, and an interrupted first `up` must be resumable.
        with _held(guard):
            state.set(suffix=chosen, name=config.name, **who.fields())
    return state


@dataclass(frozen=True)
class _Finder:
    """Discovery for one command: the suffix of the one deployment here, if there is one."""

    config: Config
    gateway: Gateway
    ident: dict[str, str]
    discover: Discover | None
    on_found: Callable[[str], None] | None
    suffix_option: bool

    def __call__(self) -> str | None:
        if self.discover is None:
            return None
        found = self.discover(self.config, self.gateway, self.ident)
        if len(found) > 1:
            how = "set 'suffix:' in the config" + (
                " or pass --suffix" if self.suffix_option else ""
            )
            raise UsageError(
                f"Several deployments named {self.config.name!r} exist in "
                f"{self.gateway.region} (suffixes: {', '.join(sorted(found))}) and no state "
                f"file here says which is this one: {how} to choose one."
            )
        if not found:
            return None
        if self.on_found is not None:
            self.on_found(
                f"Found deployment {self.config.name}-{found[0]} by its resources "
                "(no state file here): using it."
            )
        return found[0]


def _new_suffix(
    config: Config,
    who: Identity,
    base: Path,
    guard: DeploymentLock,
    find: Callable[[], str | None],
    create: bool,
) -> tuple[str | None, State]:
    """Choose a suffix once, under the lock: re-read the state (another run may have chosen
    one meanwhile), else the one deployment discovery finds, else (``create``) a new one."""
    with _held(guard):
        state = State.for_identity(who, base)
        if state.suffix is not None:
            return str(state.suffix), state
        chosen = find() or (new_suffix() if create else None)
        if chosen is None:
            return None, state
        return chosen, _keep(config, who, base, guard, state, chosen)


class _held:
    """The lock for a block, unless the caller already holds it for the whole command."""

    def __init__(self, guard: DeploymentLock) -> None:
        self.guard = guard
        self.mine = not guard.held

    def __enter__(self) -> None:
        if self.mine:
            self.guard.acquire()

    def __exit__(self, *exc: object) -> None:
        if self.mine:
            self.guard.release()
