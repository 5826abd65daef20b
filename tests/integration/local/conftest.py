"""Fixtures for the embedded-AWS integration tests (helpers live in localaws_helpers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from localaws_helpers import Pipeline, pipeline_factory


@pytest.fixture
def pipeline(local_aws: Any) -> Callable[..., Pipeline]:
    """Build a stream, Timestream table, failure queue and test function (+ mapping)."""
    return pipeline_factory(local_aws)
