"""retry_on_message: equal jitter as its docstring says, only the named errors, bounded."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError
from fake_clock import FakeClock

from iotpipe.aws import retry_on_message

NOT_YET = "The role defined for the function cannot be assumed by Lambda."


def client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateFunction")


def failing(times: int, exc: ClientError) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return "created"

    return calls, call


def test_pauses_are_equal_jitter_growing_to_the_cap() -> None:
    fc = FakeClock()
    seen: list[tuple[str, float]] = []
    calls, call = failing(40, client_error("InvalidParameterValueException", NOT_YET))
    got = retry_on_message(
        call,
        ("cannot be assumed",),
        timeout=1000.0,
        base=1.0,
        cap=4.0,
        sleep=fc.sleep,
        clock=fc.now,
        on_retry=lambda exc, p: seen.append((str(exc.response["Error"]["Code"]), p)),
    )
    assert got == "created" and len(calls) == 41
    steps = [1.0, 2.0] + [4.0] * 38  # full jitter would put about half below d/2
    assert all(d / 2 <= p <= d for p, d in zip(fc.pauses, steps, strict=True))
    assert [p for _, p in seen] == fc.pauses
    assert {c for c, _ in seen} == {"InvalidParameterValueException"}


def test_other_messages_and_codes_are_raised_at_once() -> None:
    fc = FakeClock()
    _, wrong_text = failing(1, client_error("InvalidParameterValueException", "bad runtime"))
    with pytest.raises(ClientError):
        retry_on_message(wrong_text, ("cannot be assumed",), sleep=fc.sleep, clock=fc.now)
    _, wrong_code = failing(1, client_error("AccessDeniedException", NOT_YET))
    with pytest.raises(ClientError):
        retry_on_message(
            wrong_code,
            ("cannot be assumed",),
            codes=("InvalidParameterValueException",),
            sleep=fc.sleep,
            clock=fc.now,
        )
    assert fc.pauses == []


def test_gives_up_with_the_last_error_before_passing_the_timeout() -> None:
    fc = FakeClock()
    calls, call = failing(10**6, client_error("InvalidParameterValueException", NOT_YET))
    with pytest.raises(ClientError):
        retry_on_message(
            call,
            ("CANNOT BE ASSUMED",),  # matched case-insensitively
            timeout=30.0,
            sleep=fc.sleep,
            clock=fc.now,
        )
    assert fc.t <= 30.0 and len(calls) == len(fc.pauses) + 1 > 3
