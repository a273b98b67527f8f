"""Fixtures shared by the process-level agent tests (tests/agent/daemon_world.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.agent.daemon_world import Agents


@pytest.fixture
def agents() -> Iterator[Agents]:
    """``warden agent run`` processes started by a test; all stopped at its end."""
    a = Agents()
    yield a
    a.close()
