"""The embedded AWS for end-to-end tests: started in a temporary IOTPIPE_HOME, stopped in a
finalizer (also when a test fails), so no emulator outlives the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def emulator_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A working directory whose IOTPIPE_HOME has a running embedded AWS."""
    from iotpipe.local.lifecycle import start, stop

    work = tmp_path_factory.mktemp("e2e")
    home = work / ".iotpipe"
    home.mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("IOTPIPE_HOME", str(home))
    mp.delenv("AWS_ENDPOINT_URL", raising=False)
    mp.delenv("IOTPIPE_CONFIG", raising=False)
    mp.chdir(work)
    try:
        start(home)
        yield work
    finally:
        stop(home)
        mp.undo()
