"""The Firehose transformation entry point: the lake branch's validate -> enrich -> row.

Handler string: `lambda_handler.transform.lambda_handler`, in the same zip as the Kinesis
handler, so both branches refuse and enrich a message with the very same code
(`validate.evaluate`) and cannot disagree about what is valid.

Every record of the event gets exactly one answer, with its own recordId:
- `Ok`: one flattened JSON row (`lakerow.row`: the valid measures, the enrichment) and
  `metadata.partitionKeys` from the **event** time, so Firehose's dynamic partitioning
  files it under the hour it describes. A message with some invalid measures is written
  with its valid ones; the refused measures are counted and logged.
- `ProcessingFailed`: the message is invalid. Its data is returned unchanged: Firehose
  writes it, base64, under the error prefix (`errors/processing-failed/`), so nothing is
  dropped. The reason is logged here (one WARNING line per message, capped) and counted
  in the EMF metrics; the error record itself carries only Firehose's generic error code,
  so `iotpipe query quality --store lake` recomputes reasons from the raw data with this
  same module's validation.
Never `Dropped`: dropping would make a message disappear without a trace.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import lakerow, notices, quarantine, report, validate
from . import settings as settings_module
from .decode import Item, MalformedEvent
from .model import Reading
from .quarantine import Entry
from .settings import Settings

OK = "Ok"
PROCESSING_FAILED = "ProcessingFailed"


@dataclass(slots=True)
class TransformResult:
    """One invocation: the records Firehose gets back, the accounting, the refusals."""

    records: list[dict[str, Any]]
    summary: report.BatchSummary
    entries: list[Entry] = field(default_factory=list)

    def response(self) -> dict[str, Any]:
        return {"records": self.records}


_settings: Settings | None = None
_clock: Callable[[], float] = time.time  # the container's clock; tests replace it


def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Thin shell: settings and clock from the container; the work in process()."""
    global _settings
    if _settings is None:
        _settings = settings_module.load()
    name = report.function_name_of(context, "iotpipe-transform")
    return process(event, _settings, clock=_clock, function_name=name).response()


def process(
    event: Any,
    settings: Settings,
    *,
    clock: Callable[[], float],
    log: report.Log | None = None,
    function_name: str = "iotpipe-transform",
) -> TransformResult:
    """Answer every record of one Firehose transformation event (see the module doc)."""
    log = log or report.Log()
    now_ms = int(clock() * 1000)
    items = _items(event, log)
    out: list[dict[str, Any]] = []
    entries: list[Entry] = []
    summary = report.BatchSummary(received=len(items))
    for item in items:
        result = validate.evaluate(item, settings, now_ms)
        if type(result) is Reading:
            out.append(_ok(item, result))
            summary.written += 1
            if result.rejected:
                first = next(iter(result.rejected.values()))
                entries.append(
                    quarantine.make_entry(
                        item, first, result.device_id, result.rejected, True, now_ms
                    )
                )
                summary.measures_rejected += len(result.rejected)
        else:
            out.append(
                {"recordId": item.sequence_number, "result": PROCESSING_FAILED, "data": item.data}
            )
            summary.quarantined += 1
            entries.append(
                quarantine.make_entry(
                    item, result.problem, result.device_id, result.rejected, False, now_ms
                )
            )
    summary.records_written = summary.written
    for entry in entries:
        summary.reasons[entry.reason] = summary.reasons.get(entry.reason, 0) + 1
    notices.log_quarantined(log, entries)
    log.info("transform_summary", **summary.fields())
    log.emit(report.dumps(report.emf(summary, function_name, now_ms)))
    for doc in report.reason_emf(summary, function_name, now_ms):
        log.emit(report.dumps(doc))
    return TransformResult(out, summary, entries)


def _ok(item: Item, reading: Reading) -> dict[str, Any]:
    line = json.dumps(lakerow.row(reading), separators=(",", ":"), ensure_ascii=False) + "\n"
    return {
        "recordId": item.sequence_number,
        "result": OK,
        "data": base64.b64encode(line.encode()).decode(),
        "metadata": {"partitionKeys": lakerow.partition_keys(reading.time_ms)},
    }


def _items(event: Any, log: report.Log) -> list[Item]:
    """The event's records as Items (recordId in place of a sequence number), or one
    ERROR line and MalformedEvent: answering for records never read would let Firehose
    count them delivered."""
    try:
        return items_of(event)
    except MalformedEvent as exc:
        message = (
            f"not a Firehose transformation event: {exc}. This function transforms records "
            "for an Amazon Data Firehose delivery stream; nothing was transformed"
        )
        log.error("malformed_event", error=message)
        raise MalformedEvent(message) from None


def items_of(event: Any) -> list[Item]:
    """``event["records"]`` as Items; MalformedEvent naming what is wrong otherwise."""
    if not isinstance(event, Mapping) or not isinstance(event.get("records"), list):
        raise MalformedEvent("the event has no records array")
    items = []
    for index, record in enumerate(event["records"]):
        where = f"records[{index}]"
        if not isinstance(record, Mapping):
            raise MalformedEvent(f"{where} is not an object")
        record_id, data = record.get("recordId"), record.get("data")
        if not isinstance(record_id, str) or not record_id:
            raise MalformedEvent(f"{where}.recordId is missing or not a string")
        if not isinstance(data, str):
            raise MalformedEvent(f"{where}.data is missing or not a base64 string")
        meta = record.get("kinesisRecordMetadata")
        meta = meta if isinstance(meta, Mapping) else {}
        items.append(
            Item(
                index,
                record_id,
                data,
                arrival=_seconds(record.get("approximateArrivalTimestamp")),
                partition_key=meta.get("partitionKey"),
                event_id=_event_id(meta),
            )
        )
    return items


def _seconds(epoch_ms: Any) -> float | None:
    """Firehose gives arrival in epoch milliseconds; the validation wants seconds."""
    if type(epoch_ms) in (int, float) and epoch_ms == epoch_ms:
        return float(epoch_ms) / 1000.0
    return None


def _event_id(meta: Mapping[str, Any]) -> str | None:
    """``<shardId>:<sequenceNumber>`` as a Kinesis event has it, for the log lines."""
    shard, seq = meta.get("shardId"), meta.get("sequenceNumber")
    return f"{shard}:{seq}" if isinstance(shard, str) and isinstance(seq, str) else None
