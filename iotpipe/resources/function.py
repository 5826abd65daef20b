"""The Lambda function that validates, enriches and writes the telemetry.

Created after its role, its log group, the queue and the table exist. Even so, IAM needs
seconds to propagate a new role to Lambda, which says so with "The role defined for the
function cannot be assumed by Lambda": that exact message (and only that) is retried.
Code identity is the zip's SHA-256 (the package is deterministic), so an unchanged
checkout plans as "unchanged" and a changed one updates only the code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar, NamedTuple

from iotpipe.aws import Gateway
from iotpipe.package import HANDLER
from iotpipe.resources.base import Context, Discovery, Props, Resource
from iotpipe.resources.common import deleted, failure_queue_url, get_or_none, retry_iam, wait
from iotpipe.verdict import Check

ROLE_NOT_READY = ("cannot be assumed by Lambda",)
ROLE_NOT_READY_CODES = ("InvalidParameterValueException",)


def _same(value: Any) -> Any:
    return value


class Field(NamedTuple):
    """One field as Lambda names it: ``param`` in GetFunction's Configuration and in
    Create/UpdateFunctionConfiguration, ``read``/``write`` converting its shape."""

    param: str
    read: Callable[[Any], Any] = _same
    write: Callable[[Any], Any] = _same
    # Changed by UpdateFunctionCode, not UpdateFunctionConfiguration.
    code: bool = False


# Each field once; desired() gives the values, the rest goes through this table.
FIELDS = {
    "runtime": Field("Runtime"),
    "handler": Field("Handler"),
    "role_arn": Field("Role"),
    "memory_mb": Field("MemorySize"),
    "timeout_s": Field("Timeout"),
    "architecture": Field(
        "Architectures", lambda v: (v or ["x86_64"])[0], lambda v: [v], code=True
    ),
    "environment": Field(
        "Environment", lambda v: dict((v or {}).get("Variables", {})), lambda v: {"Variables": v}
    ),
    "code_sha256": Field("CodeSha256", code=True),  # read only: the zip is what is sent
}
CODE_FIELDS = frozenset(f for f, spec in FIELDS.items() if spec.code)
CONFIG_FIELDS = frozenset(FIELDS) - CODE_FIELDS


def list_functions(gateway: Gateway, prefix: str) -> Iterator[str]:
    for page in gateway.client("lambda").get_paginator("list_functions").paginate():
        yield from (f["FunctionName"] for f in page["Functions"])


def lambda_health(ctx: Context, name: str, label: str = "Lambda function") -> Check:
    """Any of the deployment's functions: Active, and its last update Successful."""
    conf = ctx.client("lambda").get_function_configuration(FunctionName=name)
    state, update = conf.get("State", "?"), conf.get("LastUpdateStatus", "?")
    ok = state == "Active" and update == "Successful"
    reason = conf.get("StateReason") or conf.get("LastUpdateStatusReason") or ""
    fix = "" if ok else f"{reason} Run 'iotpipe up' once the cause is fixed.".strip()
    return Check(
        f"{label} is Active, last update Successful",
        ok,
        f"State {state}, LastUpdateStatus {update}",
        fix,
    )


def function_health(ctx: Context) -> Check:
    return lambda_health(ctx, ctx.names.function)


class Function(Resource):
    """Lambda function ``<name>-processor-<suffix>``."""

    key = "function"
    label = "Lambda function"
    depends_on: ClassVar[tuple[str, ...]] = ("function_role", "queue", "log_group", "timestream")
    discovery = (Discovery(lambda n: n.function, list_functions),)
    health = (function_health,)
    fixes = {
        "code_sha256": "The deployed code is not this checkout's package (its code, or "
        "what the config packages into it: sensors, devices, validation, tags): "
        "run 'iotpipe plan' to see why, 'iotpipe up' to deploy it."
    }
    # The ``Names`` entries of this function (name and ``<attr>_arn``, role, log group),
    # its entry point and purpose: the lake's transform is this class with its own.
    names_attr: ClassVar[str] = "function"
    role_attr: ClassVar[str] = "function_role"
    log_group_attr: ClassVar[str] = "log_group"
    handler_path: ClassVar[str] = HANDLER
    purpose: ClassVar[str] = "telemetry processor"

    def enabled(self) -> bool:
        return self.ctx.config.timestream.enabled  # it writes Timestream, nothing else

    @property
    def name(self) -> str:
        return str(getattr(self.ctx.names, self.names_attr))

    @property
    def arn(self) -> str:
        return str(getattr(self.ctx.names, f"{self.names_attr}_arn"))

    def timeout_s(self) -> int:
        return self.ctx.config.function.timeout_s

    @property
    def _lambda(self) -> Any:
        return self.ctx.client("lambda")

    def environment(self) -> dict[str, str]:
        """What the handler reads from its environment (the rest is in settings.json)."""
        names = self.ctx.names
        env = {"TIMESTREAM_DATABASE": names.database, "TIMESTREAM_TABLE": names.table}
        url = failure_queue_url(self.ctx)
        if url:
            env["FAILURE_QUEUE_URL"] = url
        return env

    def desired(self) -> Props:
        cfg = self.ctx.config.function
        names = self.ctx.names
        return {
            "runtime": cfg.runtime,
            "handler": self.handler_path,
            "role_arn": names.role_arn(getattr(names, self.role_attr)),
            "memory_mb": cfg.memory_mb,
            "timeout_s": self.timeout_s(),
            "architecture": cfg.architecture,
            "environment": self.environment(),
            "code_sha256": self.ctx.function_sha256,
        }

    def describe(self) -> Props | None:
        found = get_or_none(lambda: self._lambda.get_function(FunctionName=self.name))
        if found is None:
            return None
        conf = found["Configuration"]
        return {f: spec.read(conf.get(spec.param)) for f, spec in FIELDS.items()}

    def _configuration(self, want: Props) -> dict[str, Any]:
        """The UpdateFunctionConfiguration-shaped part of the desired state."""
        params = {FIELDS[f].param: FIELDS[f].write(want[f]) for f in CONFIG_FIELDS}
        return {
            "FunctionName": self.name,
            **params,
            # JSON logs into the group we created (and tagged, and gave a retention).
            "LoggingConfig": {
                "LogFormat": "JSON",
                "LogGroup": getattr(self.ctx.names, self.log_group_attr),
            },
        }

    def create(self) -> dict[str, Any]:
        want = self.desired()
        params = {
            **self._configuration(want),
            "Code": {"ZipFile": self.ctx.function_zip},
            "Architectures": FIELDS["architecture"].write(want["architecture"]),
            "Description": f"iotpipe {self.ctx.names.deployment}: {self.purpose}",
            "Publish": False,
            "Tags": dict(self.ctx.tags),
        }
        created = retry_iam(
            self.ctx,
            lambda: self._lambda.create_function(**params),
            ROLE_NOT_READY,
            ROLE_NOT_READY_CODES,
        )
        wait(self.ctx, "lambda", "function_active_v2", FunctionName=self.name)
        return self._outputs(created.get("CodeSha256"))

    def update(self, current: Props, changes: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
        want = self.desired()
        # Lambda refuses a change while the previous one is still InProgress.
        wait(self.ctx, "lambda", "function_updated_v2", FunctionName=self.name)
        sha = current.get("code_sha256")
        if CODE_FIELDS & changes.keys():
            updated = self._lambda.update_function_code(
                FunctionName=self.name,
                ZipFile=self.ctx.function_zip,
                Architectures=FIELDS["architecture"].write(want["architecture"]),
            )
            sha = updated.get("CodeSha256")
            wait(self.ctx, "lambda", "function_updated_v2", FunctionName=self.name)
        if CONFIG_FIELDS & changes.keys():
            params = self._configuration(want)
            retry_iam(
                self.ctx,
                lambda: self._lambda.update_function_configuration(**params),
                ROLE_NOT_READY,
                ROLE_NOT_READY_CODES,
            )
            wait(self.ctx, "lambda", "function_updated_v2", FunctionName=self.name)
        return self._outputs(sha)

    def delete(self) -> bool:
        return deleted(lambda: self._lambda.delete_function(FunctionName=self.name))

    def outputs(self, current: Props | None = None) -> dict[str, Any]:
        current = current or self.describe()
        return self._outputs(current.get("code_sha256") if current else None)

    def _outputs(self, sha: str | None) -> dict[str, Any]:
        return {
            "name": self.name,
            "arn": self.arn,
            "code_sha256": sha or self.ctx.function_sha256,
        }
