"""Every resource name and ARN, derived from the config and the deployment suffix.

Pure functions of (config, suffix, account, partition, region): this is what makes the state
file a cache rather than the truth. ``down`` can rebuild every name without it, and roles can
be written before the resources they grant access to exist.

Each name is stated once, here, and a resource kind points at its own (``Resource.name``,
``Discovery.name``): discovery learns a kind's prefix by naming it with a marker suffix, so
no pattern is written twice. The kinds do not own the patterns outright because these
names are shared vocabulary (the rule names the stream, the policies name every ARN, the
exercise side reads the table), and a value object that imported the provisioning modules
would make every user of a name import boto3's resource code, in a cycle through
``resources.base``. A new kind uses :meth:`Names.named` and :meth:`Names.arn` from its
own module, and needs no line here.

The region is the command's one effective region (``--region`` or the config's), never the
config's alone. IAM is global, so role names carry the region: a deployment with the same
name and suffix in another region never shares (or deletes) a role with this one.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from iotpipe.config import Config

TAG_KEY = "iotpipe:deployment"
_ALPHABET = string.ascii_lowercase + string.digits


def new_suffix() -> str:
    """Six random characters, like the recipe's RANDOM_SUFFIX but without an API call."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(6))


@dataclass(frozen=True)
class Names:
    """Names and ARNs of one deployment. ``account``/``partition`` come from STS."""

    name: str
    suffix: str
    region: str
    account: str
    partition: str
    table: str

    @classmethod
    def of(
        cls,
        config: Config,
        suffix: str,
        account: str,
        partition: str = "aws",
        region: str | None = None,
    ) -> Names:
        """``region`` is the effective one (the gateway's); the config's only by default."""
        where = region or config.region
        return cls(config.name, suffix, where, account, partition, config.timestream.table)

    @property
    def deployment(self) -> str:
        return f"{self.name}-{self.suffix}"

    def named(self, kind: str) -> str:
        """``<name>-<kind>-<suffix>``: the pattern of most names (and of a new kind's)."""
        return f"{self.name}-{kind}-{self.suffix}"

    # --- names --------------------------------------------------------------------------
    @property
    def stream(self) -> str:
        return self.named("stream")

    @property
    def database(self) -> str:
        return self.named("db")

    @property
    def function(self) -> str:
        return self.named("processor")

    @property
    def function_role(self) -> str:
        return self.named(f"fn-role-{self.region}")

    @property
    def rule_role(self) -> str:
        return self.named(f"rule-role-{self.region}")

    def retired_roles(self) -> tuple[str, str]:
        """Role names before they carried the region: ``up`` and ``down`` remove them."""
        return self.named("fn-role"), self.named("rule-role")

    @property
    def queue(self) -> str:
        return self.named("failures")

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.function}"

    @property
    def rule(self) -> str:
        """IoT rule names allow only [A-Za-z0-9_]."""
        return f"{self.name}_rule_{self.suffix}".replace("-", "_")

    # --- the lake (see iotpipe.lakeschema for its layout) -------------------------------
    @property
    def bucket(self) -> str:
        """S3 names are global across accounts: ``<name>-<suffix>-<account>-<region>``
        (at most 24 + 8 + 12 + 14 + 3 = 61 of S3's 63 characters)."""
        return f"{self.name}-{self.suffix}-{self.account}-{self.region}"

    @property
    def bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket}"

    @property
    def lake_database(self) -> str:
        """Glue and Athena want lower case and underscores (a hyphen needs quoting)."""
        return f"{self.name}_lake_{self.suffix}".replace("-", "_")

    @property
    def lake_table(self) -> str:
        return "telemetry"

    @property
    def delivery_stream(self) -> str:
        return self.named("lake")

    @property
    def delivery_stream_arn(self) -> str:
        return self.arn("firehose", f"deliverystream/{self.delivery_stream}")

    @property
    def transform_function(self) -> str:
        return self.named("transform")

    @property
    def transform_function_arn(self) -> str:
        return self.arn("lambda", f"function:{self.transform_function}")

    @property
    def transform_log_group(self) -> str:
        return f"/aws/lambda/{self.transform_function}"

    @property
    def transform_role(self) -> str:
        return self.named(f"transform-role-{self.region}")

    @property
    def firehose_role(self) -> str:
        return self.named(f"firehose-role-{self.region}")

    @property
    def workgroup(self) -> str:
        return self.named("athena")

    def glue_arn(self, resource: str) -> str:
        """``catalog``, ``database/<db>`` or ``table/<db>/<table>``."""
        return self.arn("glue", resource)

    def legacy(self, kind: str) -> str:
        """IoT Analytics names allow only [A-Za-z0-9_]."""
        return f"{self.name}_{kind}_{self.suffix}".replace("-", "_")

    # --- ARNs -----------------------------------------------------------------------------
    def arn(self, service: str, resource: str, region: bool = True) -> str:
        """This deployment's partition, region (unless global) and account."""
        where = self.region if region else ""
        return f"arn:{self.partition}:{service}:{where}:{self.account}:{resource}"

    @property
    def stream_arn(self) -> str:
        return self.arn("kinesis", f"stream/{self.stream}")

    @property
    def table_arn(self) -> str:
        return self.arn("timestream", f"database/{self.database}/table/{self.table}")

    @property
    def function_arn(self) -> str:
        return self.arn("lambda", f"function:{self.function}")

    @property
    def queue_arn(self) -> str:
        return self.arn("sqs", self.queue)

    @property
    def log_group_arn(self) -> str:
        return self.arn("logs", f"log-group:{self.log_group}")

    @property
    def rule_arn(self) -> str:
        return self.arn("iot", f"rule/{self.rule}")

    def role_arn(self, role_name: str) -> str:
        return self.arn("iam", f"role/{role_name}", region=False)

    def tags(self, user_tags: dict[str, str] | None = None) -> dict[str, str]:
        """User tags plus the deployment tag that ``down`` and ``verify`` rely on."""
        return {**(user_tags or {}), TAG_KEY: self.deployment}
