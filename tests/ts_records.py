"""Timestream records as a writer sends them, for the store's tests."""


def rec(dev: str, value: float, t: int, **extra: object) -> dict[str, object]:
    """One DOUBLE ``temperature`` record of device ``dev`` at ``t`` (epoch milliseconds)."""
    return {
        "Dimensions": [{"Name": "DeviceId", "Value": dev}],
        "MeasureName": "temperature",
        "MeasureValue": str(value),
        "MeasureValueType": "DOUBLE",
        "Time": str(t),
        **extra,
    }
