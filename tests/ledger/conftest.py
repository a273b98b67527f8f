"""Fixtures for the ledger tests: one store fixture parametrised over SQLite, PostgreSQL and
the in-memory store.

``store`` gives an empty, migrated :class:`LedgerStore` with a hub key; ``make_store`` opens
more stores on the same database (to play several hub processes); ``open_store`` does the same
with :meth:`LedgerStore.open`'s limits. For the memory backend the "database" is one
:class:`MemoryLedger` shared by every store of the test. A test that is about SQL itself
(schema, triggers) is marked ``@pytest.mark.sql_only(reason)`` and skipped on the memory
backend with that reason. :class:`SimNode` signs correctly chained audit records, and can be
told to misbehave.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import pytest
import sqlalchemy as sa

from hub.ledger import schema
from hub.ledger.memory import MemoryLedger, MemoryLedgerStore
from hub.ledger.sql import SqlLedgerStore
from hub.ledger.store import LedgerStore
from tests.ledger.ledger_helpers import HUB_SEED
from tests.pg import PostgresServer, fresh_database, postgres_server  # noqa: F401
from tests.sim import NOW, SimNode
from trust import keys
from trust.stream import NodeId

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "memory"]


class OpenStore(Protocol):
    """Open a store on the test's database, with :meth:`LedgerStore.open`'s limits."""

    def __call__(
        self, *, max_record_bytes: int | None = None, page_bytes: int | None = None
    ) -> LedgerStore: ...


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sql_only(reason): the test is about the SQL backends only (skipped on memory)"
    )


@pytest.fixture(scope="session")
def hub_key() -> keys.SigningKey:
    """The hub's signing key (deterministic)."""
    return keys.SigningKey.from_seed(HUB_SEED)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The store implementation under test; ``sql_only`` tests skip the memory store."""
    marker = request.node.get_closest_marker("sql_only")
    if request.param == "memory" and marker is not None:
        pytest.skip(f"SQL-only: {marker.kwargs.get('reason') or marker.args[0]}")
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL: a temporary SQLite file, or a fresh PostgreSQL database."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    if backend == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return fresh_database(server)
    pytest.skip("the memory store has no database URL")


@pytest.fixture
def open_store(
    backend: str, request: pytest.FixtureRequest, hub_key: keys.SigningKey
) -> Iterator[OpenStore]:
    """Open stores on the test's database (each like a separate hub process)."""
    opened: list[LedgerStore] = []
    ledger = MemoryLedger()
    url = None if backend == "memory" else str(request.getfixturevalue("db_url"))

    def open_(*, max_record_bytes: int | None = None, page_bytes: int | None = None
              ) -> LedgerStore:
        s: LedgerStore
        if url is None:
            s = MemoryLedgerStore(ledger, hub_key=hub_key, max_record_bytes=max_record_bytes,
                                  page_bytes=page_bytes)
        else:
            s = LedgerStore.open(url, hub_key=hub_key, max_record_bytes=max_record_bytes,
                                 page_bytes=page_bytes)
        opened.append(s)
        return s

    yield open_
    for s in opened:
        s.close()


@pytest.fixture
def make_store(open_store: OpenStore) -> Callable[[], LedgerStore]:
    """Open stores on the test's database without limits."""
    return lambda: open_store()


@pytest.fixture
def store(make_store: Callable[[], LedgerStore]) -> LedgerStore:
    """An empty migrated store."""
    return make_store()


@pytest.fixture
def enrolled(store: LedgerStore) -> Callable[[str], SimNode]:
    """Enroll a fresh node in ``store`` and return it."""

    def enroll(node_id: str) -> SimNode:
        node = SimNode(node_id)
        store.register_node(NodeId(node_id), node.key.public, now=NOW)
        return node

    return enroll


def hub_public_of(store: LedgerStore) -> keys.PublicKey:
    """The hub key the store verifies its hub events with (every backend keeps one)."""
    assert isinstance(store, (SqlLedgerStore, MemoryLedgerStore))
    assert store._hub_public is not None
    return store._hub_public


def set_node_status(store: LedgerStore, node_id: str, status: str) -> None:
    """Change a node's status behind the store's API, as an operator's revocation would."""
    if isinstance(store, MemoryLedgerStore):
        store.set_node_status(NodeId(node_id), status)
        return
    assert isinstance(store, SqlLedgerStore)
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(schema.nodes).where(schema.nodes.c.node_id == node_id).values(status=status)
        )
