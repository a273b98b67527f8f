"""What the hub does when its database cannot be written or reached.

At start the hub refuses a database it cannot write or reach, naming it (host:port, never
the password); at run time a read-only database is ``StorageUnavailableError`` (UNAVAILABLE)
and a full one ``StorageFullError`` (RESOURCE_EXHAUSTED), both retryable and logged once per
change of condition. Regressions (issue 8, items 11 and 17): the hub said "serving" on a
database it could not write, then every Append was INTERNAL with one traceback per call; a
PostgreSQL URL nobody listens on was a traceback.

How the storage conditions are simulated (the tests run as root, where chmod stops nothing):
read-only at start is a real read-only bind mount in a private mount namespace (``unshare``,
skipped where not permitted) for SQLite, and ``default_transaction_read_only`` for PostgreSQL;
at run time the hub's own connections get ``PRAGMA query_only`` (SQLite answers exactly as
for a read-only file: SQLITE_READONLY) or ``PRAGMA max_page_count`` (SQLITE_FULL, as a full
disk).
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from hub.config import Role
from hub.ledger.store import LedgerStore
from hub.server import RunningHub, start
from protos.errors import status_of
from tests.pg import PostgresServer, fresh_database, postgres_server  # noqa: F401
from tests.sim import SimNode
from trust.errors import ConfigError, StorageFullError, StorageUnavailableError

from .harness import (
    HubWorld,
    assert_refused_cleanly,
    enroll,
    make_world,
    node_client,
    operator,
    used_world,  # noqa: F401
    warden_process,
)

# -- at start: a database the hub cannot write ------------------------------------------------


def _unshare_ok() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _unshare_ok(), reason="needs unshare -m (a private mount namespace)")
def test_hub_refuses_to_start_on_a_read_only_sqlite_mount(
    used_world: HubWorld,  # noqa: F811
) -> None:
    # A read-only bind mount of the hub directory, in a mount namespace of the hub's own:
    # what a read-only volume or a remounted full disk looks like to the hub.
    d = str(used_world.dir)
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    proc = warden_process("hub", "serve", "--config", str(used_world.init.config),
                   "--listen", "127.0.0.1:0", env={"WARDEN_HUB_VERIFY_WORKERS": "0"},
                   prefix=("unshare", "-m", "--propagation", "private", "sh", "-c", script, d))
    assert_refused_cleanly(
        proc, rf"error: {used_world.init.config}: database .*ledger.db (is read-only"
              r"|cannot be reached or opened)")
    assert "hint: " in proc.stderr


@pytest.mark.postgres
def test_hub_refuses_to_start_on_a_read_only_postgres_database(
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    url = fresh_database(postgres_server)
    LedgerStore.open(url).close()  # migrated while writable
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    name = sa.engine.make_url(url).database
    with engine.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    engine.dispose()
    with pytest.raises(ConfigError, match=r"database 127\.0\.0\.1:\d+/\S+ is read-only") as err:
        LedgerStore.open(url)
    assert "standby or read-only" in (err.value.hint or "")


@pytest.fixture
def quiet_hub(tmp_path: Path) -> Iterator[tuple[HubWorld, RunningHub, SimNode]]:
    """A running hub (in-process verification) with one enrolled node."""
    world = make_world(tmp_path, verify_workers=0)
    hub = start(world.config)
    node = SimNode("emea-1")
    try:
        enroll(world, hub, node)
        yield world, hub, node
    finally:
        hub.stop(grace=1.0)


def _on_every_connection(engine: sa.Engine, pragma: str) -> Any:
    """Apply ``pragma`` to every connection the hub's engine opens from now on."""

    def apply(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(pragma)

    event.listen(engine, "connect", apply)
    engine.dispose()  # pooled connections are replaced by ones with the pragma
    return apply


def _big_record(node: SimNode) -> bytes:
    """The node's next record (not advancing it), with 20 kB of evidence: it needs new pages."""
    return node.record(evidence={"pad": "x" * 20_000}, advance=False)


def _storage_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "warden.hub.db"]


@pytest.mark.parametrize(
    ("pragma", "error", "code", "words"),
    [
        ("PRAGMA query_only = ON", StorageUnavailableError, grpc.StatusCode.UNAVAILABLE,
         "is read-only"),
        ("PRAGMA max_page_count = 1", StorageFullError, grpc.StatusCode.RESOURCE_EXHAUSTED,
         "is full"),
    ],
    ids=["read-only", "full"],
)
def test_unwritable_database_after_start_is_retryable_and_logged_once(
    quiet_hub: tuple[HubWorld, RunningHub, SimNode], caplog: pytest.LogCaptureFixture,
    pragma: str, error: type[StorageUnavailableError], code: grpc.StatusCode, words: str,
) -> None:
    world, hub, node = quiet_hub
    engine = hub.state.store.engine  # type: ignore[attr-defined]
    caplog.set_level(logging.INFO)
    with node_client(world, hub, node) as c:
        c.append(node.records(1))
        listener = _on_every_connection(engine, pragma)
        for _ in range(5):  # the same records are offered again: nothing was written
            with pytest.raises(error, match=words) as err:
                c.append([_big_record(node)])
            assert type(err.value) is error  # rebuilt by name: the agent can tell full from RO
        assert status_of(error("x")) == code
        failures = _storage_logs(caplog)
        assert len(failures) == 1 and failures[0].levelno == logging.ERROR, failures
        assert words in failures[0].getMessage()
        assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
        event.remove(engine, "connect", listener)
        engine.dispose()
        c.append(node.records(1))  # writable again
    lines = _storage_logs(caplog)
    assert len(lines) == 2 and "accepts writes again" in lines[1].getMessage()
    with operator(world, hub, Role.AUDITOR) as a:
        assert a.get_entries(0).ledger_size == 3  # enrollment + 2 records; none of the refused


# -- a PostgreSQL URL nobody listens on ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_postgres_nobody_listens_on_is_a_config_error_naming_host_and_port() -> None:
    port = _free_port()  # bound, then closed: nobody listens there
    url = f"postgresql://warden:s3cret-pw@127.0.0.1:{port}/ledger"
    with pytest.raises(ConfigError) as err:
        LedgerStore.open(url)
    text = err.value.diagnostics()
    assert f"127.0.0.1:{port}/ledger cannot be reached" in text
    assert "s3cret-pw" not in text
    assert "PostgreSQL runs there" in text


def test_hub_serve_with_postgres_nobody_listens_on(tmp_path: Path) -> None:
    world = make_world(tmp_path, verify_workers=0)
    port = _free_port()
    proc = warden_process("hub", "serve", "--config", str(world.init.config), "--listen",
                   "127.0.0.1:0", "--database", f"postgresql://w:hunter22@127.0.0.1:{port}/x",
                   env={"WARDEN_HUB_VERIFY_WORKERS": "0"})
    assert_refused_cleanly(
        proc, rf"error: {world.init.config}: database 127\.0\.0\.1:{port}/x cannot be"
              r" reached")
    assert "hunter22" not in proc.stderr
