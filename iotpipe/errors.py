"""The two kinds of failure every command reports the same way (see ``cli/app.py``)."""


class IotpipeError(Exception):
    """An operation failed and the message says why and what to do: exit 1."""


class UsageError(Exception):
    """Bad usage or environment (no credentials, unknown suffix): exit 2, nothing touched."""
