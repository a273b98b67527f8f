"""Fixtures for the ledger tests: one store fixture parametrised over SQLite and PostgreSQL.

``store`` gives an empty, migrated :class:`LedgerStore` with a hub key; ``make_store`` opens
more stores on the same database (to play several hub processes). :class:`SimNode` signs
correctly chained audit records, and can be told to misbehave.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hub.ledger.store import LedgerStore
from tests.ledger.ledger_helpers import HUB_SEED
from tests.pg import PostgresServer, fresh_database, postgres_server  # noqa: F401
from tests.sim import NOW, SimNode
from trust import keys


@pytest.fixture(scope="session")
def hub_key() -> keys.SigningKey:
    """The hub's signing key (deterministic)."""
    return keys.SigningKey.from_seed(HUB_SEED)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL: a temporary SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return fresh_database(server)


@pytest.fixture
def make_store(
    db_url: str, hub_key: keys.SigningKey
) -> Iterator[Callable[[], LedgerStore]]:
    """Open stores on the test's database (each like a separate hub process)."""
    opened: list[LedgerStore] = []

    def make() -> LedgerStore:
        s = LedgerStore.open(db_url, hub_key=hub_key)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(make_store: Callable[[], LedgerStore]) -> LedgerStore:
    """An empty migrated store."""
    return make_store()


@pytest.fixture
def enrolled(store: LedgerStore) -> Callable[[str], SimNode]:
    """Enroll a fresh node in ``store`` and return it."""

    def enroll(node_id: str) -> SimNode:
        node = SimNode(node_id)
        store.register_node(node_id, node.key.public, now=NOW)
        return node

    return enroll
