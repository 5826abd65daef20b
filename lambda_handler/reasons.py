"""The fixed vocabulary of quarantine reason codes.

Why a closed list: the quarantine queue is read by other tools (`iotpipe query quality`
groups by `reason`, dashboards alarm on it). A free-text reason would fragment those
groups, so every code the function can emit is declared here, and a test checks that
nothing outside this table is ever produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

# Decoding the Kinesis record.
NOT_BASE64 = "not_base64"
NOT_UTF8 = "not_utf8"
EMPTY = "empty"
TOO_LARGE = "too_large"
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
DUPLICATE_KEYS = "duplicate_keys"
# Identity.
MISSING_DEVICE_ID = "missing_device_id"
INVALID_DEVICE_ID = "invalid_device_id"
UNKNOWN_DEVICE = "unknown_device"
# Time.
INVALID_TIMESTAMP = "invalid_timestamp"
TIMESTAMP_IN_FUTURE = "timestamp_in_future"
TIMESTAMP_TOO_OLD = "timestamp_too_old"
# Measures (per measure, and for the message when none is left).
NOT_A_NUMBER = "not_a_number"
OUT_OF_RANGE = "out_of_range"
NO_VALID_MEASURES = "no_valid_measures"
# Timestream refused the record permanently (version conflict, retention, limits).
REJECTED_BY_TIMESTREAM = "rejected_by_timestream"

REASONS: dict[str, str] = {
    NOT_BASE64: "the Kinesis data field is not valid base64",
    NOT_UTF8: "the payload is not UTF-8 text",
    EMPTY: "the payload is empty or only whitespace",
    TOO_LARGE: "the payload is larger than 1 MiB",
    MALFORMED_JSON: "the payload is not valid JSON",
    NOT_AN_OBJECT: "the payload is JSON but not an object (array, number, string, ...)",
    DUPLICATE_KEYS: "a JSON object repeats a key, so its value is ambiguous",
    MISSING_DEVICE_ID: "deviceId is absent, null or the empty string",
    INVALID_DEVICE_ID: "deviceId is not a string of 1-128 characters [A-Za-z0-9_.:@-]",
    UNKNOWN_DEVICE: "deviceId is not in the registry and unknown_devices is 'quarantine'",
    INVALID_TIMESTAMP: "timestamp is present but not ISO-8601 with an offset or epoch s/ms",
    TIMESTAMP_IN_FUTURE: "the record time is more than 15 minutes ahead of now",
    TIMESTAMP_TOO_OLD: "the record time is older than the table accepts",
    NOT_A_NUMBER: "a measure is not a finite number (bool, NaN, Infinity, string, object)",
    OUT_OF_RANGE: "a measure is outside its configured range",
    NO_VALID_MEASURES: "the message carries none of the configured measures",
    REJECTED_BY_TIMESTREAM: "Timestream rejected the record (version, retention or limits)",
}


# final: nothing subclasses it, so `type(x) is Problem` narrows both branches for mypy.
@final
@dataclass(frozen=True, slots=True)
class Problem:
    """Why a message (or one measure of it) was not written.

    `reason` is a code from REASONS; `detail` is a human sentence for the operator;
    `measure` names the measure when the problem is one measure's value (the log line
    and `rejectedMeasures` are written per measure).
    """

    reason: str
    detail: str
    measure: str | None = None

    def text(self) -> str:
        """`reason: detail`, the form used in `rejectedMeasures`."""
        return f"{self.reason}: {self.detail}"
