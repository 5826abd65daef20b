"""The event source mapping that feeds stream batches to the function.

The recipe started at LATEST (records written while the mapping warms up are lost) and
kept Lambda's defaults, under which one bad record blocks its shard for up to a week. Here:
the configured starting position (TRIM_HORIZON by default), bounded retries and record age,
bisect on error, partial batch responses and an OnFailure destination.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from iotpipe.aws import is_not_found
from iotpipe.poll import Backoff, TimedOut, until
from iotpipe.resources.base import Changes, Context, Props, Resource
from iotpipe.resources.common import deleted_once_settled, queue_enabled, retry_iam
from iotpipe.resources.errors import ResourceStateError
from iotpipe.verdict import Check

# Lambda's IAM-propagation messages for a mapping (the same ones Terraform retries).
ROLE_NOT_READY = (
    "Cannot access stream",
    "ensure the role can perform",
    "execution role does not have permissions",
    "cannot be assumed by Lambda",
)
ROLE_NOT_READY_CODES = ("InvalidParameterValueException",)
STATE_TIMEOUT = 300.0
# Config field -> API parameter, for the fields UpdateEventSourceMapping can change.
PARAMS = {
    "batch_size": "BatchSize",
    "batching_window_s": "MaximumBatchingWindowInSeconds",
    "parallelization_factor": "ParallelizationFactor",
    "max_retry_attempts": "MaximumRetryAttempts",
    "max_record_age_s": "MaximumRecordAgeInSeconds",
    "bisect_on_error": "BisectBatchOnFunctionError",
    "response_types": "FunctionResponseTypes",
}


def mapping_health(ctx: Context) -> Check:
    pages = ctx.client("lambda").list_event_source_mappings(
        FunctionName=ctx.names.function, EventSourceArn=ctx.names.stream_arn
    )
    found: dict[str, Any] = next(iter(pages.get("EventSourceMappings", [])), {})
    state = found.get("State", "?")
    result = found.get("LastProcessingResult", "none yet")
    ok = state == "Enabled" and not str(result).startswith("PROBLEM")
    if state != "Enabled":
        fix = f"The mapping is {state}: run 'iotpipe up' to enable it."
    elif not ok:
        fix = (
            f"The last batch failed: read the function's logs "
            f"(aws logs tail {ctx.names.log_group}) and the failure queue "
            "('iotpipe query quality')."
        )
    else:
        fix = ""
    return Check("Event source mapping is Enabled", ok, f"{state}; last result: {result}", fix)


class EventSourceMapping(Resource):
    """Kinesis -> Lambda mapping, found by (function, stream) rather than by a stored UUID."""

    key = "mapping"
    label = "Lambda event source mapping"
    depends_on = ("function", "stream", "queue", "function_role")
    # A new starting position only means something for a new mapping.
    replace_on = frozenset({"starting_position"})
    # Found through its function and stream: it is listed by function, and ``down``
    # deletes it once the function's (or stream's) suffix is known.
    discovery = ()
    health = (mapping_health,)

    def enabled(self) -> bool:
        return self.ctx.config.timestream.enabled  # feeds the processor: off with it

    @property
    def name(self) -> str:
        return f"{self.ctx.names.stream} -> {self.ctx.names.function}"

    @property
    def _lambda(self) -> Any:
        return self.ctx.client("lambda")

    def desired(self) -> Props:
        es = self.ctx.config.event_source
        return {
            "starting_position": es.starting_position,
            **{field: getattr(es, field) for field in PARAMS if field != "response_types"},
            "response_types": ["ReportBatchItemFailures"],
            "on_failure": self.ctx.names.queue_arn if queue_enabled(self.ctx) else None,
        }

    def _find(self) -> dict[str, Any] | None:
        """The live mapping between our function and our stream (Deleting ones don't count)."""
        pages = self._lambda.get_paginator("list_event_source_mappings").paginate(
            FunctionName=self.ctx.names.function, EventSourceArn=self.ctx.names.stream_arn
        )
        for page in pages:
            for mapping in page.get("EventSourceMappings", []):
                if mapping.get("State") != "Deleting":
                    return dict(mapping)
        return None

    def describe(self) -> Props | None:
        """The settings, plus ``uuid`` (not a setting: what ``outputs`` needs)."""
        found = self._find()
        if found is None:
            return None
        props: Props = {"starting_position": found.get("StartingPosition")}
        props.update({field: found.get(param) for field, param in PARAMS.items()})
        props["response_types"] = list(found.get("FunctionResponseTypes") or [])
        # AWS echoes an empty {"OnFailure": {}} when there is no destination.
        on_failure = (found.get("DestinationConfig") or {}).get("OnFailure") or {}
        props["on_failure"] = on_failure.get("Destination") or None
        props["uuid"] = str(found["UUID"])
        return props

    @staticmethod
    def _destination(arn: str) -> dict[str, Any]:
        return {"OnFailure": {"Destination": arn}}

    def recreates(self, changes: Changes) -> bool:
        """Also when the OnFailure destination goes: there is no documented way to clear
        it in place ({} is rejected, omitting it keeps the old one). Replays are harmless:
        the function writes with the event's timestamp (idempotent)."""
        dropped = "on_failure" in changes and changes["on_failure"][1] is None
        return dropped or super().recreates(changes)

    def create(self) -> dict[str, Any]:
        want = self.desired()
        params: dict[str, Any] = {
            "EventSourceArn": self.ctx.names.stream_arn,
            "FunctionName": self.ctx.names.function,
            "StartingPosition": want["starting_position"],
            "Enabled": True,
            **{param: want[field] for field, param in PARAMS.items()},
        }
        if want["on_failure"]:
            params["DestinationConfig"] = self._destination(want["on_failure"])
        created = retry_iam(
            self.ctx,
            lambda: self._lambda.create_event_source_mapping(**params),
            ROLE_NOT_READY,
            ROLE_NOT_READY_CODES,
        )
        uuid = str(created["UUID"])
        self._await_enabled(uuid)
        return self._outputs(uuid)

    def update(self, current: Props, changes: Changes) -> dict[str, Any]:
        want = self.desired()
        uuid = current.get("uuid") or self._uuid()
        params: dict[str, Any] = {
            PARAMS[field]: want[field] for field in changes if field in PARAMS
        }
        if "on_failure" in changes:
            params["DestinationConfig"] = self._destination(want["on_failure"])
        if params:
            retry_iam(
                self.ctx,
                lambda: self._lambda.update_event_source_mapping(UUID=uuid, **params),
                ROLE_NOT_READY,
                ROLE_NOT_READY_CODES,
            )
            self._await_enabled(uuid)
        return self._outputs(uuid)

    def _uuid(self) -> str:
        found = self._find()
        if found is None:
            raise ResourceStateError(f"event source mapping {self.name} does not exist")
        return str(found["UUID"])

    def delete(self) -> bool:
        found = self._find()
        if found is None:
            return False
        uuid = str(found["UUID"])
        start = self.ctx.clock()

        if not deleted_once_settled(
            self.ctx,
            lambda: self._lambda.delete_event_source_mapping(UUID=uuid),
            timeout=STATE_TIMEOUT,
            backoff=self._backoff,
        ):
            return False
        left = STATE_TIMEOUT - (self.ctx.clock() - start)
        try:
            until(
                lambda: self._state(uuid),
                done=lambda found: found is None,
                timeout=left,
                backoff=self._backoff,
                clock=self.ctx.poll_clock,
            )
        except TimedOut:
            raise ResourceStateError(
                f"event source mapping {uuid} is still being deleted"
            ) from None
        return True

    def outputs(self, current: Props | None = None) -> dict[str, Any]:
        return self._outputs((current or {}).get("uuid") or self._uuid())

    def _outputs(self, uuid: str) -> dict[str, Any]:
        return {
            "uuid": uuid,
            "function": self.ctx.names.function,
            "stream_arn": self.ctx.names.stream_arn,
        }

    @property
    def _backoff(self) -> Backoff:
        return Backoff.fixed(0.1 if self.ctx.gateway.local else 2.0)

    def _state(self, uuid: str) -> dict[str, Any] | None:
        try:
            return dict(self._lambda.get_event_source_mapping(UUID=uuid))
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise

    def _await_enabled(self, uuid: str) -> None:
        """Poll until Enabled; Disabled (or gone) means Lambda gave up, so say why."""

        def settled() -> dict[str, Any] | None:
            found = self._state(uuid)
            state = None if found is None else found.get("State")
            if found is None or state == "Disabled":
                reason = (found or {}).get("StateTransitionReason", "it no longer exists")
                raise ResourceStateError(
                    f"event source mapping {uuid} did not start ({state or 'gone'}): {reason}"
                )
            return found

        try:
            until(
                settled,
                done=lambda found: (found or {}).get("State") == "Enabled",
                timeout=STATE_TIMEOUT,
                backoff=self._backoff,
                clock=self.ctx.poll_clock,
            )
        except TimedOut as exc:
            state = exc.last.get("State") if isinstance(exc.last, dict) else None
            raise ResourceStateError(
                f"event source mapping {uuid} still {state} after {STATE_TIMEOUT:.0f} s"
            ) from None
