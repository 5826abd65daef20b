"""``iotpipe query``: which store answers, and the one call the CLI and the demo make.

The questions and their SQL live with each store (``iotpipe/stores/``); this module picks
the deployment's store and hands it the preset, the raw SQL or ``quality``.
"""

from __future__ import annotations

from iotpipe.config import Config
from iotpipe.errors import UsageError
from iotpipe.stores.base import PRESETS as PRESETS
from iotpipe.stores.base import SQL_PRESET_NAMES, Result, Store
from iotpipe.stores.base import seconds as seconds
from iotpipe.stores.lake import LakeReader
from iotpipe.stores.timestream import TimestreamReader
from iotpipe.stores.timestream import run as run  # demo.count_rows reads with it
from iotpipe.target import Deployment

__all__ = [
    "PRESETS",
    "STORES",
    "Result",
    "enabled_stores",
    "query_deployment",
    "run",
    "seconds",
    "store_for",
]

STORES = ("timestream", "lake")
_ENABLED_KEY = {"timestream": "timestream.enabled", "lake": "lake.enabled"}


def enabled_stores(config: Config) -> tuple[str, ...]:
    """The stores this config turns on, in :data:`STORES` order (the default first)."""
    on = {"timestream": config.timestream.enabled, "lake": config.lake.enabled}
    return tuple(s for s in STORES if on[s])


def store_for(dep: Deployment, store: str | None = None) -> Store:
    """The store that answers: ``store`` if given, else Timestream when enabled, else the
    lake. Asking for a store the config turns off is a usage error naming its key."""
    enabled = enabled_stores(dep.config)
    if store is None:
        store = enabled[0] if enabled else "timestream"
    if store not in STORES:
        raise UsageError(f"Unknown store {store!r}; choose one of {', '.join(STORES)}.")
    if store not in enabled:
        raise UsageError(
            f"The {store} store is off in {dep.config.source} ({_ENABLED_KEY[store]}: false)"
            f": set {_ENABLED_KEY[store]}: true and run 'iotpipe up', or pick another --store."
        )
    return TimestreamReader(dep) if store == "timestream" else LakeReader(dep)


def query_deployment(
    dep: Deployment,
    *,
    preset_name: str | None = None,
    sql: str | None = None,
    since: str = "1h",
    device: str | None = None,
    limit: int = 10,
    store: str | None = None,
) -> Result:
    """A preset or raw SQL against this deployment's store (see :func:`store_for`)."""
    seconds(since)  # validate before any call
    if sql is not None:
        if not sql.strip():
            raise UsageError(
                '--sql needs a query, e.g. --sql \'SELECT * FROM "db"."table" LIMIT 10\'.'
            )
        return store_for(dep, store).user_sql(sql)
    if preset_name == "quality":
        return store_for(dep, store).quality(since=since, device=device)
    if preset_name not in SQL_PRESET_NAMES:
        raise UsageError(f"Unknown preset {preset_name!r}; choose one of {', '.join(PRESETS)}.")
    return store_for(dep, store).preset(preset_name, since=since, device=device, limit=limit)
