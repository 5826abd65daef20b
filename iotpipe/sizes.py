"""Byte counts as people read them, one way everywhere (Athena's scans, disk use, `down`)."""

from __future__ import annotations

_UNITS = ("B", "KB", "MB", "GB", "TB")


def human_bytes(size: float) -> str:
    """``512 B``, ``3.4 MB``, ``1.2 TB`` (decimal units, as AWS bills them)."""
    value = float(size)
    for unit in _UNITS:
        if value < 1000 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} {_UNITS[-1]}"
