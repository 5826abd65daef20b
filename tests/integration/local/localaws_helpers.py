"""Helpers for the embedded-AWS integration tests: small test functions, zipped here.

(A module with a distinctive name, not conftest: test modules import it directly.)

The ESM tests deploy tiny handlers (not the real function) so each failure mode is
produced on purpose: a record's JSON says whether to fail, raise, sleep or crash.
"""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

# One record per message; MODE selects the failure behaviour, LAYOUT the record model.
TEST_HANDLER = """
import base64, json, os, time
import boto3

ts = boto3.client("timestream-write")
DB, TABLE = os.environ["TIMESTREAM_DATABASE"], os.environ["TIMESTREAM_TABLE"]
MODE, LAYOUT, TAG = os.environ.get("MODE", "partial"), os.environ.get("LAYOUT", "single"), os.environ.get("TAG", "v1")


def record(m):
    dims = [{"Name": "DeviceId", "Value": str(m.get("deviceId", m.get("id")))}]
    t = str(m["t"])
    if LAYOUT == "multi":
        values = [{"Name": k, "Value": str(m[k]), "Type": "DOUBLE"} for k in ("temperature", "humidity") if k in m]
        if "processing_time" in m:
            values.append({"Name": "processing_time", "Value": str(m["processing_time"]), "Type": "BIGINT"})
        return {"Dimensions": dims, "MeasureName": "metrics", "MeasureValueType": "MULTI", "MeasureValues": values, "Time": t}
    return {"Dimensions": dims, "MeasureName": TAG, "MeasureValue": str(m.get("temperature", 1.0)), "MeasureValueType": "DOUBLE", "Time": t}


def handler(event, context):
    failures, rows, bad = [], [], False
    for r in event["Records"]:
        m = json.loads(base64.b64decode(r["kinesis"]["data"]))
        if m.get("crash"):
            os._exit(3)
        if m.get("sleep"):
            time.sleep(m["sleep"])
        if m.get("fail"):
            bad = True
            failures.append({"itemIdentifier": r["kinesis"]["sequenceNumber"]})
            continue
        rows.append(record(m))
    for i in range(0, len(rows), 100):
        ts.write_records(DatabaseName=DB, TableName=TABLE, Records=rows[i:i + 100],
                         CommonAttributes={"Dimensions": [{"Name": "Location", "Value": "lab"}]})
    print(json.dumps({"written": len(rows), "failed": len(failures)}))
    if bad and MODE == "raise":
        raise RuntimeError("a record asked to fail")
    return {"batchItemFailures": failures}
"""


TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Service": "lambda.amazonaws.com"},
            }
        ],
    }
)


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def wait_for(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


@dataclass
class Pipeline:
    """Stream + Timestream table + failure queue + function (+ mapping) for one test."""

    aws: Any
    stream: str
    stream_arn: str
    db: str
    table: str
    queue_url: str
    queue_arn: str
    function: str
    mapping: str | None = None

    def put(self, messages: list[dict[str, Any]], key: str = "k") -> list[str]:
        k = self.aws.client("kinesis")
        out = k.put_records(
            StreamName=self.stream,
            Records=[{"Data": json.dumps(m).encode(), "PartitionKey": key} for m in messages],
        )
        assert out["FailedRecordCount"] == 0
        return [r["SequenceNumber"] for r in out["Records"]]

    def query(self, sql: str) -> list[dict[str, Any]]:
        tq = self.aws.client("timestream-query")
        rows, token, cols = [], None, []
        while True:
            kw = {"NextToken": token} if token else {}
            page = tq.query(QueryString=sql.format(t=f'"{self.db}"."{self.table}"'), **kw)
            cols = [c["Name"] for c in page["ColumnInfo"]]
            rows += [
                dict(zip(cols, [d.get("ScalarValue") for d in r["Data"]], strict=True))
                for r in page["Rows"]
            ]
            token = page.get("NextToken")
            if not token:
                return rows

    def device_ids(self) -> list[str]:
        """DeviceIds in the table ([] while no row has created the column yet)."""
        try:
            return sorted(r["DeviceId"] for r in self.query("SELECT DeviceId FROM {t}"))
        except self.aws.client("timestream-query").exceptions.ValidationException:
            return []

    def failure_records(self, expect: int = 1, timeout: float = 15.0) -> list[dict[str, Any]]:
        sqs = self.aws.client("sqs")
        got: list[dict[str, Any]] = []

        def enough() -> bool:
            msgs = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            for m in msgs:
                got.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
            return len(got) >= expect

        wait_for(enough, timeout, f"{expect} failure record(s) in SQS")
        return got


def pipeline_factory(local_aws: Any) -> Callable[..., Pipeline]:
    """Factory: build a pipeline; mapping settings are keyword arguments."""

    def build(
        shards: int = 1,
        env: dict[str, str] | None = None,
        timeout: int = 10,
        mapping: dict[str, Any] | None = None,
        code: str = TEST_HANDLER,
    ) -> Pipeline:
        aws = local_aws
        stream, db, table, queue, fn = (aws.name(p) for p in ("st", "db", "tb", "q", "fn"))
        k = aws.client("kinesis")
        k.create_stream(StreamName=stream, ShardCount=shards)
        stream_arn = k.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
            "StreamARN"
        ]
        tw = aws.client("timestream-write")
        tw.create_database(DatabaseName=db)
        tw.create_table(
            DatabaseName=db,
            TableName=table,
            RetentionProperties={
                "MemoryStoreRetentionPeriodInHours": 24,
                "MagneticStoreRetentionPeriodInDays": 7,
            },
        )
        sqs = aws.client("sqs")
        queue_url = sqs.create_queue(QueueName=queue)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        variables = {
            "TIMESTREAM_DATABASE": db,
            "TIMESTREAM_TABLE": table,
            "FAILURE_QUEUE_URL": queue_url,
        }
        variables.update(env or {})
        role = aws.client("iam").create_role(
            RoleName=aws.name("role"), AssumeRolePolicyDocument=TRUST
        )
        aws.client("lambda").create_function(
            FunctionName=fn,
            Runtime="python3.13",
            Role=role["Role"]["Arn"],
            Handler="fn.handler",
            Code={"ZipFile": make_zip({"fn.py": code})},
            Timeout=timeout,
            Architectures=["arm64"],
            Environment={"Variables": variables},
        )
        p = Pipeline(aws, stream, stream_arn, db, table, queue_url, queue_arn, fn)
        if mapping is not None:
            p.mapping = add_mapping(p, **mapping)
        return p

    return build


def add_mapping(p: Pipeline, **settings: Any) -> str:
    spec: dict[str, Any] = {
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 10,
        "MaximumBatchingWindowInSeconds": 0,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "DestinationConfig": {"OnFailure": {"Destination": p.queue_arn}},
    }
    spec.update(settings)
    out = p.aws.client("lambda").create_event_source_mapping(
        FunctionName=p.function, EventSourceArn=p.stream_arn, **spec
    )
    return out["UUID"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def aws(endpoint: str, service: str) -> Any:
    """A client configured as a user's script or the AWS CLI is for the embedded AWS:
    us-east-1, the local credentials, its endpoint."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
