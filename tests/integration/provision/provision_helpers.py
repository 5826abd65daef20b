"""Helpers for the provisioning tests: a call log and deployments on a moto endpoint."""

from __future__ import annotations

from typing import Any

from iotpipe.aws import Gateway
from iotpipe.config import Config
from iotpipe.target import Deployment, resolve

READ_PREFIXES = ("Describe", "Get", "List")


class CallLog:
    """Every AWS call made through a gateway, via botocore's before-call event."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail_at: tuple[str, str] | None = None

    def attach(self, client: Any) -> None:
        service = client.meta.service_model.service_name

        def before_call(model: Any, **_: Any) -> None:
            call = (service, model.name)
            self.calls.append(call)
            if self.fail_at == call:
                self.fail_at = None
                raise RuntimeError(f"injected failure at {service} {model.name}")

        client.meta.events.register("before-call", before_call)

    @property
    def mutating(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if not c[1].startswith(READ_PREFIXES)]


def make_deployment(config: Config, endpoint: str | None, log: CallLog | None = None) -> Deployment:
    gateway = Gateway(region=config.region, endpoint_url=endpoint, local=True)
    if log is not None:
        gateway.hooks.append(log.attach)
    return resolve(config, gateway, create_suffix=True)


def aws_config(**overrides: Any) -> Config:
    """target aws (so nothing starts the embedded AWS); the endpoint decides where calls go."""
    return Config(target="aws").with_overrides(**overrides)
