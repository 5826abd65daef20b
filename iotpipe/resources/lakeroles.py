"""The lake's two IAM roles: the transform function's and the delivery stream's.

Each is a :class:`~iotpipe.resources.roles._Role` (one role, one inline policy built from
the grants of the enabled kinds), so the lake's roles are written, compared and deleted
exactly as the pipeline's are. Like those they depend on nothing (every ARN they grant is
derived from names), so ``up`` creates them first and IAM propagates while the bucket,
the table and the function are made. Only with ``lake.enabled``.
"""

from __future__ import annotations

from typing import Any

from iotpipe import lakepolicies
from iotpipe.resources.base import Context, Discovery
from iotpipe.resources.roles import _Role, list_roles


def lake_enabled(ctx: Context) -> bool:
    """The lake is optional; every lake kind asks here."""
    return bool(ctx.config.lake.enabled)


class _LakeRole(_Role):
    """A role only the lake uses: it exists only with ``lake.enabled``."""

    health = ()  # "configured" compares its trust and policy documents

    def enabled(self) -> bool:
        return lake_enabled(self.ctx)


class TransformRole(_LakeRole):
    """Execution role of the transform: write its own log group, nothing else."""

    key = "transform_role"
    label = "IAM role (transform)"
    discovery = (Discovery(lambda n: n.transform_role, list_roles, narrow=False),)
    role_attr = "transform_role"
    purpose = "execution role of the lake's transform function"

    def trust(self) -> dict[str, Any]:
        return lakepolicies.transform_trust(self.ctx.names)


class FirehoseRole(_LakeRole):
    """The role the delivery stream reads the stream, calls the transform, reads the Glue
    table and writes the bucket with (its grants: ``resources/delivery.py``)."""

    key = "firehose_role"
    label = "IAM role (Firehose)"
    discovery = (Discovery(lambda n: n.firehose_role, list_roles, narrow=False),)
    role_attr = "firehose_role"
    purpose = "role of the lake's Firehose delivery stream"

    def trust(self) -> dict[str, Any]:
        return lakepolicies.firehose_trust(self.ctx.names)
