"""The Athena workgroup every lake query runs in: where results go, and what one may cost.

Its settings are *enforced* (EnforceWorkGroupConfiguration): a client cannot point results
at another bucket or skip their encryption, and the bytes-scanned cutoff cancels a query
that would scan more than ``lake.scan_limit_gb`` (Athena bills per byte scanned, so the
cutoff is the cost guard). Results live under the lake bucket's ``athena-results/``,
which its lifecycle rule expires.

Athena says "not found" with a generic InvalidRequestException ("WorkGroup <name> is not
found."), so the message is matched; moto instead answers GetWorkGroup with no WorkGroup,
and DeleteWorkGroup of a missing one with success, so ``delete`` asks first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from iotpipe import lakeschema
from iotpipe.aws import Gateway, error_code, error_message, tag_list
from iotpipe.resources.base import Changes, Context, Discovery, Props, Resource, diff
from iotpipe.resources.lakeroles import lake_enabled
from iotpipe.verdict import Check

ENGINE = "Athena engine version 3"
GIB = 1024**3
INVALID = "InvalidRequestException"


def is_missing(exc: ClientError) -> bool:
    return error_code(exc) == INVALID and "not found" in error_message(exc).lower()


def is_taken(exc: ClientError) -> bool:
    """CreateWorkGroup of an existing name: AWS "is already created", moto "already exists"."""
    return error_code(exc) == INVALID and "already" in error_message(exc).lower()


def list_work_groups(gateway: Gateway, prefix: str) -> Iterator[str]:
    """Every workgroup name starting with ``prefix`` (no boto3 paginator for this one)."""
    athena = gateway.client("athena")
    token: dict[str, str] = {}
    while True:
        page = athena.list_work_groups(**token)
        yield from (w["Name"] for w in page.get("WorkGroups", []) if w["Name"].startswith(prefix))
        if not page.get("NextToken"):
            return
        token = {"NextToken": page["NextToken"]}


def workgroup_health(ctx: Context) -> Check:
    found = Workgroup(ctx).get()
    state = (found or {}).get("State", "missing")
    ok = state == "ENABLED"
    fix = (
        ""
        if ok
        else (
            "Queries are refused in a disabled workgroup: aws athena update-work-group "
            f"--work-group {ctx.names.workgroup} --state ENABLED"
        )
    )
    return Check("Athena workgroup is ENABLED", ok, str(state), fix)


class Workgroup(Resource):
    """Athena workgroup ``<name>-athena-<suffix>``, results in the lake bucket."""

    key = "workgroup"
    label = "Athena workgroup"
    depends_on = ("lake_bucket",)
    shown_on_create = ("output_location", "bytes_scanned_cutoff")
    discovery = (Discovery(lambda n: n.workgroup, list_work_groups),)
    health = (workgroup_health,)
    fixes = {
        "enforce_configuration": (
            "The workgroup no longer enforces its settings (queries could skip the scan "
            "limit and write results elsewhere): run 'iotpipe up'."
        ),
    }

    @property
    def name(self) -> str:
        return self.ctx.names.workgroup

    @property
    def arn(self) -> str:
        return self.ctx.names.arn("athena", f"workgroup/{self.name}")

    def enabled(self) -> bool:
        return lake_enabled(self.ctx)

    @property
    def _athena(self) -> Any:
        return self.ctx.client("athena")

    def desired(self) -> Props:
        return {
            "output_location": lakeschema.results_location(self.ctx.names.bucket),
            "encryption": "SSE_S3",
            "enforce_configuration": True,
            "bytes_scanned_cutoff": self.ctx.config.lake.scan_limit_gb * GIB,
            "cloudwatch_metrics": True,
            "engine_version": ENGINE,
            "tags": dict(self.ctx.tags),
        }

    def get(self) -> dict[str, Any] | None:
        """GetWorkGroup's WorkGroup, or None when there is none."""
        try:
            found = self._athena.get_work_group(WorkGroup=self.name).get("WorkGroup")
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        return found or None

    def describe(self) -> Props | None:
        found = self.get()
        if found is None:
            return None
        config = found.get("Configuration", {})
        results = config.get("ResultConfiguration", {})
        tags = self._athena.list_tags_for_resource(ResourceARN=self.arn).get("Tags", [])
        return {
            "output_location": results.get("OutputLocation"),
            "encryption": results.get("EncryptionConfiguration", {}).get("EncryptionOption"),
            "enforce_configuration": config.get("EnforceWorkGroupConfiguration"),
            "bytes_scanned_cutoff": config.get("BytesScannedCutoffPerQuery"),
            "cloudwatch_metrics": config.get("PublishCloudWatchMetricsEnabled"),
            "engine_version": config.get("EngineVersion", {}).get("SelectedEngineVersion"),
            "tags": {t["Key"]: t["Value"] for t in tags},
            "state": found.get("State"),
        }

    def _results(self, want: Props) -> dict[str, Any]:
        return {
            "OutputLocation": want["output_location"],
            "EncryptionConfiguration": {"EncryptionOption": want["encryption"]},
        }

    def _configuration(self, want: Props) -> dict[str, Any]:
        return {
            "ResultConfiguration": self._results(want),
            "EnforceWorkGroupConfiguration": want["enforce_configuration"],
            "BytesScannedCutoffPerQuery": want["bytes_scanned_cutoff"],
            "PublishCloudWatchMetricsEnabled": want["cloudwatch_metrics"],
            "EngineVersion": {"SelectedEngineVersion": want["engine_version"]},
        }

    def create(self) -> dict[str, Any]:
        want = self.desired()
        try:
            self._athena.create_work_group(
                Name=self.name,
                Description=f"iotpipe lake queries of {self.ctx.names.deployment}",
                Configuration=self._configuration(want),
                Tags=tag_list(want["tags"]),
            )
        except ClientError as exc:
            if not is_taken(exc):
                raise
            current = self.describe()  # a repeated `up`: reconcile only what differs
            if current is not None and (changes := diff(want, current)):
                self.update(current, changes)
        return self.outputs()

    def _configuration_updates(self, want: Props, fields: set[str]) -> dict[str, Any]:
        updates: dict[str, Any] = {}
        if fields & {"output_location", "encryption"}:
            updates["ResultConfigurationUpdates"] = self._results(want)
        plain = {
            "enforce_configuration": "EnforceWorkGroupConfiguration",
            "bytes_scanned_cutoff": "BytesScannedCutoffPerQuery",
            "cloudwatch_metrics": "PublishCloudWatchMetricsEnabled",
        }
        updates.update({api: want[f] for f, api in plain.items() if f in fields})
        if "engine_version" in fields:
            updates["EngineVersion"] = {"SelectedEngineVersion": want["engine_version"]}
        return updates

    def update(self, current: Props, changes: Changes) -> dict[str, Any]:
        want = self.desired()
        updates = self._configuration_updates(want, set(changes))
        if updates:
            self._athena.update_work_group(WorkGroup=self.name, ConfigurationUpdates=updates)
        if "tags" in changes:
            have = current.get("tags") or {}
            gone = [k for k in have if k not in want["tags"]]
            if gone:
                self._athena.untag_resource(ResourceARN=self.arn, TagKeys=gone)
            self._athena.tag_resource(ResourceARN=self.arn, Tags=tag_list(want["tags"]))
        return self.outputs()

    def delete(self) -> bool:
        if self.get() is None:  # moto deletes a missing workgroup "successfully"
            return False
        try:
            # Recursive: also its saved queries and query history, or AWS refuses.
            self._athena.delete_work_group(WorkGroup=self.name, RecursiveDeleteOption=True)
        except ClientError as exc:
            if is_missing(exc):
                return False
            raise
        return True

    def outputs(self, current: Props | None = None) -> dict[str, Any]:
        return {
            "name": self.name,
            "arn": self.arn,
            "results": lakeschema.results_location(self.ctx.names.bucket),
        }
