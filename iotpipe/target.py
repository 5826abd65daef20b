"""Where a command's AWS calls go, and which deployment (suffix) they are about.

``target: local`` means the embedded AWS: started on demand, fake credentials, its endpoint.
``target: aws`` means boto3's usual resolution (profile, env, ``AWS_ENDPOINT_URL``), with
``--endpoint-url`` winning, which is also how iotpipe is tested against a moto server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import NoCredentialsError, NoRegionError, ProfileNotFound

from iotpipe.aws import Gateway
from iotpipe.config import Config
from iotpipe.errors import UsageError
from iotpipe.naming import Names, new_suffix
from iotpipe.state import State, home


@dataclass(frozen=True)
class TargetOptions:
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None


def make_gateway(
    config: Config, opts: TargetOptions, announce: Callable[[str], None] | None = None
) -> Gateway:
    """A gateway for the config's target; starts the embedded AWS if it is the target."""
    region = opts.region or config.region
    if config.target == "local" and not opts.endpoint_url:
        from iotpipe.local.lifecycle import ensure_running

        endpoint, started = ensure_running(home())
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


class NotDeployed(UsageError):
    """No suffix is known and none was found: there is no such deployment here."""


@dataclass
class Deployment:
    """A config bound to a target, an account and a suffix: everything needed to name things."""

    config: Config
    gateway: Gateway
    names: Names
    state: State


def resolve(
    config: Config,
    gateway: Gateway,
    *,
    suffix: str | None = None,
    create_suffix: bool = False,
    discover: Callable[[Config, Gateway, dict[str, str]], list[str]] | None = None,
) -> Deployment:
    """Find the deployment's suffix: option, config, state, discovery, or a new one."""
    ident = check_credentials(gateway)
    state = State.for_deployment(config.name)
    chosen = suffix or config.suffix or state.suffix
    if chosen is None and discover is not None:
        found = discover(config, gateway, ident)
        if len(found) > 1:
            raise UsageError(
                f"Several deployments named {config.name!r} exist (suffixes: "
                f"{', '.join(sorted(found))}); choose one with --suffix."
            )
        chosen = found[0] if found else None
    if chosen is None:
        if not create_suffix:
            raise NotDeployed(
                f"No deployment named {config.name!r} is known here (no {state.path}): "
                "run 'iotpipe up' first, or set 'suffix' in the config to use one "
                "created elsewhere."
            )
        chosen = new_suffix()
    if state.suffix is not None and state.suffix != chosen:
        # Another deployment of the same name (--suffix, or the config's suffix changed):
        # its own cache file, so the one that knows the other suffix is never overwritten.
        state = State(state.path.with_name(f"{config.name}-{chosen}.json"))
    here = {"target": config.target, "region": gateway.region, "account": ident["account"]}
    if any(state.data.get(k) != v for k, v in here.items()):
        # Cached ARNs of another target or account would mislead: keep only the suffix.
        state.data = {"resources": {}}
    if state.suffix is None:
        # Keep a generated (or recovered) suffix at once: `plan` then `up` must name the
        # same resources, and an interrupted first `up` must be resumable.
        state.set(suffix=chosen, name=config.name, **here)
    names = Names.of(config, chosen, ident["account"], ident["partition"])
    return Deployment(config, gateway, names, state)
