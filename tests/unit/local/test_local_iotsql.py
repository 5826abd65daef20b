"""IoT SQL subset and topic filters (pure)."""

import pytest

from iotpipe.local.iotrules import topic_matches
from iotpipe.local.iotsql import IotSqlError, PublishedMessage, parse_rule, substitute

RULE = "SELECT *, timestamp() AS processing_time FROM 'iot/sensors/+/data'"


@pytest.mark.parametrize(
    ("flt", "topic", "ok"),
    [
        ("iot/sensors/+/data", "iot/sensors/dev1/data", True),
        ("iot/sensors/+/data", "iot/sensors/dev1/extra/data", False),
        ("iot/sensors/+/data", "iot/sensors/data", False),
        ("iot/#", "iot/sensors/a/b", True),
        ("iot/#", "iot", True),
        ("#", "anything/at/all", True),
        ("a/b", "a/b", True),
        ("a/b", "a/c", False),
        ("a/+", "a/b/c", False),
    ],
)
def test_topic_filter(flt, topic, ok):
    assert topic_matches(flt, topic) is ok


def ctx(payload, topic="iot/sensors/dev1/data"):
    return PublishedMessage(payload=payload, topic=topic, client_id="c1", timestamp_ms=1234)


def test_select_star_with_timestamp():
    rule = parse_rule(RULE)
    assert rule.topic_filter == "iot/sensors/+/data"
    out = rule.evaluate(ctx({"deviceId": "dev1", "temperature": 21.5}))
    assert out == {"deviceId": "dev1", "temperature": 21.5, "processing_time": 1234}


def test_where_paths_functions_and_undefined():
    rule = parse_rule(
        "SELECT deviceId, reading.value AS v, topic(3) AS dev, upper(kind) AS k, "
        "temperature * 2 + 1 AS t2, missing FROM 'iot/#' "
        "WHERE temperature > 20 AND (kind = 'a' OR NOT flag) AND deviceId IS NOT NULL"
    )
    msg = {
        "deviceId": "d",
        "reading": {"value": [1, 2]},
        "kind": "a",
        "temperature": 21,
        "flag": True,
    }
    assert rule.evaluate(ctx(msg)) == {
        "deviceId": "d",
        "v": [1, 2],
        "dev": "dev1",
        "k": "A",
        "t2": 43,
    }
    assert rule.evaluate(ctx({**msg, "temperature": 19})) is None
    assert rule.evaluate(ctx({"kind": "a"})) is None  # comparisons with Undefined are not true


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM 'a' WHERE x IN (1, 2)",
        "SELECT get(a, 1) FROM 'a'",
        "SELECT CASE WHEN x THEN 1 END FROM 'a'",
        "SELECT * FROM 'a' ORDER BY x",
        "SELECT * FROM a",
        "SELECT * FROM 'a' extra",
    ],
)
def test_unsupported_sql_is_rejected(sql):
    with pytest.raises(IotSqlError):
        parse_rule(sql)


def test_sql_version():
    with pytest.raises(IotSqlError, match="version"):
        parse_rule(RULE, "2015-10-08")


def test_substitution_templates():
    c = ctx({"deviceId": "dev7", "n": 3, "nested": {"a": True}})
    assert substitute("${deviceId}", c) == "dev7"
    assert substitute("k-${n}-${nested.a}-${topic(2)}", c) == "k-3-true-sensors"
    assert substitute("${missing}", c) == ""
    assert len(substitute("${newuuid()}", c)) == 36
    with pytest.raises(IotSqlError):
        substitute("${nosuchfn()}", c)


@pytest.mark.parametrize(
    ("payload", "as_json"),
    [
        (b'{"a": 1}', {"a": 1}),
        (b"", {}),  # IoT Core: "an empty or a JSON payload" can have data added
        (b"  \n", {}),
        (b"80", None),  # IoT Core's own example of a non-JSON payload
        (b"[1, 2]", None),
        (b'"text"', None),
        (b"{bad", None),
        (b"\xff\xfe binary", None),
    ],
)
def test_what_counts_as_a_json_payload(payload, as_json):
    from iotpipe.local.iotrules import _json_object

    assert _json_object(payload) == as_json


def test_star_only_rules_accept_non_json_and_others_do_not():
    assert parse_rule("SELECT * FROM 'a/#' WHERE timestamp() > 0").select_star_only
    assert not parse_rule(RULE).select_star_only
