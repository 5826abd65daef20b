"""The Lambda function that validates, enriches and writes the telemetry.

Created after its role, its log group, the queue and the table exist. Even so, IAM needs
seconds to propagate a new role to Lambda, which says so with "The role defined for the
function cannot be assumed by Lambda": that exact message (and only that) is retried.
Code identity is the zip's SHA-256 (the package is deterministic), so an unchanged
checkout plans as "unchanged" and a changed one updates only the code.
"""

from __future__ import annotations

from typing import Any

from iotpipe.package import HANDLER
from iotpipe.resources.base import Props, Resource
from iotpipe.resources.common import deleted, failure_queue_url, get_or_none, retry_iam, wait

ROLE_NOT_READY = ("cannot be assumed by Lambda",)
ROLE_NOT_READY_CODES = ("InvalidParameterValueException",)
CODE_FIELDS = frozenset({"code_sha256", "architecture"})
CONFIG_FIELDS = frozenset(
    {"runtime", "handler", "role_arn", "memory_mb", "timeout_s", "environment"}
)


class Function(Resource):
    """Lambda function ``<name>-processor-<suffix>``."""

    key = "function"
    label = "Lambda function"
    depends_on = ("function_role", "queue", "log_group", "timestream")

    @property
    def name(self) -> str:
        return self.ctx.names.function

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
            "handler": HANDLER,
            "role_arn": names.role_arn(names.function_role),
            "memory_mb": cfg.memory_mb,
            "timeout_s": cfg.timeout_s,
            "architecture": cfg.architecture,
            "environment": self.environment(),
            "code_sha256": self.ctx.function_sha256,
        }

    def describe(self) -> Props | None:
        found = get_or_none(lambda: self._lambda.get_function(FunctionName=self.name))
        if found is None:
            return None
        conf = found["Configuration"]
        return {
            "runtime": conf.get("Runtime"),
            "handler": conf.get("Handler"),
            "role_arn": conf.get("Role"),
            "memory_mb": conf.get("MemorySize"),
            "timeout_s": conf.get("Timeout"),
            "architecture": (conf.get("Architectures") or ["x86_64"])[0],
            "environment": dict(conf.get("Environment", {}).get("Variables", {})),
            "code_sha256": conf.get("CodeSha256"),
        }

    def _configuration(self, want: Props) -> dict[str, Any]:
        """The UpdateFunctionConfiguration-shaped part of the desired state."""
        return {
            "FunctionName": self.name,
            "Runtime": want["runtime"],
            "Role": want["role_arn"],
            "Handler": want["handler"],
            "Timeout": want["timeout_s"],
            "MemorySize": want["memory_mb"],
            "Environment": {"Variables": want["environment"]},
            # JSON logs into the group we created (and tagged, and gave a retention).
            "LoggingConfig": {"LogFormat": "JSON", "LogGroup": self.ctx.names.log_group},
        }

    def create(self) -> dict[str, Any]:
        want = self.desired()
        params = {
            **self._configuration(want),
            "Code": {"ZipFile": self.ctx.function_zip},
            "Architectures": [want["architecture"]],
            "Description": f"iotpipe {self.ctx.names.deployment}: telemetry processor",
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
                Architectures=[want["architecture"]],
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

    def outputs(self) -> dict[str, Any]:
        current = self.describe()
        return self._outputs(current.get("code_sha256") if current else None)

    def _outputs(self, sha: str | None) -> dict[str, Any]:
        return {
            "name": self.name,
            "arn": self.ctx.names.function_arn,
            "code_sha256": sha or self.ctx.function_sha256,
        }
