"""moto's server dispatch, made cheap: the backend app that answers a request, cached.

moto's `DomainDispatcherApplication` finds the service of every request from its Host and
path by listing its own package directory (~180 stat calls a request). The answer for a
host never changes while the server runs, so it is cached (bounded: the guard already
refuses foreign Hosts, but a cache must not grow on input).

And moto's `BaseModel` appends every model instance it ever makes to a list on its class
(``instances_tracked``, read only by moto's dashboard and by S3's reset), so a running
emulator kept every Kinesis record ever read, SQS message, log event and S3 key: 200,000
messages cost ~140 MB that nothing used. Instances are made untracked here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iotpipe.local import motointernals as moto
from iotpipe.local import motointernals_state
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


@SERVER.patch(motointernals_state.BaseModel, "__new__")
def base_model_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    """A model instance, not remembered by its class (moto's dashboard is not served)."""
    return object.__new__(cls)
