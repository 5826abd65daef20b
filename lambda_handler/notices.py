"""One log line per quarantined message, in words, and at most MAX_LINES per invocation.

Why: the quarantine queue holds the data, but operators search the logs first - the
recipe's own check is `aws logs filter-log-events --filter-pattern "Temperature out of
range"`. So each quarantined message gets one JSON line whose `msg` is a sentence in the
recipe's wording, naming the device, the measure, the value and the allowed range:

    Temperature out of range: 415.98 not in (-50, 150) (device sensor001)

A line never carries the payload (that stays in the queue), and is cut at MAX_TEXT
characters. Why a cap: a batch of 10,000 bad messages must not write 10,000 lines; after
MAX_LINES one line says how many more there were (the counts per reason are in the
batch summary and its metrics either way).
"""

from __future__ import annotations

from collections.abc import Iterable

from . import reasons
from .quarantine import Entry
from .reasons import Problem
from .report import Log
from .text import clip

MAX_LINES = 100  # per invocation
MAX_TEXT = 600  # characters of one sentence
_MAX_CLAUSE = 200
_MAX_DEVICE = 128


def log_quarantined(log: Log, entries: Iterable[Entry], limit: int = MAX_LINES) -> int:
    """WARNING lines for the first `limit` entries, then one `and N more` line.

    Returns the number of entries logged one by one.
    """
    logged = more = 0
    for entry in entries:
        if logged < limit:
            log.warning(sentence(entry), **fields(entry))
            logged += 1
        else:
            more += 1
    if more:
        log.warning(
            f"and {more} more quarantined messages in this batch, not logged one by one "
            f"(at most {limit} per invocation; counts in batch_summary)",
            more=more,
        )
    return logged


def sentence(entry: Entry) -> str:
    """What was refused and why, per measure where the problem is a measure's."""
    parts: list[str] = []
    grouped: dict[Problem, list[str]] = {}
    for name, problem in entry.rejected.items():
        clause = _measure_clause(name, problem)
        if clause is None:  # e.g. Timestream refused the record: one clause per problem
            grouped.setdefault(problem, []).append(name)
        else:
            parts.append(clip(clause, _MAX_CLAUSE))
    for problem, names in grouped.items():
        words = problem.reason.replace("_", " ")
        parts.append(clip(f"{_title(words)} ({', '.join(names)}): {problem.detail}", _MAX_CLAUSE))
    if not parts:
        parts.append(
            clip(f"Quarantined {entry.problem.reason}: {entry.problem.detail}", _MAX_CLAUSE)
        )
    device = entry.doc.get("deviceId")
    shown = clip(device, _MAX_DEVICE) if isinstance(device, str) and device else "unknown"
    tail = f" (device {shown}{'; its other measures were written' if entry.doc['partial'] else ''})"
    return clip("; ".join(parts), MAX_TEXT - len(tail)) + tail


def fields(entry: Entry) -> dict[str, object]:
    """The structured part of the line: enough to find the message in the queue."""
    doc = entry.doc
    return {
        "reason": entry.reason,
        "deviceId": doc.get("deviceId"),
        "measures": sorted(entry.rejected) or None,
        "partial": doc["partial"],
        "shardId": doc.get("shardId"),
        "sequenceNumber": doc.get("sequenceNumber"),
    }


def _measure_clause(name: str, problem: Problem) -> str | None:
    """`Temperature out of range: 415.98 not in (-50, 150)` - the recipe's wording."""
    if problem.reason == reasons.OUT_OF_RANGE:
        return f"{_title(name)} out of range: {problem.detail.removeprefix(name + ' ')}"
    if problem.reason == reasons.NOT_A_NUMBER:
        return f"{_title(name)} is not a number: {problem.detail.removeprefix(name + ': ')}"
    return None


def _title(name: str) -> str:
    """First letter upper case, the rest kept (`temperature` -> `Temperature`, `co2_ppm` -> `Co2_ppm`)."""
    return name[:1].upper() + name[1:]
