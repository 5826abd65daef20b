"""Errors a resource raises when AWS cannot do what the config asks, worded for people.

The engine prints ``str(exc)`` as is, so each message says what happened and what to do,
not which API call failed (that is kept in ``cause`` for ``--verbose``).
"""

from __future__ import annotations

from iotpipe.errors import IotpipeError

TIMESTREAM_CLOSED = (
    "Timestream for LiveAnalytics is closed to new customers since 2025-06-20; "
    "use `target: local` or an account that used it before."
)


class ServiceUnavailableError(IotpipeError):
    """The service refuses this account (not a bug in the config or in iotpipe)."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        detail = f" (AWS said: {cause})" if cause is not None else ""
        super().__init__(message + detail)
        self.cause = cause


class ResourceStateError(IotpipeError):
    """A resource reached a state it will not leave on its own (Failed, Disabled, ...)."""
