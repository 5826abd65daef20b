"""``python -m iotpipe.local --home DIR [--port N]``: the embedded AWS process itself.

Started detached by `iotpipe.local.lifecycle.start` (stdout/stderr already go to
``<home>/local.log``) or in the foreground by ``iotpipe local start --foreground``.
Exit status 3 means moto changed under us (the message names the version), 4 that the
port is taken, 5 that the state under ``<home>/data/`` cannot be used as it is (the message
says why and the ways out: ``iotpipe local reset`` or ``--ephemeral``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from iotpipe.local.durable import StateError
from iotpipe.local.lifecycle import STATE_EXIT
from iotpipe.local.patching import PatchError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iotpipe.local")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", type=Path, default=None)
    parser.add_argument("--ephemeral", action="store_true", help="in memory; write nothing")
    args = parser.parse_args(argv)

    try:
        # Deferred: importing the server imports moto's classes, which raises PatchError
        # when moto moved one (exit 3 and the message, not a traceback).
        from iotpipe.local.server import run

        return run(args.home, args.port, args.log, args.ephemeral)
    except StateError as e:
        print(f"iotpipe local: {e}", file=sys.stderr, flush=True)
        return STATE_EXIT
    except PatchError as e:
        print(f"iotpipe local: {e}", file=sys.stderr, flush=True)
        return 3
    except OSError as e:
        print(
            f"iotpipe local: cannot listen on 127.0.0.1:{args.port}: {e}",
            file=sys.stderr,
            flush=True,
        )
        return 4


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # cleanup is done; skip interpreter teardown (moto, DuckDB): stop in ~0.2 s
