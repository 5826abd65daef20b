"""What the embedded AWS holds right now, for ``local status`` and for ``local stop``.

The emulator keeps everything in memory: stopping it loses every resource and record in
it. ``iotpipe local stop`` therefore asks first when there is anything to lose, and this
is how it knows (counters such as ``records_put`` count what flowed through, not what is
still there). Reads moto's backends in place, like the rest of the emulator's status.
"""

from __future__ import annotations

from typing import Any


def held() -> dict[str, int]:
    """Counts of what a stop would lose: resources by kind, and the data in them.

    Runs in the emulator; its imports are here, not at the top, because the CLI imports
    this module for :func:`describe` and must not load the emulator's pollers at start-up.
    """
    from moto.awslambda.models import lambda_backends
    from moto.iam.models import iam_backends
    from moto.iot.models import iot_backends
    from moto.kinesis.models import kinesis_backends
    from moto.sqs.models import sqs_backends

    from iotpipe.local.esm import all_backends, latest_functions
    from iotpipe.local.runtime import RUNTIME

    streams = [s for _, _, b in all_backends(kinesis_backends) for s in list(b.streams.values())]
    queues = [q for _, _, b in all_backends(sqs_backends) for q in list(b.queues.values())]
    return {
        "streams": len(streams),
        "stream_records": sum(len(sh.records) for s in streams for sh in list(s.shards.values())),
        "functions": sum(len(latest_functions(b)) for _, _, b in all_backends(lambda_backends)),
        "timestream_tables": _table_count(),
        "timestream_rows": RUNTIME.store.row_count(),
        "queues": len(queues),
        "queued_messages": sum(len(q._messages) for q in queues),
        "iot_rules": sum(len(b.rules) for _, _, b in all_backends(iot_backends)),
        "iam_roles": sum(len(b.roles) for _, b in _global(iam_backends)),
    }


def _table_count() -> int:
    from moto.timestreamwrite.models import timestreamwrite_backends

    from iotpipe.local.esm import all_backends

    return sum(
        len(db.tables)
        for _, _, b in all_backends(timestreamwrite_backends)
        for db in list(b.databases.values())
    )


def _global(backend_dict: Any) -> list[tuple[str, Any]]:
    """IAM is global: moto keeps one backend per account under the "global" region."""
    return [(account, regions["global"]) for account, regions in list(backend_dict.items())]


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
