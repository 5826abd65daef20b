"""What the embedded AWS holds right now, for ``local status`` and for ``local stop``.

It saves what it holds under ``<home>/data/`` (`durable`), so a stop loses nothing; run
``--ephemeral`` it keeps everything in memory and a stop loses every resource and record
in it. ``iotpipe local stop`` of an ephemeral emulator therefore asks first when there is
anything to lose, and this is how it knows (counters such as ``records_put`` count what
flowed through, not what is still there). Reads moto's backends in place
(`motointernals`), as the rest of status does.
"""

from __future__ import annotations

from iotpipe.local.runtime import RUNTIME


def held() -> dict[str, int]:
    """Counts of what it holds (what a stop of an ephemeral one loses): resources by kind,
    and the data in them."""
    # Deferred: it imports moto (half a second), and the CLI imports this module for
    # `describe` only; `held` runs in the emulator.
    from iotpipe.local import motointernals as moto
    from iotpipe.local import motointernals_lake as lake

    streams = moto.all_streams()
    buckets, objects = lake.bucket_totals()
    queues = moto.all_queues()
    return {
        "streams": len(streams),
        "stream_records": sum(
            len(moto.shard_records(sh)) for s in streams for sh in moto.shards(s)
        ),
        "functions": len(moto.all_latest_functions()),
        "timestream_tables": moto.timestream_table_count(),
        "timestream_rows": RUNTIME.store.row_count(),
        "queues": len(queues),
        "queued_messages": sum(moto.queued(q) for q in queues),
        "iot_rules": len(moto.all_topic_rules()),
        "iam_roles": moto.iam_role_count(),
        "buckets": buckets,
        "objects": objects,
        "delivery_streams": len(lake.all_delivery_streams()),
    }


def anything(counts: dict[str, int]) -> bool:
    return any(counts.values())


def describe(counts: dict[str, int]) -> str:
    """``3 streams (2,000 records), 1 table (1,952 rows), ...``: only what is there."""
    parts = [
        _n(counts.get("streams", 0), "stream", counts.get("stream_records", 0), "record"),
        _n(
            counts.get("timestream_tables", 0),
            "Timestream table",
            counts.get("timestream_rows", 0),
            "row",
        ),
        _n(counts.get("queues", 0), "queue", counts.get("queued_messages", 0), "message"),
        _n(counts.get("buckets", 0), "S3 bucket", counts.get("objects", 0), "object"),
        _n(counts.get("delivery_streams", 0), "Firehose delivery stream"),
        _n(counts.get("functions", 0), "function"),
        _n(counts.get("iot_rules", 0), "IoT rule"),
        _n(counts.get("iam_roles", 0), "IAM role"),
    ]
    return ", ".join(p for p in parts if p) or "nothing"


def _n(count: int, what: str, inner: int = 0, inner_what: str = "") -> str:
    if not count:
        return ""
    text = f"{count:,} {what}{'s' if count != 1 else ''}"
    if inner_what:
        text += f" ({inner:,} {inner_what}{'s' if inner != 1 else ''})"
    return text
