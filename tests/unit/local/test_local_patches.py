"""The start-up self-test: every patched moto attribute must still be there, unchanged."""

import moto
import pytest

from iotpipe.local.patches import PATCHES, Patch, PatchError, self_test


def test_installed_moto_passes():
    assert self_test() is None  # raises PatchError naming what moto changed


def test_missing_attribute_names_the_moto_version():
    gone = Patch("moto.kinesis.models", "Shard", "no_such_method", ("self",), lambda self: None)
    with pytest.raises(PatchError, match=f"moto {moto.__version__}.*no_such_method is missing"):
        self_test([gone])


def test_changed_signature_is_caught():
    p = PATCHES[0]
    moved = Patch(p.module, p.cls, p.attr, ("self", "extra"), p.replacement)
    with pytest.raises(PatchError, match="expected"):
        self_test([moved])


def test_missing_class_is_caught():
    with pytest.raises(PatchError, match="NoSuchClass"):
        self_test([Patch("moto.kinesis.models", "NoSuchClass", "x", ("self",), lambda self: None)])


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
