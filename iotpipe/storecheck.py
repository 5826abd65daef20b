"""Before any change on AWS: can this account use the store the config asks for?

Timestream for LiveAnalytics takes no new customers since 2025-06-20: a new account is
refused on every call with "Only existing Timestream for LiveAnalytics customers can
access the service" (REFERENCE.md part 3). Found by ``up`` at the Timestream step, that
refusal would come after the queue, the stream and the roles were made; asked here with
one read call before the plan, it stops the command with nothing changed and says what
to set instead. Not for the embedded AWS (it has Timestream), and only when the config
would create a Timestream resource.

Only that answer stops the command: any other error of the read (no
``timestream:ListDatabases`` permission, a throttle) is left to the step that needs the
service, where it is reported with its resource.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from botocore.exceptions import ClientError

from iotpipe.aws import error_code, error_message
from iotpipe.errors import UsageError
from iotpipe.resources.base import Context, Resource
from iotpipe.resources.timeseries import Timestream

# What LiveAnalytics answers an account it does not serve.
CLOSED_TEXT = "only existing timestream for liveanalytics customers"
CLOSED_CODES = frozenset({"AccessDeniedException", "SubscriptionRequiredException"})
ADVICE = (
    "This account cannot use Timestream for LiveAnalytics (closed to new customers since "
    "2025-06-20). Set `timestream.enabled: false` and `lake.enabled: true` in the config: "
    "the lake (Firehose -> S3 Parquet -> Glue -> Athena) stores and answers the same "
    "queries. Nothing was changed."
)


class StoreUnavailableError(UsageError):
    """The configured store refuses this account: exit 2, nothing changed."""

    def __init__(self, cause: ClientError) -> None:
        super().__init__(f"{ADVICE} (AWS said: {error_code(cause)}: {error_message(cause)})")
        self.cause = cause


def closed(exc: ClientError) -> bool:
    """Is this LiveAnalytics' refusal of the account (not an IAM mistake of ours)?"""
    code = error_code(exc)
    if code == "SubscriptionRequiredException":
        return True
    return code in CLOSED_CODES and CLOSED_TEXT in error_message(exc).lower()


def check_timestream(ctx: Context, resources: Iterable[Resource]) -> None:
    """One read call when an enabled Timestream kind is about to be planned on AWS."""
    if ctx.gateway.local:
        return
    if not any(isinstance(r, Timestream) and r.enabled() for r in resources):
        return
    try:
        # ListDatabases also runs the endpoint discovery every Timestream call needs.
        ctx.client("timestream-write").list_databases(MaxResults=1)
    except ClientError as exc:
        if closed(exc):
            raise StoreUnavailableError(exc) from exc


def before_change(
    ctx: Context, resources: Iterable[Resource], *checks: Callable[[Context], None]
) -> None:
    """The engine's checks before a plan (``checks``: its legacy refusal), then the
    store's: each raises a UsageError (exit 2) when the command must not go on."""
    for check in checks:
        check(ctx)
    check_timestream(ctx, list(resources))
