"""Whole batches: every record written, quarantined or retried - and counted."""

from __future__ import annotations

import json

import pytest
from botocore.stub import Stubber
from handler_helpers import (
    NOW,
    FakeQueue,
    FakeTimestream,
    client_error,
    event,
    failures,
    iso,
    kinesis_record,
    ms,
    multi_settings,
    reading,
    run,
    seq,
    ts_client,
)

from lambda_handler import reasons

BIG = b'{"deviceId": "sensor001", "pad": "' + b"x" * (1 << 20) + b'"}'

# (payload, reason) - every message here must end in quarantine with that reason.
CORPUS = [
    (b"{not json", "malformed_json"),
    (b"[1, 2, 3]", "not_an_object"),
    (b"42", "not_an_object"),
    (b"\x89PNG\r\n\x1a\n\x00\xff", "not_utf8"),
    (b"", "empty"),
    (BIG, "too_large"),
    (b'{"deviceId": "sensor001", "temperature": NaN}', "not_a_number"),
    (b'{"deviceId": "sensor001", "temperature": Infinity, "humidity": -Infinity}', "not_a_number"),
    ({"deviceId": "sensor001", "temperature": "21.5"}, "not_a_number"),
    ({"deviceId": "sensor001", "temperature": True}, "not_a_number"),
    ({"temperature": 21.0}, "missing_device_id"),
    ({"deviceId": "", "temperature": 21.0}, "missing_device_id"),
    ({"deviceId": "sensor404", "temperature": 21.0}, "unknown_device"),
    (reading("sensor001", 3600), "timestamp_in_future"),
    (reading("sensor001", -30 * 86400), "timestamp_too_old"),
    ({"deviceId": "sensör001", "temperature": 21.0}, "invalid_device_id"),
    ({"deviceId": "sensor\u0000001", "temperature": 21.0}, "invalid_device_id"),
    ({"deviceId": "sensor\n001", "temperature": 21.0}, "invalid_device_id"),
    (b'{"deviceId": "sensor001", "temperature": 1, "temperature": 99}', "duplicate_keys"),
    ({"deviceId": "sensor001", "timestamp": "last tuesday", "temperature": 1}, "invalid_timestamp"),
    ({"deviceId": "sensor001", "timestamp": iso(), "colour": "red"}, "no_valid_measures"),
    (reading("sensor002", temperature=999, humidity=150), "out_of_range"),
    ("NOT-BASE64", "not_base64"),
]


def corpus_event():
    """Valid readings interleaved with the corpus; returns (event, valid seqs, expected)."""
    records, valid, expected = [], [], {}
    for n, (payload, reason) in enumerate(CORPUS):
        good = reading("sensor001" if n % 2 else "sensor002", -n, temperature=20.0 + n)
        records.append(kinesis_record(good, 2 * n))
        valid.append(seq(2 * n))
        bad = kinesis_record(b"" if payload == "NOT-BASE64" else payload, 2 * n + 1)
        if payload == "NOT-BASE64":
            bad["kinesis"]["data"] = "!!not base64!!"
        records.append(bad)
        expected[seq(2 * n + 1)] = reason
    return {"Records": records}, valid, expected


def test_the_bad_message_corpus_is_quarantined_and_the_rest_written():
    conf = multi_settings(unknown_devices="quarantine")
    evt, valid, expected = corpus_event()
    timestream, queue = FakeTimestream(), FakeQueue()
    outcome, logs = run(evt, conf, timestream=timestream, sqs=queue)

    assert failures(outcome) == []
    written = [r for call in timestream.calls for r in call["Records"]]
    assert len(written) == len(valid)  # one multi-measure record per valid message
    by_seq = {body["sequenceNumber"]: body for body in queue.bodies}
    assert {s: body["reason"] for s, body in by_seq.items()} == expected
    assert all(body["partial"] is False for body in by_seq.values())
    assert by_seq[seq(2 * 3 + 1)]["payloadBase64"]  # the binary one
    assert by_seq[seq(2 * 5 + 1)]["truncated"] is True  # the 1 MiB one
    summary = logs.summary
    assert (summary["received"], summary["written"], summary["quarantined"], summary["retry"]) == (
        2 * len(CORPUS),
        len(CORPUS),
        len(CORPUS),
        0,
    )
    assert summary["balanced"] is True
    assert sum(summary["reasons"].values()) == len(CORPUS)


def test_every_reason_code_is_reachable_and_nothing_else_is_emitted():
    conf = multi_settings(unknown_devices="quarantine")
    evt, _, _ = corpus_event()
    rejecting = FakeTimestream(
        client_error(
            "RejectedRecordsException",
            "rejected",
            RejectedRecords=[{"RecordIndex": 0, "Reason": "Duplicate data"}],
        )
    )
    _, logs = run(evt, conf, timestream=rejecting, sqs=FakeQueue())
    assert set(logs.summary["reasons"]) == set(reasons.REASONS)


def test_the_recipes_test_messages():
    """sensor001-003 are written in the recipe's layout; invalid001 is filtered out."""
    messages = [
        reading("sensor001", temperature=26.3, humidity=60.1, location="factory_floor_1"),
        reading("sensor002", temperature=22.8, humidity=55.3, location="factory_floor_2"),
        reading("sensor003", temperature=28.1, humidity=62.7, location="warehouse"),
        reading("invalid001", temperature=999, humidity=150),
    ]
    timestream, queue = FakeTimestream(), FakeQueue()
    outcome, logs = run(event(*messages), timestream=timestream, sqs=queue)  # no settings file

    (call,) = timestream.calls
    stored = {
        (r["Dimensions"][0]["Value"], r["MeasureName"]): {**call["CommonAttributes"], **r}
        for r in call["Records"]
    }
    assert set(stored) == {
        (device, measure)
        for device in ("sensor001", "sensor002", "sensor003")
        for measure in ("temperature", "humidity")
    }
    one = stored["sensor001", "humidity"]
    dims = call["CommonAttributes"]["Dimensions"] + one["Dimensions"]
    assert {d["Name"]: d["Value"] for d in dims} == {
        "DeviceId": "sensor001",
        "Location": "factory_floor_1",
        "DeviceType": "temperature_sensor",
    }
    assert (one["MeasureValue"], one["MeasureValueType"], one["Time"], one["TimeUnit"]) == (
        "60.1",
        "DOUBLE",
        ms(0),
        "MILLISECONDS",
    )
    assert stored["sensor003", "temperature"]["MeasureValue"] == "28.1"
    (body,) = queue.bodies
    assert (body["deviceId"], body["reason"]) == ("invalid001", "out_of_range")
    assert set(body["rejectedMeasures"]) == {"temperature", "humidity"}
    assert failures(outcome) == []
    assert logs.summary["records_written"] == 6


@pytest.mark.parametrize("model", ["multi", "single"])
def test_records_pass_botocores_validation_end_to_end(model):
    messages = [reading(f"sensor00{n}", n, location="hall") for n in range(1, 4)]
    client = ts_client()
    with Stubber(client) as stub:
        stub.add_response("write_records", {"RecordsIngested": {"Total": 3}})
        outcome, _ = run(event(*messages), multi_settings(record_model=model), timestream=client)
        stub.assert_no_pending_responses()
    assert failures(outcome) == []


def test_some_measures_invalid_writes_the_rest_and_quarantines_the_others():
    timestream, queue = FakeTimestream(), FakeQueue()
    msg = reading("sensor001", temperature=21.0, humidity=150)
    outcome, logs = run(event(msg), multi_settings(), timestream=timestream, sqs=queue)
    (record,) = timestream.calls[0]["Records"]
    assert [v["Name"] for v in record["MeasureValues"]] == ["temperature"]
    (body,) = queue.bodies
    assert body["partial"] is True and body["reason"] == "out_of_range"
    assert body["detail"] == "humidity 150.0 not in [0, 100]"  # names the measure
    assert body["rejectedMeasures"] == {"humidity": "out_of_range: humidity 150.0 not in [0, 100]"}
    summary = logs.summary
    assert (summary["written"], summary["quarantined"], summary["measures_rejected"]) == (1, 0, 1)
    assert failures(outcome) == []


def test_rejected_records_are_quarantined_and_the_others_count_as_written():
    messages = [reading(f"sensor00{n}", n, location="hall") for n in range(3)]
    rejected = client_error(
        "RejectedRecordsException",
        "rejected",
        RejectedRecords=[{"RecordIndex": 1, "Reason": "Duplicate data", "ExistingVersion": 1}],
    )
    queue = FakeQueue()
    outcome, logs = run(
        event(*messages), multi_settings(), timestream=FakeTimestream(rejected), sqs=queue
    )
    (body,) = queue.bodies
    assert body["reason"] == "rejected_by_timestream"
    assert body["sequenceNumber"] == seq(1) and body["partial"] is False
    assert "existing version 1" in body["detail"]
    assert (logs.summary["written"], logs.summary["quarantined"]) == (2, 1)
    assert logs.summary["records_written"] == 2
    assert failures(outcome) == []


def test_single_layout_partial_rejection_keeps_the_message_written():
    rejected = client_error(
        "RejectedRecordsException",
        "rejected",
        RejectedRecords=[{"RecordIndex": 1, "Reason": "Measure value out of bounds"}],
    )
    queue = FakeQueue()
    msg = reading("sensor001", temperature=21.0, humidity=50.0)
    outcome, logs = run(event(msg), timestream=FakeTimestream(rejected), sqs=queue)
    (body,) = queue.bodies
    assert body["partial"] is True
    assert body["rejectedMeasures"] == {
        "humidity": "rejected_by_timestream: Measure value out of bounds"
    }
    assert (logs.summary["written"], logs.summary["measures_rejected"]) == (1, 1)
    assert failures(outcome) == []


def _devices_in(call):
    common = {d["Name"]: d["Value"] for d in call["CommonAttributes"].get("Dimensions", [])}
    return [
        {**common, **{d["Name"]: d["Value"] for d in r["Dimensions"]}}["DeviceId"]
        for r in call["Records"]
    ]


def test_throttling_reports_exactly_the_messages_of_the_failed_request():
    messages = [reading(f"dev{n:03d}", n / 10, location=f"loc{n % 3}") for n in range(250)]
    timestream = FakeTimestream(None, client_error("ThrottlingException", "Rate exceeded"), None)
    outcome, logs = run(event(*messages), multi_settings(), timestream=timestream)
    assert sorted(len(c["Records"]) for c in timestream.calls) == [50, 100, 100]
    throttled = set(_devices_in(timestream.calls[1]))
    expected = sorted((seq(n) for n in range(250) if f"dev{n:03d}" in throttled), key=int)
    assert len(expected) == len(timestream.calls[1]["Records"])
    assert failures(outcome) == expected  # ascending: Lambda resumes from the lowest
    summary = logs.summary
    assert (summary["written"], summary["retry"]) == (250 - len(expected), len(expected))
    assert summary["balanced"] is True
    (warning,) = logs.find("write_failed")
    assert warning["errors"] == ["ThrottlingException: Rate exceeded"]
    assert warning["messages"] == len(expected)


def test_single_layout_a_message_split_across_requests_is_retried_whole():
    # 40 messages x 3 measures = 120 records: d33's first record is the 100th, its other
    # two open the second request, which fails. d33 must be retried, not counted written.
    conf = multi_settings(record_model="single")
    messages = [
        reading(f"d{n:02d}", n, temperature=20.0, humidity=50.0, pressure=1000.0, location="x")
        for n in range(40)
    ]

    def fail_second(params):
        if len(params["Records"]) < 100:
            return client_error("InternalServerException", "oops")
        return None

    timestream = FakeTimestream(default=fail_second)
    outcome, logs = run(event(*messages), conf, timestream=timestream)
    first = next(c for c in timestream.calls if len(c["Records"]) == 100)
    assert first["Records"][-1] == {
        "Dimensions": [{"Name": "DeviceId", "Value": "d33"}],
        "Time": ms(33),
        "MeasureName": "temperature",
        "MeasureValue": "20.0",
    }
    assert failures(outcome) == [seq(n) for n in range(33, 40)]
    summary = logs.summary
    assert (summary["written"], summary["retry"], summary["records_written"]) == (33, 7, 100)


def test_full_timestream_outage_retries_every_valid_message_and_still_quarantines():
    messages = [reading("sensor001", n) for n in range(5)] + [{"deviceId": ""}]
    queue = FakeQueue()
    outage = FakeTimestream(default=client_error("ServiceUnavailable", "down"))
    outcome, logs = run(event(*messages), multi_settings(), timestream=outage, sqs=queue)
    assert failures(outcome) == [seq(n) for n in range(5)]
    assert [b["reason"] for b in queue.bodies] == ["missing_device_id"]
    summary = logs.summary
    assert (summary["written"], summary["quarantined"], summary["retry"]) == (0, 1, 5)
    assert summary["records_written"] == 0


def test_queue_outage_loses_nothing_the_quarantined_messages_are_retried():
    messages = [
        reading("sensor001", 0),
        {"deviceId": "sensor001"},
        reading("sensor002", 1),
        b"garbage",
    ]
    outcome, logs = run(
        event(*messages), multi_settings(), timestream=FakeTimestream(), sqs=FakeQueue(fail="all")
    )
    assert failures(outcome) == [seq(1), seq(3)]
    summary = logs.summary
    assert (summary["written"], summary["quarantined"], summary["retry"]) == (2, 0, 2)
    assert summary["reasons"] == {}
    assert logs.find("quarantine_send_failed")[0]["messages"] == 2


def test_a_partial_entry_that_cannot_be_sent_retries_its_written_message():
    msg = reading("sensor001", temperature=21.0, humidity=150)
    outcome, logs = run(
        event(msg), multi_settings(), timestream=FakeTimestream(), sqs=FakeQueue(fail="all")
    )
    assert failures(outcome) == [seq(0)]
    assert (logs.summary["written"], logs.summary["retry"], logs.summary["measures_rejected"]) == (
        0,
        1,
        0,
    )


def test_entries_the_queue_reports_failed_are_retried():
    messages = [b"x1", b"x2", b"x3"]
    outcome, logs = run(event(*messages), timestream=FakeTimestream(), sqs=FakeQueue(fail={1}))
    assert failures(outcome) == [seq(1)]
    assert (logs.summary["quarantined"], logs.summary["retry"]) == (2, 1)


def test_without_a_queue_quarantined_messages_are_logged():
    outcome, logs = run(event(b"{oops"), timestream=FakeTimestream(), queue_url=None)
    (line,) = logs.find("quarantined")
    assert line["level"] == "WARNING"
    assert line["entry"]["reason"] == "malformed_json"
    assert line["entry"]["payload"] == "{oops"
    assert logs.summary["quarantined"] == 1 and failures(outcome) == []


def test_summary_line_and_emf_agree_and_info_logs_carry_no_valid_payload():
    messages = [reading("sensor001", temperature=12.3456), b"{bad"]
    _, logs = run(event(*messages), multi_settings(), timestream=FakeTimestream(), sqs=FakeQueue())
    summary, emf = logs.summary, logs.emf
    assert summary["level"] == "INFO"
    assert summary["shardId"] == "shardId-000000000000"
    assert (summary["firstSequenceNumber"], summary["lastSequenceNumber"]) == (seq(0), seq(1))
    metrics = emf["_aws"]["CloudWatchMetrics"][0]
    assert metrics["Namespace"] == "iotpipe"
    assert metrics["Dimensions"] == [["FunctionName"]]
    names = {m["Name"] for m in metrics["Metrics"]}
    assert names == {
        "Received",
        "Written",
        "Quarantined",
        "Retry",
        "MeasuresRejected",
        "RecordsWritten",
    }
    assert (emf["Received"], emf["Written"], emf["Quarantined"], emf["Retry"]) == (2, 1, 1, 0)
    assert emf["_aws"]["Timestamp"] == round(NOW * 1000)
    info = [
        line
        for line, doc in zip(logs.lines, logs.docs, strict=True)
        if doc.get("level") in ("INFO", "DEBUG")
    ]
    assert not any("12.3456" in line for line in info)


def test_an_empty_batch():
    timestream = FakeTimestream()
    outcome, logs = run({"Records": []}, timestream=timestream)
    assert outcome.response() == {"batchItemFailures": []}
    assert timestream.calls == []
    assert logs.summary["received"] == 0 and logs.summary["balanced"]


def test_a_redelivered_batch_writes_identical_records_later():
    evt = event(reading("sensor001", -5), {"deviceId": "sensor002", "temperature": 20.0})
    first, second = FakeTimestream(), FakeTimestream()
    run(evt, multi_settings(), timestream=first)
    run(evt, multi_settings(), timestream=second, clock=lambda: NOW + 600)
    assert first.calls == second.calls
    times = sorted(
        r.get("Time") or first.calls[0]["CommonAttributes"]["Time"]
        for r in first.calls[0]["Records"]
    )
    assert times == [ms(-5), ms(-1)]  # the message's time, else arrival (NOW - 1 s)


def test_retry_identifiers_are_ordered_as_integers_not_strings():
    records = [kinesis_record(reading("sensor001", n), n) for n in range(2)]
    records[0]["kinesis"]["sequenceNumber"] = "900"
    records[1]["kinesis"]["sequenceNumber"] = "1000"
    outage = FakeTimestream(default=client_error("ThrottlingException", "x"))
    outcome, _ = run({"Records": records}, timestream=outage)
    assert failures(outcome) == ["900", "1000"]


def test_lambda_handler_shell_reads_environment_and_settings(monkeypatch, tmp_path, capsys):
    from lambda_handler import handler, writer

    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": 1, "record_model": "multi"}))
    monkeypatch.setenv("IOTPIPE_SETTINGS", str(path))
    monkeypatch.setenv("DB_NAME", "recipe-db")
    monkeypatch.setenv("TIMESTREAM_TABLE", "readings")
    monkeypatch.setenv(
        "FAILURE_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/iotpipe-failures"
    )
    monkeypatch.setattr(handler, "_settings", None)
    monkeypatch.setattr(handler, "_clock", lambda: NOW)
    timestream, queue = FakeTimestream(), FakeQueue()
    monkeypatch.setattr(writer, "_clients", {"timestream-write": timestream, "sqs": queue})
    context = type("Context", (), {"function_name": "iotpipe-fn"})()

    response = handler.lambda_handler(event(reading("sensor001"), b"[]"), context)

    assert response == {"batchItemFailures": []}
    (call,) = timestream.calls
    assert (call["DatabaseName"], call["TableName"]) == ("recipe-db", "readings")
    assert call["CommonAttributes"]["MeasureName"] == "metrics"  # the file was read
    assert [b["reason"] for b in queue.bodies] == ["not_an_object"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["FunctionName"] == "iotpipe-fn"
    assert any(line.get("msg") == "batch_summary" for line in lines)
    monkeypatch.setenv("TIMESTREAM_DATABASE", "explicit-db")
    handler.lambda_handler(event(reading("sensor001")), context)
    assert timestream.calls[-1]["DatabaseName"] == "explicit-db"


def test_target_defaults_are_the_recipes():
    from lambda_handler.handler import Target

    assert Target.from_environ({}) == Target("iot-sensor-db", "sensor-data", None)
