"""Validation rules, one at a time: deviceId, measures, time."""

from __future__ import annotations

import math

import pytest
from handler_helpers import NOW, iso, kinesis_record, multi_settings, reading

from lambda_handler import decode, settings, validate
from lambda_handler.model import Reading, Rejection
from lambda_handler.reasons import Problem
from lambda_handler.settings import SensorRule

NOW_MS = round(NOW * 1000)
RECIPE = settings.Settings()


# --- deviceId -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["sensor001", "a", "x" * 128, "dev-1_a.b:c@d"])
def test_valid_device_ids(value):
    assert validate.check_device_id(value) == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "missing_device_id"),
        ("", "missing_device_id"),
        (" ", "invalid_device_id"),
        (" sensor001", "invalid_device_id"),
        ("x" * 129, "invalid_device_id"),
        ("sensor\u00e9", "invalid_device_id"),  # unicode
        ("sens\u0430r", "invalid_device_id"),  # Cyrillic look-alike
        ("sensor\n001", "invalid_device_id"),  # control characters
        ("sensor\x00", "invalid_device_id"),
        ("sensor001\n", "invalid_device_id"),  # `$` would let this one through
        ("a/b", "invalid_device_id"),
        (42, "invalid_device_id"),
        (True, "invalid_device_id"),
        (["sensor001"], "invalid_device_id"),
    ],
)
def test_invalid_device_ids(value, reason):
    problem = validate.check_device_id(value)
    assert isinstance(problem, Problem) and problem.reason == reason


def test_a_long_device_id_is_clipped_in_the_detail():
    problem = validate.check_device_id("\u00e9" * 5000)
    assert len(problem.detail) < 200


# --- measures -------------------------------------------------------------------------

TEMP = SensorRule("temperature", -50, 150, inclusive=False)


@pytest.mark.parametrize(
    ("value", "numeric_strings", "expected"),
    [
        (22.5, False, 22.5),
        (22, False, 22.0),
        (-49.99, False, -49.99),
        ("21.5", True, 21.5),
        ("-1e1", True, -10.0),
        (".5", True, 0.5),
    ],
)
def test_accepted_values(value, numeric_strings, expected):
    assert validate.check_value(TEMP, value, numeric_strings) == expected


@pytest.mark.parametrize(
    ("value", "numeric_strings", "reason", "detail"),
    [
        (150, False, "out_of_range", "150.0 not in (-50, 150)"),
        (-50.0, False, "out_of_range", "(-50, 150)"),
        (999, False, "out_of_range", "999.0"),
        (math.nan, False, "not_a_number", "nan"),
        (math.inf, False, "not_a_number", "inf"),
        (-math.inf, False, "not_a_number", "inf"),
        (True, False, "not_a_number", "boolean true"),
        (False, False, "not_a_number", "boolean false"),
        ("21.5", False, "not_a_number", "numeric strings are not accepted"),
        ("NaN", True, "not_a_number", "not numeric"),
        ("Infinity", True, "not_a_number", "not numeric"),
        ("21,5", True, "not_a_number", "not numeric"),
        (" 21.5", True, "not_a_number", "not numeric"),
        ("1e999", True, "not_a_number", "inf"),
        ("999", True, "out_of_range", "999.0"),
        ({"value": 1}, False, "not_a_number", "a JSON object"),
        ([1], False, "not_a_number", "a JSON array"),
        (10**400, False, "not_a_number", "too large"),
    ],
)
def test_rejected_values(value, numeric_strings, reason, detail):
    problem = validate.check_value(TEMP, value, numeric_strings)
    assert isinstance(problem, Problem)
    assert problem.reason == reason
    assert detail in problem.detail


def test_measures_split_into_valid_and_rejected_in_sensor_order():
    conf = multi_settings()
    body = {"humidity": 150, "temperature": 21, "pressure": None, "colour": "red", "vibration": "3"}
    valid, rejected = validate.check_measures(body, conf)
    assert valid == {"temperature": 21.0}
    assert list(rejected) == ["humidity", "vibration"]
    assert rejected["humidity"].reason == "out_of_range"
    assert rejected["vibration"].reason == "not_a_number"


def test_fast_path_agrees_with_slow_path_on_nan_and_bounds():
    inclusive = SensorRule("h", 0, 100, inclusive=True)
    conf = settings.Settings(sensors=(inclusive,))
    assert validate.check_measures({"h": 100.0}, conf) == ({"h": 100.0}, {})
    assert validate.check_measures({"h": math.nan}, conf)[1]["h"].reason == "not_a_number"
    assert validate.check_measures({"h": 100.5}, conf)[1]["h"].reason == "out_of_range"


# --- time -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected_ms"),
    [
        ("2026-11-27T08:00:00Z", NOW_MS),
        ("2026-11-27T08:00:00.123Z", NOW_MS + 123),
        ("2026-11-27T09:30:00+01:30", NOW_MS),
        ("2026-11-27T03:00:00-05:00", NOW_MS),
        ("20261127T080000Z", NOW_MS),
        (NOW, NOW_MS),
        (NOW + 0.25, NOW_MS + 250),
        (int(NOW), NOW_MS),
        (NOW_MS, NOW_MS),
        (str(int(NOW)), NOW_MS),
        (str(NOW_MS), NOW_MS),
    ],
)
def test_timestamp_formats(value, expected_ms):
    assert validate.parse_timestamp(value) == expected_ms


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-27T08:00:00",  # no offset: ambiguous
        "yesterday",
        "2026-13-45T00:00:00Z",
        "",
        True,
        [NOW],
        {"s": 1},
        -5,
        0,
        math.nan,
        1e20,
    ],
)
def test_invalid_timestamps(value):
    problem = validate.parse_timestamp(value)
    assert isinstance(problem, Problem) and problem.reason == "invalid_timestamp"


def test_the_message_time_wins_over_arrival():
    assert validate.choose_time(iso(-60), NOW - 1, RECIPE, NOW_MS) == NOW_MS - 60_000


def test_arrival_time_when_the_message_has_none_never_the_processing_time():
    assert validate.choose_time(None, NOW - 7.5, RECIPE, NOW_MS) == NOW_MS - 7_500


def test_no_time_at_all_is_invalid():
    assert validate.choose_time(None, None, RECIPE, NOW_MS).reason == "invalid_timestamp"


def test_future_limit_is_fifteen_minutes():
    assert validate.choose_time(iso(15 * 60), None, RECIPE, NOW_MS) == NOW_MS + 900_000
    problem = validate.choose_time(iso(15 * 60 + 1), None, RECIPE, NOW_MS)
    assert problem.reason == "timestamp_in_future"
    assert "2026-11-27T08:15:01.000Z" in problem.detail


def test_older_than_memory_retention_without_magnetic_writes_is_too_old():
    assert validate.choose_time(iso(-24 * 3600), None, RECIPE, NOW_MS) == NOW_MS - 86_400_000
    problem = validate.choose_time(iso(-24 * 3600 - 1), None, RECIPE, NOW_MS)
    assert problem.reason == "timestamp_too_old"
    assert "24 h" in problem.detail


def test_with_magnetic_writes_old_data_is_accepted_up_to_magnetic_retention():
    conf = multi_settings(magnetic_writes=True)
    assert validate.choose_time(iso(-400 * 86400), None, conf, NOW_MS) == NOW_MS - 400 * 86_400_000
    bounded = multi_settings(magnetic_writes=True, magnetic_retention_days=365)
    assert validate.choose_time(iso(-366 * 86400), None, bounded, NOW_MS).reason == (
        "timestamp_too_old"
    )


def test_arrival_time_is_also_checked():
    problem = validate.choose_time(None, NOW - 2 * 86400, RECIPE, NOW_MS)
    assert problem.reason == "timestamp_too_old"


# --- whole messages -------------------------------------------------------------------


def _evaluate(body, conf=RECIPE):
    return validate.evaluate(decode.item_from_record(0, kinesis_record(body, 0)), conf, NOW_MS)


def test_a_valid_message_becomes_a_reading():
    result = _evaluate(reading(temperature=26.3, humidity=60.1, location="factory_floor_1"))
    assert isinstance(result, Reading)
    assert result.device_id == "sensor001"
    assert result.time_ms == NOW_MS
    assert result.measures == {"temperature": 26.3, "humidity": 60.1}
    assert result.rejected == {}


def test_some_measures_invalid_keeps_the_rest():
    result = _evaluate(reading(temperature=22.0, humidity=150))
    assert isinstance(result, Reading)
    assert result.measures == {"temperature": 22.0}
    assert result.rejected["humidity"].text() == "out_of_range: humidity 150.0 not in [0, 100]"


def test_all_measures_invalid_takes_the_first_measure_reason():
    result = _evaluate(reading("invalid001", temperature=999, humidity=150))
    assert isinstance(result, Rejection)
    assert result.problem.reason == "out_of_range"
    assert set(result.rejected) == {"temperature", "humidity"}
    assert result.device_id == "invalid001"


def test_no_known_measure_is_no_valid_measures():
    result = _evaluate({"deviceId": "s1", "timestamp": iso(), "colour": 3, "humidity": None})
    assert isinstance(result, Rejection)
    assert result.problem.reason == "no_valid_measures"
    assert "temperature, humidity" in result.problem.detail


def test_the_first_failing_rule_decides():
    assert _evaluate({"timestamp": "bad", "temperature": 999}).problem.reason == "missing_device_id"
    assert _evaluate({"deviceId": "s1", "timestamp": "bad"}).problem.reason == "invalid_timestamp"


def test_invalid_device_id_is_kept_for_the_quarantine_only_when_a_string():
    assert _evaluate({"deviceId": "bad id", "temperature": 1}).device_id == "bad id"
    assert _evaluate({"deviceId": 17, "temperature": 1}).device_id is None


def test_identity_is_memoised_per_settings_and_bounded(monkeypatch):
    conf = multi_settings()
    first = validate.identify({"deviceId": "sensor001"}, conf)
    assert validate.identify({"deviceId": "sensor001"}, conf) is first
    assert validate.identify({"deviceId": ["x"]}, conf).reason == "invalid_device_id"
    monkeypatch.setattr(validate, "MAX_CACHE", 2)
    for n in range(5):
        validate.identify({"deviceId": f"d{n}"}, conf)
    assert len(conf.cache) <= 2


# --- issue 8 item 7: inputs that used to raise, and Timestream's time window -----------


@pytest.mark.parametrize(
    "value",
    [10**400, -(10**400), 2**1024, int("9" * 4000)],
    ids=["1e400", "-1e400", "2**1024", "4000 nines"],
)
def test_an_integer_timestamp_too_large_for_a_double_is_invalid_not_an_overflow(value):
    problem = validate.parse_timestamp(value)
    assert isinstance(problem, Problem)
    assert problem.reason == "invalid_timestamp"
    assert "too large" in problem.detail and len(problem.detail) < 100


def test_the_overflow_timestamp_message_is_quarantined_as_invalid_timestamp():
    raw = b'{"deviceId": "sensor001", "temperature": 21.0, "timestamp": ' + b"1" * 400 + b"}"
    result = validate.evaluate(decode.item_from_record(0, kinesis_record(raw, 0)), RECIPE, NOW_MS)
    assert isinstance(result, Rejection)
    assert result.problem.reason == "invalid_timestamp"


MAGNETIC_UNBOUNDED = multi_settings(magnetic_writes=True)  # a file without the retention


@pytest.mark.parametrize(
    ("timestamp", "conf", "says"),
    [
        ("0001-01-01T00:00:00+14:00", MAGNETIC_UNBOUNDED, "73000 days"),
        ("0001-01-01T00:00:00Z", MAGNETIC_UNBOUNDED, "73000 days"),
        ("1969-12-31T23:59:59.999Z", MAGNETIC_UNBOUNDED, "before 1970-01-01"),
        ("1900-01-01T00:00:00Z", MAGNETIC_UNBOUNDED, "before 1970-01-01"),
        ("0001-01-01T00:00:00+14:00", RECIPE, "memory store's 24 h"),
        (
            "2025-11-26T08:00:00Z",
            multi_settings(magnetic_writes=True, magnetic_retention_days=365),
            "magnetic store's 365 days",
        ),
    ],
)
def test_a_time_outside_timestreams_window_is_quarantined(timestamp, conf, says):
    problem = validate.choose_time(timestamp, None, conf, NOW_MS)
    assert isinstance(problem, Problem), problem
    assert problem.reason == "timestamp_too_old"
    assert says in problem.detail


def test_the_window_edges_are_accepted():
    conf = multi_settings(magnetic_writes=True, magnetic_retention_days=365)
    oldest = NOW_MS - 365 * 86_400_000
    assert validate.check_window(oldest, conf, NOW_MS) == oldest
    assert validate.check_window(oldest - 1, conf, NOW_MS).reason == "timestamp_too_old"
    assert validate.check_window(0, MAGNETIC_UNBOUNDED, NOW_MS) == 0  # 1970-01-01 itself
    assert validate.check_window(-1, MAGNETIC_UNBOUNDED, NOW_MS).reason == "timestamp_too_old"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("9999-12-31T23:59:59-14:00", "timestamp_in_future"),  # past datetime's max in UTC
        (1e308, "invalid_timestamp"),
        (-0.0, "invalid_timestamp"),
        ("1" * 16, "invalid_timestamp"),  # digit strings: 1-15 digits are epoch s/ms
        ("9" * 5000, "invalid_timestamp"),
        ("2026-11-27T08:00:00\x00Z", "invalid_timestamp"),
        ("2026-11-27T08:00:00Z\x00 and anything", "invalid_timestamp"),
        ("\ud800", "invalid_timestamp"),
    ],
)
def test_odd_timestamps_get_a_reason(value, reason):
    problem = validate.choose_time(value, None, MAGNETIC_UNBOUNDED, NOW_MS)
    assert isinstance(problem, Problem) and problem.reason == reason


def test_a_digit_string_timestamp_is_epoch_seconds_or_milliseconds():
    assert validate.parse_timestamp(str(NOW_MS // 1000)) == NOW_MS // 1000 * 1000
    assert validate.parse_timestamp(str(NOW_MS)) == NOW_MS


# --- issue 8 item 10: the detail names the measure ------------------------------------


@pytest.mark.parametrize(
    ("value", "numeric_strings", "detail"),
    [
        (415.98, False, "temperature 415.98 not in (-50, 150)"),
        (True, False, "temperature: boolean true is not a number"),
        ("21.5", False, "temperature: string '21.5' (numeric strings are not accepted)"),
        ({"v": 1}, False, "temperature: a JSON object is not a number"),
        (math.nan, False, "temperature: nan is not a finite number"),
        (10**400, False, "temperature: integer too large for a double"),
    ],
    ids=["range", "bool", "string", "object", "nan", "huge int"],
)
def test_measure_details_name_the_measure(value, numeric_strings, detail):
    problem = validate.check_value(TEMP, value, numeric_strings)
    assert (problem.detail, problem.measure) == (detail, "temperature")


def test_numeric_strings_are_bounded_and_matched_in_linear_time():
    assert validate.check_value(TEMP, "1" * 101, True).detail.endswith("is not numeric")
    assert validate.check_value(TEMP, "1" * 95 + "e-90", True).reason == "out_of_range"
    # The old pattern backtracked quadratically (minutes for 100,000 characters); the
    # new one must agree with it on the strings it was meant for.
    for text in ["1", "1.", ".5", "+1.5e3", "-0", "1e", "e1", ".", "1..2", "1.2.3", "--1"]:
        expected = text not in {"1e", "e1", ".", "1..2", "1.2.3", "--1"}
        assert (validate.NUMERIC.fullmatch(text) is not None) is expected, text


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_an_unbounded_range_never_lets_infinity_through_the_fast_path(value):
    conf = settings.from_dict({"version": 1, "sensors": {"t": {"min": None, "max": None}}})
    valid, rejected = validate.check_measures({"t": value}, conf)
    assert valid == {} and rejected["t"].reason == "not_a_number"
    assert validate.check_measures({"t": 1.7e308}, conf) == ({"t": 1.7e308}, {})


def test_long_identities_are_checked_but_not_memoised():
    """A warm container must not keep 50,000 one-MiB deviceIds (or locations) alive."""
    conf = multi_settings()
    for n in range(20):
        body = {"deviceId": f"{n}" + "x" * 100_000, "temperature": 1.0}
        assert validate.identify(body, conf).reason == "invalid_device_id"
        located = {"deviceId": "sensor001", "location": f"{n}" + "y" * 100_000}
        assert validate.identify(located, conf).device_id == "sensor001"
    assert conf.cache == {}
    validate.identify({"deviceId": "sensor001", "location": "floor 2"}, conf)
    assert len(conf.cache) == 1
