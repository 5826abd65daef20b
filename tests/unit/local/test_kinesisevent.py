"""The compact batch the emulator sends a worker expands to exactly Lambda's Kinesis event."""

from iotpipe.local import kinesisevent


def test_expand_gives_lambdas_kinesis_event() -> None:
    arn = "arn:aws:kinesis:eu-west-1:123456789012:stream/s"
    role = "arn:aws:iam::123456789012:role/r"
    sent = kinesisevent.compact(
        [("dev-1", 49590338271490256608559692538361571095921575989136588898, "eyJ9", 1.23456)],
        "shardId-000000000000",
        role,
        "eu-west-1",
        arn,
    )
    assert kinesisevent.expand(sent) == {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "dev-1",
                    "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
                    "data": "eyJ9",
                    "approximateArrivalTimestamp": 1.235,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": "shardId-000000000000:"
                "49590338271490256608559692538361571095921575989136588898",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": role,
                "awsRegion": "eu-west-1",
                "eventSourceARN": arn,
            }
        ]
    }


def test_any_other_event_reaches_the_handler_unchanged() -> None:
    for event in ({"Records": []}, {"key": "value"}, [1, 2], "text", None):
        assert kinesisevent.expand(event) == event
