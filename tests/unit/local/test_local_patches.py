"""The start-up self-test: every patched moto attribute must still be there, unchanged.

Also the replacements that need no server: shard iterators, record size, SQS attributes.
"""

import base64
import re
import subprocess

import moto
import pytest

from iotpipe.local import motointernals
from iotpipe.local.patches import Patch, PatchError, all_patches, self_test
from iotpipe.local.patching import Service, moto_imports


def test_installed_moto_passes():
    assert self_test(all_patches()) is None  # raises PatchError naming what moto changed


def test_missing_attribute_names_the_moto_version():
    gone = Patch(motointernals.Shard, "no_such_method", lambda self: None)
    with pytest.raises(PatchError, match=f"moto {moto.__version__}.*no_such_method is missing"):
        self_test([gone])


def test_changed_signature_is_caught():
    p = all_patches()[0]
    moved = Patch(p.owner, p.attr, p.replacement, ("self", "extra"))
    with pytest.raises(PatchError, match="expected"):
        self_test([moved])


def test_missing_class_is_caught():
    """A class moto moved or renamed stops the start the same way (at import)."""
    with (
        pytest.raises(PatchError, match=f"moto {moto.__version__}.*NoSuchClass"),
        moto_imports(),
    ):
        from moto.kinesis.models import NoSuchClass  # noqa: F401


def test_expected_parameters_are_the_replacements_own():
    """Declared once: the replacement's signature (without `original`) is what moto must have."""
    svc = Service("t")

    @svc.patch(motointernals.KinesisBackend, "get_records", pass_original=True)
    def replacement(original, self, stream_arn, shard_iterator, limit):
        return original(self, stream_arn, shard_iterator, limit)

    (p,) = svc.patches
    assert p.params == ("self", "stream_arn", "shard_iterator", "limit")
    self_test(svc.patches)
    wrong = Service("w")
    wrong.patch(motointernals.KinesisBackend, "get_records")(lambda self, limit: None)
    with pytest.raises(
        PatchError, match=r"KinesisBackend.get_records\(.*expected \('self', 'limit'\)"
    ):
        self_test(wrong.patches)


def test_a_replacement_receives_the_original_and_self_test_still_sees_it():
    class Owner:
        def greet(self, name):
            return f"hello {name}"

    svc = Service("t")

    @svc.patch(Owner, "greet", pass_original=True)
    def greet(original, self, name):
        return original(self, name).upper()

    from iotpipe.local.patching import install

    install([svc])
    install([svc])  # idempotent: the original stays moto's, not our first wrapper
    assert Owner().greet("x") == "HELLO X"
    self_test(svc.patches)  # checks the original's signature, not the installed wrapper's


def test_an_addition_moto_grew_itself_is_refused():
    class Owner:
        def cancel_query(self):
            return "moto's own"

    svc = Service("t")
    svc.add(Owner, "cancel_query")(lambda self: "ours")
    with pytest.raises(PatchError, match="cancel_query now exists in moto"):
        self_test(svc.additions)


def test_listing_functions_does_not_deep_copy_them():
    """moto's LambdaStorage.all deep-copied every function and raced with the workers."""
    from types import SimpleNamespace

    from iotpipe.local.lambdapatch import all_functions

    class Touchy:
        """Refuses to be deep-copied, as a function mid-update effectively does."""

        def __init__(self):
            self.function_arn = "arn:aws:lambda:us-east-1:123456789012:function:f"

        def __deepcopy__(self, memo):
            raise RuntimeError("dictionary changed size during iteration")

    latest, v1 = Touchy(), Touchy()
    storage = SimpleNamespace(_functions={"f": {"latest": latest, "versions": [v1]}})
    listed = all_functions(storage)
    assert [f.function_arn for f in listed] == [f"{latest.function_arn}:$LATEST", v1.function_arn]
    assert latest.function_arn.endswith(":f")  # the stored function is untouched


def test_a_patched_property_is_checked_by_its_getter():
    p = next(p for p in all_patches() if p.attr == "attributes")
    assert isinstance(p.replacement, property)
    assert p.params == ("self",)
    with pytest.raises(PatchError, match="expected"):
        self_test([Patch(p.owner, p.attr, p.replacement, ("self", "extra"))])


# -- Kinesis: shell-safe shard iterators, the 1 MiB record limit ---------------------------
SHELL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


@pytest.mark.parametrize("last", [0, 49 * 10**54 + 10**40 + 7, "123"])
def test_shard_iterators_survive_an_unquoted_shell_expansion(last):
    from iotpipe.local.kinesispatch import decode_iterator, encode_iterator

    name = "iot-sensor-stream-" + "x" * 100  # long enough that MIME base64 wraps its lines
    it = encode_iterator(name, "shardId-000000000000", last)
    assert SHELL_SAFE.match(it), it
    out = subprocess.run(
        ["bash", "-c", "printf %s $IT"], env={"IT": it}, capture_output=True, text=True, check=True
    ).stdout
    assert out == it
    assert decode_iterator(out) == (name, "shardId-000000000000", str(last))


def test_moto_form_iterators_are_still_read():
    from moto.kinesis.utils import compose_shard_iterator

    from iotpipe.local.kinesispatch import decode_iterator

    shard = type("S", (), {"shard_id": "shardId-000000000001"})()
    moto_form = compose_shard_iterator("s" * 80, shard, 42)
    assert "\n" in moto_form  # what broke `get-records --shard-iterator $SHARD_ITERATOR`
    assert decode_iterator(moto_form) == ("s" * 80, "shardId-000000000001", "42")


@pytest.mark.parametrize("bad", ["", "not an iterator", "@@@", "czpzaGFyZA"])
def test_a_bad_iterator_is_invalid_argument(bad):
    from moto.kinesis.exceptions import InvalidArgumentError

    from iotpipe.local.kinesispatch import decode_iterator

    with pytest.raises(InvalidArgumentError, match="Invalid ShardIterator"):
        decode_iterator(bad)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 1000, 1024 * 1024])
def test_blob_size_is_the_decoded_length(n):
    from iotpipe.local.kinesispatch import blob_size

    assert blob_size(base64.b64encode(b"x" * n).decode()) == n


def test_a_record_over_1_mib_with_its_partition_key_is_refused():
    from moto.core.exceptions import JsonRESTError

    from iotpipe.local.kinesispatch import MAX_RECORD_BYTES, check_record_size

    key = "sensor001"
    exactly = base64.b64encode(b"x" * (MAX_RECORD_BYTES - len(key))).decode()
    check_record_size(key, exactly)
    over = base64.b64encode(b"x" * (MAX_RECORD_BYTES - len(key) + 1)).decode()
    with pytest.raises(JsonRESTError) as e:
        check_record_size(key, over)
    assert e.value.error_type == "ValidationException" and "1048577 bytes" in e.value.message


# -- SQS: SendMessage costs the same at any queue depth --------------------------------------
class ScanCounter:
    """Counts reads of a queued message's visibility (what every count scan does)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from moto.sqs.models import Message

        self.reads = 0
        visible = Message.__dict__["visible"]

        def counted(message):
            self.reads += 1
            return visible.fget(message)

        monkeypatch.setattr(Message, "visible", property(counted))


def _queue_with(backend, depth: int) -> str:
    name = f"q{depth}"
    backend.create_queue(name)
    for i in range(depth):
        backend.send_message(name, f"m{i}")
    return name


def _scans_per_send(monkeypatch, depth: int) -> int:
    from moto.sqs.models import SQSBackend

    backend = SQSBackend("us-east-1", "123456789012")
    name = _queue_with(backend, depth)
    counter = ScanCounter(monkeypatch)
    backend.send_message(name, "one more")
    return counter.reads


def test_moto_alone_scans_the_queue_on_every_send(monkeypatch):
    """The cost the patch removes (if moto stops doing this, the patch can go)."""
    assert _scans_per_send(monkeypatch, 200) >= 200


def test_send_does_not_scan_the_queue(monkeypatch):
    from moto.sqs.models import Queue

    from iotpipe.local import sqspatch

    monkeypatch.setattr(Queue, "attributes", sqspatch.attributes)
    assert _scans_per_send(monkeypatch, 10) == 0
    assert _scans_per_send(monkeypatch, 2000) == 0


def test_queue_counts_stay_exact(monkeypatch):
    from moto.sqs.models import Queue, SQSBackend

    from iotpipe.local import sqspatch

    before = SQSBackend("us-east-1", "123456789012")
    name = _queue_with(before, 5)
    expected = dict(before.get_queue_attributes(name, ["All"]))
    monkeypatch.setattr(Queue, "attributes", sqspatch.attributes)
    backend = SQSBackend("us-east-1", "123456789012")
    _queue_with(backend, 5)
    backend.receive_message(name, 2, 0, 30)
    backend.send_message(name, "late", delay_seconds=60)
    got = dict(backend.get_queue_attributes(name, ["All"]))
    assert set(got) == set(expected)
    assert (
        got["ApproximateNumberOfMessages"],
        got["ApproximateNumberOfMessagesNotVisible"],
        got["ApproximateNumberOfMessagesDelayed"],
    ) == (3, 2, 1)
    only = backend.get_queue_attributes(name, ["ApproximateNumberOfMessages", "QueueArn"])
    assert dict(only) == {"ApproximateNumberOfMessages": 3, "QueueArn": expected["QueueArn"]}


# -- moto's instance tracking: nothing made per message stays in memory ----------------------
def test_moto_alone_remembers_every_model_instance(monkeypatch):
    """The leak the patch removes (if moto stops doing this, the patch can go)."""
    from moto.kinesis.models import Record

    from iotpipe.local import motointernals_state

    (patch,) = [p for p in all_patches() if p.attr == "__new__"]
    monkeypatch.setattr(motointernals_state.BaseModel, "__new__", patch.current())
    before = len(Record.instances_tracked)
    Record("k", "ZGF0YQ==", 1, None)
    assert len(Record.instances_tracked) == before + 1


def test_model_instances_are_not_remembered(monkeypatch):
    import gc
    import weakref

    from moto.kinesis.models import Record
    from moto.sqs.models import Message

    from iotpipe.local import motointernals_state, serverpatch

    monkeypatch.setattr(motointernals_state.BaseModel, "__new__", serverpatch.base_model_new)
    motointernals_state.forget_tracked_instances()
    record = Record("k", "ZGF0YQ==", 1, None)
    message = Message("id", "body")
    assert (record.partition_key, message.body) == ("k", "body")  # still built as moto does
    assert Record.instances_tracked == [] and Message.instances_tracked == []
    gone = weakref.ref(record)
    del record
    gc.collect()
    assert gone() is None
