"""The lake's transform function and its log group: the processor's kinds, renamed.

Firehose calls the transform with batches of stream records and writes what it answers
(``lambda_handler/transform.py``: one flat JSON row per valid message, partition keys from
the event time, ``ProcessingFailed`` for the rest). It is the same zip as the processor
(one package, one SHA-256) with another entry point, its own role (logs only) and its own
log group, so the two functions never share permissions or logs.

Firehose invokes synchronously and allows at most 5 minutes; a batch of at most
``BufferSizeInMBs`` (1 MB) is a fraction of a second of work, so 60 s is ample and a
stuck call fails well before Firehose gives up on it.
"""

from __future__ import annotations

from iotpipe import lakepolicies
from iotpipe.resources.base import Context, Discovery, Grant
from iotpipe.resources.function import Function, lambda_health, list_functions
from iotpipe.resources.lakeroles import lake_enabled
from iotpipe.resources.logs import LogGroup, list_log_groups
from iotpipe.verdict import Check

TRANSFORM_HANDLER = "lambda_handler.transform.lambda_handler"
TRANSFORM_TIMEOUT_S = 60


def transform_health(ctx: Context) -> Check:
    return lambda_health(ctx, ctx.names.transform_function, "Transform function")


class TransformLogGroup(LogGroup):
    """CloudWatch Logs group ``/aws/lambda/<transform>`` (the rejections' reasons)."""

    key = "transform_log_group"
    label = "CloudWatch log group (transform)"
    discovery = (Discovery(lambda n: n.transform_log_group, list_log_groups),)
    grants = (Grant("transform_role", lakepolicies.write_transform_logs),)
    names_attr = "transform_log_group"

    def enabled(self) -> bool:
        return lake_enabled(self.ctx)


class TransformFunction(Function):
    """Lambda function ``<name>-transform-<suffix>``, Firehose's record processor."""

    key = "transform"
    label = "Lambda function (transform)"
    depends_on = ("transform_role", "transform_log_group")
    discovery = (Discovery(lambda n: n.transform_function, list_functions),)
    health = (transform_health,)
    names_attr = "transform_function"
    role_attr = "transform_role"
    log_group_attr = "transform_log_group"
    handler_path = TRANSFORM_HANDLER
    purpose = "the lake's Firehose transform"

    def enabled(self) -> bool:
        return lake_enabled(self.ctx)

    def timeout_s(self) -> int:
        return TRANSFORM_TIMEOUT_S

    def environment(self) -> dict[str, str]:
        """Nothing: its settings are the package's, and it writes no store itself."""
        return {}
