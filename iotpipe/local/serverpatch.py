"""moto's server dispatch, made cheap: the backend app that answers a request, cached.

moto's `DomainDispatcherApplication` finds the service of every request from its Host and
path by listing its own package directory (~180 stat calls a request). The answer for a
host never changes while the server runs, so it is cached (bounded: the guard already
refuses foreign Hosts, but a cache must not grow on input).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iotpipe.local import motointernals as moto
from iotpipe.local.patching import service

SERVER = service("server")
MAX_HOSTS = 512
_HOSTS: dict[str | None, Any] = {}


@SERVER.patch(moto.DomainDispatcherApplication, "get_backend_for_host", pass_original=True)
def get_backend_for_host(original: Callable[..., Any], self: Any, host: str | None) -> Any:
    if host in _HOSTS:
        return _HOSTS[host]
    found = original(self, host)
    if len(_HOSTS) < MAX_HOSTS:
        _HOSTS[host] = found
    return found
