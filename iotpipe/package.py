"""The Lambda deployment package: a deterministic zip of ``lambda_handler/`` + settings.

Deterministic (sorted entries, fixed timestamps and permissions) so that the same config and
code always give the same CodeSha256: that is how ``plan`` knows the code is unchanged and how
``verify`` knows the deployed function is the one in this checkout.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import lambda_handler
from iotpipe.config import Config

HANDLER = "lambda_handler.handler.lambda_handler"
PACKAGE_DIR = Path(lambda_handler.__file__).resolve().parent
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def settings_from_config(config: Config) -> dict[str, Any]:
    """The function's ``settings.json`` (format: lambda_handler/SETTINGS.md)."""
    ts = config.timestream
    return {
        "version": 1,
        "record_model": ts.record_model,
        "sensors": {
            name: {"min": r.min, "max": r.max, "inclusive": r.inclusive}
            for name, r in sorted(config.sensors.items())
        },
        "devices": {
            dev_id: {
                **({"location": d.location} if d.location else {}),
                **({"device_type": d.device_type} if d.device_type else {}),
                **dict(sorted(d.attributes.items())),
            }
            for dev_id, d in sorted(config.devices.items())
        },
        "unknown_devices": config.validation.unknown_devices,
        "numeric_strings": config.validation.numeric_strings,
        "defaults": {"location": "unknown", "device_type": "unknown"},
        "memory_retention_hours": ts.memory_retention_hours,
        "magnetic_writes": ts.magnetic_writes,
        # The table's magnetic retention: older records are quarantined by the function
        # (timestamp_too_old) rather than sent to a certain RejectedRecords.
        "magnetic_retention_days": ts.magnetic_retention_days,
    }


def _source_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix in {".py", ".md"}
        and "__pycache__" not in p.parts
        and p.name != "settings.json"
    )


def _add(zf: zipfile.ZipFile, arcname: str, data: bytes) -> None:
    info = zipfile.ZipInfo(arcname, date_time=_FIXED_TIME)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def build_function_zip(settings: dict[str, Any] | None, root: Path = PACKAGE_DIR) -> bytes:
    """Zip ``lambda_handler/`` (as a package, so relative imports work) plus settings.json."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        entries = {
            f"lambda_handler/{p.relative_to(root).as_posix()}": p.read_bytes()
            for p in _source_files(root)
        }
        if settings is not None:
            entries["lambda_handler/settings.json"] = (
                json.dumps(settings, indent=1, sort_keys=True) + "\n"
            ).encode()
        for arcname in sorted(entries):
            _add(zf, arcname, entries[arcname])
    return buf.getvalue()
