"""Issue 8, items 8, 11, 12 and 17 (part): the hub's store at start-up and when it cannot write.

* item 8 — a changed ``origin`` on an existing ledger: the hub refused nothing and signed new
  checkpoints under it, after which consistency proofs verified under neither origin;
* item 11 — a database the hub cannot write: the hub said "serving", then every Append was
  INTERNAL with one traceback per call;
* item 12 — verifier processes that cannot start: ``warden hub serve`` exited 0, silently;
* item 17 — a PostgreSQL URL nobody listens on: a traceback.

How the storage conditions are simulated (the tests run as root, where chmod stops nothing):
read-only at start is a real read-only bind mount in a private mount namespace (``unshare``,
skipped where not permitted) for SQLite, and ``default_transaction_read_only`` for PostgreSQL;
at run time the hub's own connections get ``PRAGMA query_only`` (SQLite answers exactly as
for a read-only file: SQLITE_READONLY) or ``PRAGMA max_page_count`` (SQLITE_FULL, as a full
disk).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from hub.config import Role, load_config
from hub.ledger.store import LedgerStore
from hub.server import RunningHub, start
from hub.state import HubState
from protos.errors import status_of
from tests.hub.harness import HubWorld, Node, enroll, make_world, node_client, operator
from tests.ledger.ledger_helpers import HUB_SEED, NOW, FakeNode
from tests.pg import PostgresServer, fresh_database, postgres_server  # noqa: F401
from trust import keys
from trust.canonical import sha256_hex
from trust.errors import (
    ConfigError,
    LedgerError,
    StorageFullError,
    StorageUnavailableError,
)
from trust.record import Subject, build_record, sign_record
from trust.timeutil import utcnow

WARDEN = str(Path(sys.executable).with_name("warden"))


def _warden(*argv: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = (),
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real console script (in its own process: ``hub serve`` sets up logging)."""
    return subprocess.run([*prefix, WARDEN, *argv], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def _refused(proc: subprocess.CompletedProcess[str], pattern: str) -> None:
    import re

    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert re.search(pattern, proc.stderr), proc.stderr
    assert proc.stderr.startswith("error: "), proc.stderr


# -- item 8: one origin per ledger ----------------------------------------------------------


def test_store_refuses_to_sign_a_checkpoint_under_a_second_origin(tmp_path: Path) -> None:
    hub_key = keys.SigningKey.from_seed(HUB_SEED)
    store = LedgerStore.open(f"sqlite:///{tmp_path / 'l.db'}", hub_key=hub_key)
    try:
        node = FakeNode("n1")
        store.register_node("n1", node.key.public, now=NOW)
        first = store.sign_checkpoint("a.example/hub", "a.example/hub", hub_key, now=NOW)
        store.append_records("n1", node.batch(2), now=NOW)
        with pytest.raises(LedgerError, match=r"origin 'a.example/hub'; refusing to sign one"
                                              r" under 'b.example/hub'"):
            store.sign_checkpoint("b.example/hub", "b.example/hub", hub_key, now=NOW)
        latest = store.latest_checkpoint()
        assert latest == first and latest is not None and latest.origin == "a.example/hub"
    finally:
        store.close()


@pytest.fixture
def used_world(tmp_path: Path) -> HubWorld:
    """A hub directory whose ledger already holds a checkpoint under its origin."""
    world = make_world(tmp_path, verify_workers=0)
    hub = start(world.config)
    try:
        enroll(world, hub, Node("emea-1"))
    finally:
        hub.stop(grace=1.0)
    return world


def test_hub_refuses_to_start_with_a_changed_origin(used_world: HubWorld) -> None:
    cfg = used_world.init.config  # as an operator would: edit hub.yaml, start the hub
    cfg.write_text(cfg.read_text().replace("test.warden/hub", "renamed.warden/hub"))
    changed = load_config(cfg, env={}, overrides={"listen": "127.0.0.1:0"})
    assert changed.origin == "renamed.warden/hub"
    with pytest.raises(ConfigError) as err:
        start(changed)  # what 'warden hub serve' calls
    msg = err.value.message
    assert msg.startswith(f"{cfg}: origin 'renamed.warden/hub' is not the origin "
                          "'test.warden/hub' of the checkpoints stored in ")
    assert "origin: test.warden/hub" in (err.value.hint or "")
    HubState.open(used_world.config).close()  # the stored origin still starts


# -- item 11: a database the hub cannot write ------------------------------------------------


def _unshare_ok() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _unshare_ok(), reason="needs unshare -m (a private mount namespace)")
def test_hub_refuses_to_start_on_a_read_only_sqlite_mount(used_world: HubWorld) -> None:
    # A read-only bind mount of the hub directory, in a mount namespace of the hub's own:
    # what a read-only volume or a remounted full disk looks like to the hub.
    d = str(used_world.dir)
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    proc = _warden("hub", "serve", "--config", str(used_world.init.config),
                   "--listen", "127.0.0.1:0", env={"WARDEN_HUB_VERIFY_WORKERS": "0"},
                   prefix=("unshare", "-m", "--propagation", "private", "sh", "-c", script, d))
    _refused(proc, rf"error: {used_world.init.config}: database .*ledger.db (is read-only"
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
def quiet_hub(tmp_path: Path) -> Iterator[tuple[HubWorld, RunningHub, Node]]:
    """A running hub (in-process verification) with one enrolled node."""
    world = make_world(tmp_path, verify_workers=0)
    hub = start(world.config)
    node = Node("emea-1")
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


def _big_record(node: Node) -> bytes:
    """The node's next record (not advancing it), with 20 kB of evidence: it needs new pages."""
    payload = build_record(
        node_id=node.node_id, seq=node.seq + 1, prev=node.prev, time=utcnow(),
        event="validation", subject=Subject("credit", "1", sha256_hex(b"artifact")),
        evidence={"pad": "x" * 20_000},
    )
    return sign_record(payload, node.key)


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
    quiet_hub: tuple[HubWorld, RunningHub, Node], caplog: pytest.LogCaptureFixture,
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


# -- item 17 (part): a PostgreSQL URL nobody listens on --------------------------------------


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
    proc = _warden("hub", "serve", "--config", str(world.init.config), "--listen",
                   "127.0.0.1:0", "--database", f"postgresql://w:hunter22@127.0.0.1:{port}/x",
                   env={"WARDEN_HUB_VERIFY_WORKERS": "0"})
    _refused(proc, rf"error: {world.init.config}: database 127\.0\.0\.1:{port}/x cannot be"
                   r" reached")
    assert "hunter22" not in proc.stderr


# -- item 12: verifier processes that cannot start --------------------------------------------

_SERVE_WITH_BROKEN_SPAWN = """
import errno, multiprocessing, multiprocessing.popen_spawn_posix as pp, sys
from trust.cli.main import main
how = sys.argv[1]
if how == "no-interpreter":
    # The interpreter the workers are spawned with is gone (a venv removed under the hub).
    multiprocessing.set_executable("/nonexistent/python3")
else:
    # What a process limit (ulimit -u, a cgroup's pids.max) does to fork/spawn: EAGAIN.
    def launch(self, process_obj):
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
    pp.Popen._launch = launch
sys.exit(main(["hub", "serve", "--config", sys.argv[2], "--listen", "127.0.0.1:0"]))
"""


@pytest.mark.parametrize(
    ("how", "why"),
    [
        ("no-interpreter", r"the interpreter /nonexistent/python3 does not exist"),
        ("process-limit", r"Resource temporarily unavailable"),
    ],
)
def test_hub_serve_says_why_verifier_processes_cannot_start(
    tmp_path: Path, how: str, why: str,
) -> None:
    world = make_world(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", _SERVE_WITH_BROKEN_SPAWN, how, str(world.init.config)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "WARDEN_HUB_VERIFY_WORKERS": "2"},
    )
    _refused(proc, rf"error: cannot start 2 record-verifier processes: {why}")
    assert "verify_workers: 0" in proc.stderr
