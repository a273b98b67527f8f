"""Fixtures shared by the process-level agent tests (tests/agent/daemon_world.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.daemon_world import Agents, HubProcess, Trust, make_hub, make_trust


@pytest.fixture
def agents() -> Iterator[Agents]:
    """``warden agent run`` processes started by a test; all stopped at its end."""
    a = Agents()
    yield a
    a.close()


@pytest.fixture
def started_hub(tmp_path: Path) -> Iterator[tuple[HubProcess, Trust]]:
    """Fresh officers and a ``warden hub serve`` process on SQLite, killed at the end."""
    trust = make_trust(tmp_path / "trust")
    hub = make_hub(tmp_path, trust)
    hub.start()
    yield hub, trust
    hub.kill()
