"""Tests that need a system service (Dovecot, PostgreSQL's own binaries) skip on a developer's
machine without it and fail in CI, where `.ci/run` installs it and sets
DIGEST_REQUIRE_SERVICES=1: a skipped test proves nothing."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    """Skip the test for `reason`, or fail it when CI requires every service."""
    if os.environ.get("DIGEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; CI requires it (DIGEST_REQUIRE_SERVICES=1)")
    pytest.skip(reason)
