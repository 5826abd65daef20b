"""PutRecords and WriteRecords skip moto's dispatch (`hotpath`); a boto3 user cannot tell:
the same errors, the same accounts, the same answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration


def _as_account(client: Any, account: str) -> Any:
    """moto's own per-request account switch, the header its docs describe."""

    def add(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    client.meta.events.register("before-sign.*.*", add)
    return client


def test_put_records_errors_and_accounts_match_moto(local_aws: Any) -> None:
    name = local_aws.name("hot")
    kinesis = local_aws.client("kinesis")
    with pytest.raises(ClientError) as e:
        kinesis.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k"}])
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    other = _as_account(local_aws.client("kinesis"), "111122223333")
    other.create_stream(StreamName=name, ShardCount=1)  # through moto's dispatch
    other.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    out = other.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k"}])
    assert out["FailedRecordCount"] == 0 and out["Records"][0]["ShardId"]
    assert out["ResponseMetadata"]["RequestId"]
    with pytest.raises(ClientError):  # the default account has no such stream
        kinesis.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k"}])
    shard = out["Records"][0]["ShardId"]
    it = other.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    assert [r["Data"] for r in other.get_records(ShardIterator=it["ShardIterator"])["Records"]] == [
        b"x"
    ]


def test_write_records_errors_match_timestream(local_aws: Any) -> None:
    ts = local_aws.client("timestream-write")
    db = local_aws.name("hotdb")
    with pytest.raises(ClientError) as e:
        ts.write_records(DatabaseName=db, TableName="t", Records=[{"MeasureName": "m"}])
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    ts.create_database(DatabaseName=db)
    ts.create_table(DatabaseName=db, TableName="t")
    with pytest.raises(ClientError) as e:
        ts.write_records(DatabaseName=db, TableName="t", Records=[{"MeasureName": "m"}] * 101)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    bad = {"MeasureName": "m", "MeasureValue": "x", "MeasureValueType": "DOUBLE", "Time": "1"}
    with pytest.raises(ClientError) as e:
        ts.write_records(DatabaseName=db, TableName="t", Records=[bad])
    assert e.value.response["Error"]["Code"] == "RejectedRecordsException"
    body = json.loads(json.dumps(e.value.response))  # the JSON body reached boto3 whole
    assert body["RejectedRecords"][0]["RecordIndex"] == 0


def test_put_records_keeps_kinesis_limits_and_per_shard_order(local_aws: Any) -> None:
    name = local_aws.name("hotlim")
    kinesis = local_aws.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    records = [{"Data": f"m{i}".encode(), "PartitionKey": f"dev-{i % 7}"} for i in range(200)]
    out = kinesis.put_records(StreamName=name, Records=records)["Records"]
    by_shard: dict[str, list[tuple[int, int]]] = {}
    for i, r in enumerate(out):
        by_shard.setdefault(r["ShardId"], []).append((int(r["SequenceNumber"]), i))
    assert len(by_shard) == 2
    for placed in by_shard.values():  # consecutive, in request order, within each shard
        seqs = [s for s, _ in placed]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert [i for _, i in placed] == sorted(i for _, i in placed)
    for records, code in (
        ([{"Data": b"x", "PartitionKey": "k"}] * 501, "ValidationException"),
        ([{"Data": b"x" * (1024 * 1024), "PartitionKey": "k"}], "ValidationException"),
        ([{"Data": b"x" * (1000 * 1000), "PartitionKey": "k"}] * 6, "InvalidArgumentException"),
    ):
        with pytest.raises(ClientError) as e:
            kinesis.put_records(StreamName=name, Records=records)
        assert e.value.response["Error"]["Code"] == code


def _raw(local_aws: Any, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """A signed request with exactly this body, as a hand-written client would send it."""
    import urllib.error
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    service = "kinesis" if target.startswith("Kinesis") else "timestream"
    headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"}
    req = AWSRequest("POST", local_aws.endpoint + "/", data=body, headers=headers)
    SigV4Auth(Credentials("testing", "testing"), service, local_aws.region).add_auth(req)
    out = urllib.request.Request(req.url, data=body, headers=dict(req.headers), method="POST")
    try:
        with urllib.request.urlopen(out, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize(
    ("target", "body", "code"),
    [
        ("Kinesis_20131202.PutRecords", b"{not json", "SerializationException"),
        ("Kinesis_20131202.PutRecords", b"\xff\xfe", "SerializationException"),
        ("Kinesis_20131202.PutRecords", b'{"StreamName":"S","Records":"x"}', "ValidationException"),
        (
            "Kinesis_20131202.PutRecords",
            b'{"StreamName":"S","Records":[{"Data":5,"PartitionKey":null}]}',
            "ValidationException",
        ),
        ("Kinesis_20131202.PutRecords", b'{"StreamName":"S","Records":[7]}', "ValidationException"),
        ("Timestream_20181101.WriteRecords", b"[1,", "SerializationException"),
        (
            "Timestream_20181101.WriteRecords",
            b'{"DatabaseName":"D","TableName":"t","Records":5}',
            "ValidationException",
        ),
        (
            "Timestream_20181101.WriteRecords",
            b'{"DatabaseName":"D","TableName":"t","Records":["x"]}',
            "ValidationException",
        ),
        (
            "Timestream_20181101.WriteRecords",
            b'{"DatabaseName":"D","TableName":"t","Records":[{"Dimensions":"x"}]}',
            "ValidationException",
        ),
        (
            "Timestream_20181101.WriteRecords",
            b'{"DatabaseName":"D","TableName":"t","Records":[{"MeasureName":"m",'
            b'"MeasureValueType":7,"Time":"1","Dimensions":[{"Name":3,"Value":"v"}]}]}',
            "ValidationException",
        ),
        (
            "Timestream_20181101.WriteRecords",
            b'{"DatabaseName":"D","TableName":"t","Records":[{"MeasureName":"m"}],'
            b'"CommonAttributes":"x"}',
            "ValidationException",
        ),
    ],
)
def test_malformed_bodies_get_a_clear_400(
    local_aws: Any, target: str, body: bytes, code: str
) -> None:
    name = local_aws.name("nasty")
    kinesis = local_aws.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    ts = local_aws.client("timestream-write")
    ts.create_database(DatabaseName=name)
    ts.create_table(DatabaseName=name, TableName="t")
    body = body.replace(b'"S"', f'"{name}"'.encode()).replace(b'"D"', f'"{name}"'.encode())
    status, reply = _raw(local_aws, target, body)
    assert status == 400 and reply["__type"].endswith(code), reply
    assert ts.describe_table(DatabaseName=name, TableName="t")["Table"]["TableStatus"] == "ACTIVE"


def test_put_records_routes_every_entry_by_its_key_as_kinesis_does(local_aws: Any) -> None:
    """Repeated partition keys (a fleet's device ids) are routed once per call; every
    entry still lands where DescribeStream's hash key ranges say: MD5 of the partition key,
    or the ExplicitHashKey when given."""
    import hashlib

    name = local_aws.name("route")
    kinesis = local_aws.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=4)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    shards = kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    ranges = [
        (int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]), s)
        for s in shards
    ]

    def owner(key: int) -> str:
        return next(s["ShardId"] for lo, hi, s in ranges if lo <= key <= hi)

    entries: list[dict[str, Any]] = []
    expected = []
    for i in range(500):
        pk = f"sensor{i % 37:03d}"
        entry: dict[str, Any] = {"Data": b"x", "PartitionKey": pk}
        key = int(hashlib.md5(pk.encode()).hexdigest(), 16)
        if i % 5 == 0:  # the same key sent elsewhere by an explicit hash key
            key = ranges[i % 4][0]
            entry["ExplicitHashKey"] = str(key)
        entries.append(entry)
        expected.append(owner(key))
    out = kinesis.put_records(StreamName=name, Records=entries)
    assert out["FailedRecordCount"] == 0
    assert [r["ShardId"] for r in out["Records"]] == expected
    assert len(set(expected)) == 4
