"""Batch retry, bisect and partial-response rules (pure)."""

from iotpipe.local.batching import (
    AGE_EXCEEDED,
    RETRIES_EXHAUSTED,
    BatchOutcome,
    RetryPolicy,
    StreamRecord,
    interpret,
    run_batch,
    take_batch,
)


def recs(n, arrival=1000.0):
    return [
        StreamRecord(seq=100 + i, data="", partition_key="k", arrival=arrival) for i in range(n)
    ]


def test_interpret_success_shapes():
    b = recs(3)
    for payload in (None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, "OK"):
        assert interpret(True, payload, b, True).kind == "ok"
    assert (
        interpret(True, {"batchItemFailures": [{"itemIdentifier": "101"}]}, b, False).kind == "ok"
    )


def test_interpret_partial_and_invalid():
    b = recs(3)
    out = interpret(
        True, {"batchItemFailures": [{"itemIdentifier": "102"}, {"itemIdentifier": "101"}]}, b, True
    )
    assert (out.kind, out.failed_from) == ("partial", 1)
    for bad in (
        [{"itemIdentifier": ""}],
        [{"itemIdentifier": None}],
        [{"itemIdentifer": "101"}],
        [{"itemIdentifier": "999"}],
    ):
        assert interpret(True, {"batchItemFailures": bad}, b, True).kind == "error"
    assert interpret(False, None, b, True, "boom").function_error == "Unhandled"


class Fn:
    """A fake function: fails records whose seq is in `bad` (error or partial mode)."""

    def __init__(self, bad, partial=False):
        self.bad, self.partial, self.calls = set(bad), partial, []

    def __call__(self, batch):
        self.calls.append([r.seq for r in batch])
        failed = [i for i, r in enumerate(batch) if r.seq in self.bad]
        if not failed:
            return BatchOutcome("ok")
        if self.partial:
            return BatchOutcome("partial", failed_from=failed[0])
        return BatchOutcome("error", function_error="Unhandled")


def run(records, fn, **policy):
    discards = []
    res = run_batch(records, fn, RetryPolicy(**policy), lambda: 1000.0, discards.append)
    return res, discards


def test_success_checkpoints_end():
    res, d = run(recs(4), Fn([]))
    assert res.done_seq == 103 and not d and res.invocations == 1


def test_partial_resumes_from_lowest_failure_then_exhausts():
    fn = Fn([102], partial=True)
    res, d = run(recs(5), fn, max_retries=2, report_item_failures=True)
    assert fn.calls == [[100, 101, 102, 103, 104], [102, 103, 104], [102, 103, 104]]
    assert [r.seq for r in d[0].records] == [102, 103, 104]
    assert d[0].condition == RETRIES_EXHAUSTED and d[0].invoke_count == 3
    assert res.done_seq == 104


def test_bisect_isolates_the_bad_record_without_using_retries():
    fn = Fn([105])
    res, d = run(recs(8), fn, max_retries=0, bisect=True)
    assert [[r.seq for r in x.records] for x in d] == [[105]]
    processed = {s for call in fn.calls for s in call if len(call) and s != 105}
    assert processed == set(range(100, 108)) - {105}
    assert res.done_seq == 107 and res.completed


def test_retry_forever_stops_when_told():
    fn = Fn([100])
    budget = iter(range(5))
    res = run_batch(
        recs(1),
        fn,
        RetryPolicy(max_retries=-1),
        lambda: 0.0,
        keep_going=lambda: next(budget, None) is not None,
    )
    assert not res.completed and res.done_seq is None and len(fn.calls) == 5


def test_record_age_discards_old_records_unseen():
    old = [StreamRecord(1, "", "k", 0.0), StreamRecord(2, "", "k", 950.0)]
    fn = Fn([])
    res, d = run(old, fn, max_age_s=60)
    assert d[0].condition == AGE_EXCEEDED and [r.seq for r in d[0].records] == [1]
    assert fn.calls == [[2]] and res.done_seq == 2


def test_take_batch_window():
    assert take_batch(10, 100.0, 10, 5, 101.0) == 0  # full
    assert take_batch(3, 100.0, 10, 5, 101.0) == 4  # wait for the window
    assert take_batch(3, 100.0, 10, 5, 106.0) == 0  # window passed
    assert take_batch(3, 100.0, 10, 0, 100.0) == 0  # no window
    assert take_batch(0, None, 10, 0, 100.0) > 0  # nothing to do
