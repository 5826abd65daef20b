"""UpdateWorkGroup, which moto lacks: `up` changes a workgroup's cutoff or output in place.

Without it, changing ``lake.scan_limit_gb`` on the embedded AWS would fail with moto's
"not implemented" while it works on AWS. The update follows the API's shape
(``ConfigurationUpdates``, with ``Remove*`` flags that clear a setting) over moto's stored
configuration, which GetWorkGroup then reports.
"""

from __future__ import annotations

from typing import Any

# ConfigurationUpdates keys copied as they are, and the Remove* flag that clears each.
_PLAIN = (
    "EnforceWorkGroupConfiguration",
    "PublishCloudWatchMetricsEnabled",
    "RequesterPaysEnabled",
    "EngineVersion",
    "BytesScannedCutoffPerQuery",
)
_REMOVALS = {"RemoveBytesScannedCutoffPerQuery": "BytesScannedCutoffPerQuery"}
_RESULT_REMOVALS = {
    "RemoveOutputLocation": "OutputLocation",
    "RemoveEncryptionConfiguration": "EncryptionConfiguration",
    "RemoveExpectedBucketOwner": "ExpectedBucketOwner",
    "RemoveAclConfiguration": "AclConfiguration",
}


def updated(configuration: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """The configuration after ``ConfigurationUpdates`` (pure; the input is not changed)."""
    out = dict(configuration)
    for key in _PLAIN:
        if key in updates:
            out[key] = updates[key]
    for flag, key in _REMOVALS.items():
        if updates.get(flag):
            out.pop(key, None)
    result_updates = updates.get("ResultConfigurationUpdates") or {}
    if result_updates:
        result = dict(out.get("ResultConfiguration") or {})
        for key, value in result_updates.items():
            if key in _RESULT_REMOVALS:
                if value:
                    result.pop(_RESULT_REMOVALS[key], None)
            else:
                result[key] = value
        out["ResultConfiguration"] = result
    return out
