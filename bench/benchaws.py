"""What the bench scripts share: the Timestream table every bench function writes to."""

from __future__ import annotations

from typing import Any


def create_timestream_table(tw: Any, database: str, table: str) -> None:
    """A database and table with a day of memory store (bench rows are always recent)."""
    tw.create_database(DatabaseName=database)
    tw.create_table(
        DatabaseName=database,
        TableName=table,
        RetentionProperties={
            "MemoryStoreRetentionPeriodInHours": 24,
            "MagneticStoreRetentionPeriodInDays": 7,
        },
    )
