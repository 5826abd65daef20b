"""``iotpipe query``: which store answers, and the one call the CLI and the demo make.

The questions and their SQL live with each store (``iotpipe/stores/``); this module picks
the deployment's store and hands it the preset, the raw SQL or ``quality``.
"""

from __future__ import annotations

from iotpipe.errors import UsageError
from iotpipe.stores.base import PRESETS as PRESETS
from iotpipe.stores.base import SQL_PRESET_NAMES, Result, Store
from iotpipe.stores.base import seconds as seconds
from iotpipe.stores.timestream import TimestreamReader
from iotpipe.stores.timestream import run as run  # demo.count_rows reads with it
from iotpipe.target import Deployment

__all__ = ["PRESETS", "Result", "query_deployment", "run", "seconds", "store_for"]


def store_for(dep: Deployment) -> Store:
    """The store that answers for this deployment (the lake joins here)."""
    return TimestreamReader(dep)


def query_deployment(
    dep: Deployment,
    *,
    preset_name: str | None = None,
    sql: str | None = None,
    since: str = "1h",
    device: str | None = None,
    limit: int = 10,
) -> Result:
    """A preset or raw SQL against this deployment's table (or, for quality, its queue)."""
    seconds(since)  # validate before any call
    if sql is not None:
        if not sql.strip():
            raise UsageError(
                '--sql needs a query, e.g. --sql \'SELECT * FROM "db"."table" LIMIT 10\'.'
            )
        return store_for(dep).user_sql(sql)
    if preset_name == "quality":
        return store_for(dep).quality(since=since, device=device)
    if preset_name not in SQL_PRESET_NAMES:
        raise UsageError(f"Unknown preset {preset_name!r}; choose one of {', '.join(PRESETS)}.")
    return store_for(dep).preset(preset_name, since=since, device=device, limit=limit)
