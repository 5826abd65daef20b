"""The one boundary to moto (`motointernals*.py`, one file per area): nothing else in
`iotpipe.local` imports moto, and its reads work."""

from __future__ import annotations

import ast
from pathlib import Path

from iotpipe.local import motointernals as moto

LOCAL = Path(moto.__file__).parent
# Written before the boundary existed; their reads move into `motointernals` next.
NOT_YET: set[str] = set()


def _imports_moto(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Import) and any(a.name.split(".")[0] == "moto" for a in node.names)
        ) or (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "moto"):
            lines.append(node.lineno)
    return lines


def test_only_the_boundary_imports_moto():
    offenders = {
        str(p.relative_to(LOCAL)): lines
        for p in sorted(LOCAL.rglob("*.py"))
        if not p.name.startswith("motointernals") and p.name not in NOT_YET
        for lines in [_imports_moto(p)]
        if lines
    }
    assert offenders == {}, "import moto through iotpipe.local.motointernals"


def test_queue_depth_counts_every_message_and_a_missing_queue_is_empty():
    account, region = "123456789012", "eu-west-3"
    backend = moto.sqs_backends[account][region]
    backend.create_queue("boundary-depth")
    for i in range(3):
        moto.send_message(account, region, "boundary-depth", f"m{i}")
    backend.receive_message("boundary-depth", 1, 0, 30)  # in flight still counts
    assert moto.queue_depth(account, region, "boundary-depth") == 3
    assert moto.queue_depth(account, region, "no-such-queue") == 0


def test_a_stream_is_found_by_arn_and_its_shards_numbered():
    account, region = "123456789012", "eu-west-3"
    backend = moto.kinesis_backend(account, region)
    stream = backend.create_stream("boundary-stream", shard_count=2, stream_mode=None)
    assert moto.stream_by_arn(stream.arn) is stream
    assert moto.stream_by_arn(f"arn:aws:sqs:{region}:{account}:q") is None
    assert sorted(moto.shard_index(s) for s in moto.shards(stream)) == [0, 1]
