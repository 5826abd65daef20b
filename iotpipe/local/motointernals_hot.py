"""What `hotpath` needs of moto to answer a call without moto's dispatch: the account a
request's access key belongs to (moto's rule, in moto's order), the backends the handlers
read, and the errors of PutRecords' checks (`kinesispatch.put_records`). A sibling of `motointernals` (same rules)."""

from __future__ import annotations

import os
from typing import Any

from iotpipe.local.patching import moto_imports

with moto_imports():
    from moto.iam.models import get_account_id_from
    from moto.kinesis.exceptions import (
        RecordSizeExceedsLimit,
        TooManyRecords,
        TotalRecordsSizeExceedsLimit,
    )
    from moto.kinesis.models import kinesis_backends
    from moto.timestreamwrite.models import timestreamwrite_backends

__all__ = [
    "RecordSizeExceedsLimit",
    "TooManyRecords",
    "TotalRecordsSizeExceedsLimit",
    "account_for",
    "kinesis",
    "timestream",
]


def account_for(environ: dict[str, Any], access_key: str | None) -> str:
    """BaseResponse.get_current_account: MOTO_ACCOUNT_ID, x-moto-account-id, access key."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return str(environ["HTTP_X_MOTO_ACCOUNT_ID"])
    return str(get_account_id_from(access_key or "AKIAEXAMPLE"))


def kinesis(account: str, region: str) -> Any:
    return kinesis_backends[account][region]


def timestream(account: str, region: str) -> Any:
    return timestreamwrite_backends[account][region]
