"""Issue 8, items 7 and 10: inputs that raised, the time window, malformed events, and
one log line per quarantined message (the recipe's `Temperature out of range` check)."""

from __future__ import annotations

import json

import pytest
from handler_helpers import (
    NOW,
    FakeQueue,
    FakeTimestream,
    event,
    failures,
    iso,
    kinesis_record,
    multi_settings,
    reading,
    run,
    seq,
)

from lambda_handler import handler, notices, settings, writer

# --- item 7: the overflow timestamp no longer raises, the batch is not retried ---------


def test_a_400_digit_timestamp_is_quarantined_and_the_batch_goes_on():
    bad = b'{"deviceId": "sensor001", "temperature": 21.0, "timestamp": ' + b"1" * 400 + b"}"
    evt = event(reading("sensor001"), bad, reading("sensor002"))
    timestream, queue = FakeTimestream(), FakeQueue()
    outcome, logs = run(evt, multi_settings(), timestream=timestream, sqs=queue)
    assert failures(outcome) == []  # nothing retried: the shard is not blocked
    (body,) = queue.bodies
    assert (body["reason"], body["sequenceNumber"]) == ("invalid_timestamp", seq(1))
    assert body["payload"] == bad.decode()  # the payload is kept for a replay
    assert logs.summary["written"] == 2 and logs.summary["quarantined"] == 1


def test_year_one_is_quarantined_even_with_magnetic_writes_and_no_retention_setting():
    conf = multi_settings(magnetic_writes=True)  # a settings file from before the fix
    msg = reading("sensor001", timestamp="0001-01-01T00:00:00+14:00")
    timestream, queue = FakeTimestream(), FakeQueue()
    outcome, _ = run(event(msg), conf, timestream=timestream, sqs=queue)
    assert timestream.calls == [] and failures(outcome) == []
    assert queue.bodies[0]["reason"] == "timestamp_too_old"


def test_older_than_the_magnetic_retention_is_quarantined_not_sent_to_timestream():
    conf = multi_settings(magnetic_writes=True, magnetic_retention_days=365)
    old, recent = reading("sensor001", -366 * 86400), reading("sensor002", -300 * 86400)
    timestream, queue = FakeTimestream(), FakeQueue()
    outcome, _ = run(event(old, recent), conf, timestream=timestream, sqs=queue)
    (call,) = timestream.calls
    assert len(call["Records"]) == 1  # only the 300-day-old reading
    assert [b["reason"] for b in queue.bodies] == ["timestamp_too_old"]
    assert "365 days" in queue.bodies[0]["detail"]
    assert failures(outcome) == []


# --- item 7: malformed events are a clear ValueError, logged once, nothing touched -----


@pytest.mark.parametrize(
    ("evt", "says"),
    [
        ({"Records": True}, "Records is the boolean true, not an array"),
        ([1, 2], "the event is an array"),
        ({"key1": "value1"}, "the event has no Records"),  # the console's test event
        ({"Records": [kinesis_record(reading(), 0), 7]}, "Records[1] is a number"),
        ({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}, "eventSource 'aws:sqs'"),
        ({"Records": [{"kinesis": {"sequenceNumber": "1"}}]}, "Records[0].kinesis.data"),
    ],
)
def test_a_malformed_event_raises_a_value_error_and_logs_one_error_line(evt, says):
    timestream, queue = FakeTimestream(), FakeQueue()
    with pytest.raises(ValueError, match="not a Kinesis event") as raised:
        run(evt, timestream=timestream, sqs=queue)
    assert says in str(raised.value)
    assert timestream.calls == [] and queue.calls == []  # nothing written or quarantined


def test_the_malformed_event_error_line_is_one_json_line():
    from handler_helpers import Captured

    captured = Captured()
    with pytest.raises(ValueError):
        handler.process(
            {"Records": True},
            settings.Settings(),
            timestream=FakeTimestream(),
            sqs=None,
            target=handler.Target(),
            clock=lambda: NOW,
            executor=writer.InlineExecutor(),
            log=captured.log,
        )
    (line,) = captured.docs
    assert line["level"] == "ERROR" and line["msg"] == "malformed_event"
    assert "Records is the boolean true" in line["error"]


def test_the_lambda_shell_raises_value_error_not_type_error(monkeypatch):
    monkeypatch.setattr(handler, "_settings", settings.Settings())
    monkeypatch.setattr(
        writer, "_clients", {"timestream-write": FakeTimestream(), "sqs": FakeQueue()}
    )
    with pytest.raises(ValueError, match="Records is the boolean true"):
        handler.lambda_handler({"Records": True}, None)


def test_an_empty_records_list_is_an_empty_batch_not_an_error():
    outcome, logs = run({"Records": []}, timestream=FakeTimestream())
    assert outcome.response() == {"batchItemFailures": []}
    assert not logs.find("malformed_event")


# --- item 10: one line per quarantined message, in the recipe's words ------------------


def _notice_lines(logs):
    return [d for d in logs.docs if d.get("level") == "WARNING" and ("reason" in d or "more" in d)]


def test_the_recipes_invalid_message_logs_temperature_out_of_range():
    """The recipe's step: put invalid001 (999, 150), then filter for the phrase."""
    invalid = reading("invalid001", temperature=999, humidity=150)
    outcome, logs = run(
        event(reading("sensor001"), invalid), timestream=FakeTimestream(), sqs=FakeQueue()
    )
    assert failures(outcome) == []
    matching = [line for line in logs.lines if "Temperature out of range" in line]
    (line,) = matching  # what `--filter-pattern "Temperature out of range"` finds
    doc = json.loads(line)
    assert doc["msg"] == (
        "Temperature out of range: 999.0 not in (-50, 150); "
        "Humidity out of range: 150.0 not in [0, 100] (device invalid001)"
    )
    assert doc["reason"] == "out_of_range" and doc["deviceId"] == "invalid001"
    assert doc["measures"] == ["humidity", "temperature"]
    assert doc["sequenceNumber"] == seq(1)


def test_a_partial_message_names_only_the_refused_measure():
    msg = reading("sensor001", temperature=415.98, humidity=40.0)
    _, logs = run(event(msg), multi_settings(), timestream=FakeTimestream(), sqs=FakeQueue())
    (doc,) = _notice_lines(logs)
    assert doc["msg"] == (
        "Temperature out of range: 415.98 not in (-50, 150) "
        "(device sensor001; its other measures were written)"
    )
    assert doc["partial"] is True


def test_other_reasons_get_a_line_too_and_no_line_carries_the_payload():
    secret = "api-key-0123456789abcdef"
    bad = [
        {"deviceId": "sensor001", "temperature": True, "token": secret},
        {"deviceId": "sensor001", "timestamp": "last tuesday", "temperature": 1, "t": secret},
        b'{"deviceId": "sensor001", "x": "' + secret.encode() + b'"',
        {"temperature": 1.0, "note": secret},
    ]
    _, logs = run(event(*bad), multi_settings(), timestream=FakeTimestream(), sqs=FakeQueue())
    texts = [d["msg"] for d in _notice_lines(logs)]
    assert texts == [
        "Temperature is not a number: boolean true is not a number (device sensor001)",
        "Quarantined invalid_timestamp: 'last tuesday' is not ISO-8601 (device sensor001)",
        texts[2],
        "Quarantined missing_device_id: deviceId is missing or empty (device unknown)",
    ]
    assert texts[2].startswith("Quarantined malformed_json: ")
    assert not any(secret in line for line in logs.lines)


def test_log_lines_are_bounded_in_length():
    long_reason = "x" * 5000
    conf = settings.from_dict(
        {"version": 1, "sensors": {"t" * 200: {"min": 0, "max": 1}}, "record_model": "multi"}
    )
    msg = {"deviceId": "d" * 128, "t" * 200: 5.0, "pad": long_reason}
    _, logs = run(event(msg), conf, timestream=FakeTimestream(), sqs=FakeQueue())
    (doc,) = _notice_lines(logs)
    assert len(doc["msg"]) <= notices.MAX_TEXT
    assert long_reason not in json.dumps(doc)


def test_ten_thousand_bad_messages_log_at_most_a_hundred_lines_and_a_count():
    bad = [reading("sensor001", temperature=500.0 + n) for n in range(10_000)]
    _, logs = run(event(*bad), multi_settings(), timestream=FakeTimestream(), sqs=FakeQueue())
    lines = _notice_lines(logs)
    assert len(lines) == notices.MAX_LINES + 1
    assert all("Temperature out of range" in d["msg"] for d in lines[:-1])
    assert lines[-1]["more"] == 10_000 - notices.MAX_LINES
    assert lines[-1]["msg"].startswith("and 9900 more quarantined messages")
    assert logs.summary["quarantined"] == 10_000  # every one still counted


def test_messages_whose_quarantine_send_failed_are_retried_and_not_logged_as_quarantined():
    bad = reading("sensor001", temperature=500.0)
    outcome, logs = run(event(bad), timestream=FakeTimestream(), sqs=FakeQueue(fail="all"))
    assert failures(outcome) == [seq(0)]
    assert _notice_lines(logs) == []


def test_without_a_queue_the_line_is_logged_next_to_the_entry():
    bad = reading("sensor001", temperature=500.0, timestamp=iso())
    _, logs = run(event(bad), timestream=FakeTimestream(), sqs=None)
    assert [d["msg"] for d in _notice_lines(logs)] == [
        "Temperature out of range: 500.0 not in (-50, 150) (device sensor001)"
    ]
    assert logs.find("quarantined")[0]["entry"]["reason"] == "out_of_range"
