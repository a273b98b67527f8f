"""Fixtures for hub tests: a hub world (keys, root, hub directory) and a running hub."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.server import RunningHub

from .harness import HubWorld, make_world, running_hub


@pytest.fixture
def world(tmp_path: Path) -> HubWorld:
    """A fresh hub directory on SQLite with officers and a trust root."""
    return make_world(tmp_path)


@pytest.fixture
def hub(world: HubWorld) -> Iterator[RunningHub]:
    """The world's hub, serving TLS on a free loopback port."""
    with running_hub(world) as h:
        yield h
