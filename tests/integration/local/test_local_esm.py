"""Event source mapping semantics: partial batches, bisect, retries, crashes, updates.

Every batch-failure test checks the same ledger: each good record is in Timestream
exactly once, each bad record is in exactly one failure record's sequence range, and
the failure records do not overlap (nothing lost, nothing duplicated).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from localaws_helpers import TEST_HANDLER, make_zip, wait_for

pytestmark = pytest.mark.integration


def messages(n, bad=(), **flags):
    now = int(time.time() * 1000)
    return [{"id": f"r{i}", "t": now - i, **({**flags} if i in bad else {})} for i in range(n)]


def covered(failure_records):
    ranges = sorted(
        (
            int(f["KinesisBatchInfo"]["startSequenceNumber"]),
            int(f["KinesisBatchInfo"]["endSequenceNumber"]),
        )
        for f in failure_records
    )
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end < start, f"failure records overlap: {ranges}"
    return ranges


def in_ranges(seq, ranges):
    return any(a <= int(seq) <= b for a, b in ranges)


def check_ledger(p, msgs, seqs, bad, failures):
    good = sorted(m["id"] for i, m in enumerate(msgs) if i not in bad)
    wait_for(lambda: p.device_ids() == good, what="the good records in Timestream")
    assert p.query("SELECT count(*) AS n FROM {t}")[0]["n"] == str(len(good))  # no duplicates
    ranges = covered(failures)
    for i in bad:
        assert in_ranges(seqs[i], ranges), f"bad record {i} is in no failure record"
    info = failures[0]["KinesisBatchInfo"]
    assert info["streamArn"] == p.stream_arn and info["shardId"] == "shardId-000000000000"
    assert failures[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failures[0]["version"] == "1.0" and failures[0]["timestamp"].endswith("Z")


def test_partial_batch_response_resumes_from_lowest_failure(pipeline):
    p = pipeline()
    msgs = messages(6, bad={2}, fail=True)
    seqs = p.put(msgs)
    p.mapping_id = _map(p, MaximumRetryAttempts=1)
    failures = p.failure_records(1)
    check_ledger(p, msgs, seqs, {2}, failures)
    info = failures[0]["KinesisBatchInfo"]
    # retried from the lowest failed record: the range starts exactly there
    assert info["startSequenceNumber"] == seqs[2] and info["endSequenceNumber"] == seqs[5]
    assert failures[0]["requestContext"]["approximateInvokeCount"] == 2


def test_bisect_isolates_bad_records(pipeline):
    p = pipeline(env={"MODE": "raise"})
    msgs = messages(8, bad={1, 6}, fail=True)
    seqs = p.put(msgs)
    _map(p, MaximumRetryAttempts=0, BisectBatchOnFunctionError=True, FunctionResponseTypes=[])
    failures = p.failure_records(2)
    check_ledger(p, msgs, seqs, {1, 6}, failures)
    assert sorted(f["KinesisBatchInfo"]["batchSize"] for f in failures) == [1, 1]
    assert all(f["responseContext"]["functionError"] == "Unhandled" for f in failures)


def test_retry_exhaustion_sends_the_whole_batch(pipeline):
    p = pipeline(env={"MODE": "raise"})
    msgs = messages(4, bad={3}, fail=True)
    seqs = p.put(msgs)
    _map(p, MaximumRetryAttempts=2, FunctionResponseTypes=[])
    failures = p.failure_records(1)
    info = failures[0]["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        seqs[0],
        seqs[3],
        4,
    )
    assert failures[0]["requestContext"]["approximateInvokeCount"] == 3
    check_ledger(p, msgs, seqs, {3}, failures)  # the good ones were written (idempotently)


def test_timeout_and_crash_are_recorded_and_the_worker_restarted(pipeline, local_aws):
    p = pipeline(timeout=1)
    _map(p, MaximumRetryAttempts=0, BatchSize=1)
    seqs = p.put([{"id": "slow", "t": 1, "sleep": 5}])
    timed_out = p.failure_records(1)[0]
    assert timed_out["KinesisBatchInfo"]["startSequenceNumber"] == seqs[0]
    p.put([{"id": "boom", "t": 2, "crash": True}])
    p.failure_records(1)
    p.put([{"id": "fine", "t": int(time.time() * 1000)}])
    wait_for(lambda: p.device_ids() == ["fine"], what="the record after the crash")
    fn = {f["name"]: f for f in local_aws.status()["functions"]}[p.function]
    assert (fn["timeouts"], fn["crashes"], fn["errors"]) == (1, 1, 2)
    assert fn["restarts"] == 2 and fn["pid"]
    log = Path(fn["log"]).read_text()
    assert "Task timed out after 1.00 seconds" in log and "Runtime exited with error" in log
    logs = local_aws.client("logs")

    def in_cloudwatch():
        try:
            group = f"/aws/lambda/{p.function}"
            return logs.filter_log_events(logGroupName=group, filterPattern="written")["events"]
        except logs.exceptions.ResourceNotFoundException:
            return []

    wait_for(in_cloudwatch, what="function output in CloudWatch Logs")


def test_code_update_mapping_update_and_delete_take_effect(pipeline, local_aws):
    p = pipeline()
    lam = local_aws.client("lambda")
    uuid = _map(p, MaximumBatchingWindowInSeconds=0)
    now = int(time.time() * 1000)
    p.put([{"id": "a", "t": now}])
    wait_for(
        lambda: p.query("SELECT measure_name FROM {t}") == [{"measure_name": "v1"}], what="v1 row"
    )
    v2 = TEST_HANDLER.replace('os.environ.get("TAG", "v1")', '"v2"')
    lam.update_function_code(FunctionName=p.function, ZipFile=make_zip({"fn.py": v2}))
    p.put([{"id": "b", "t": now + 1}])
    wait_for(
        lambda: {"measure_name": "v2"} in p.query("SELECT measure_name FROM {t}"), what="v2 row"
    )
    lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert lam.get_event_source_mapping(UUID=uuid)["State"] == "Disabled"
    p.put([{"id": "c", "t": now + 2}])
    time.sleep(0.6)  # proving an absence needs a little time
    assert "c" not in p.device_ids()
    lam.update_event_source_mapping(UUID=uuid, Enabled=True, BatchSize=5)
    wait_for(lambda: "c" in p.device_ids(), what="processing after re-enabling")
    lam.delete_event_source_mapping(UUID=uuid)
    p.put([{"id": "d", "t": now + 3}])
    time.sleep(0.6)
    assert p.device_ids() == ["a", "b", "c"]
    assert uuid not in {m["uuid"] for m in local_aws.status()["mappings"]}


def test_latest_starting_position_skips_older_records(pipeline):
    p = pipeline()
    now = int(time.time() * 1000)
    p.put([{"id": "old", "t": now}])
    _map(p, StartingPosition="LATEST")
    p.put([{"id": "new", "t": now + 1}])
    wait_for(lambda: p.device_ids() == ["new"], what="only the record after the mapping")
    assert "old" not in p.device_ids()


def _map(p, **settings):
    from localaws_helpers import add_mapping

    return add_mapping(p, **settings)
