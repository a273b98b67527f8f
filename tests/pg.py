"""A real, throw-away PostgreSQL server for tests (initdb + pg_ctl in a temporary directory).

Use the session fixture :func:`postgres_url` (import it into a conftest:
``from pg import postgres_url  # noqa: F401``; ``tests/`` is on ``sys.path`` because the
root conftest lives there) and :func:`fresh_database` for an empty database per test.
The server listens on 127.0.0.1 on a port the OS chose, trusts local connections, and is
stopped at the end of the session. Without ``initdb`` on PATH the tests skip, saying so.
When running as root, the cluster is created and run as the ``postgres`` user (PostgreSQL
refuses to run as root), in a directory owned by that user.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "postgres_url", "fresh_database"]

_counter = itertools.count()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory."""

    def __init__(self) -> None:
        initdb = shutil.which("initdb")
        if initdb is None:
            raise FileNotFoundError("initdb")
        self.port = _free_port()
        self._tmp = tempfile.mkdtemp(prefix="warden-pg-")
        self.dir = Path(self._tmp) / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            os.chmod(self._tmp, 0o755)
            self.dir.mkdir()
            shutil.chown(self.dir, "postgres", "postgres")
        self._run([initdb, "-D", str(self.dir), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                   "--no-sync"])
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=200"
        )
        self._run([shutil.which("pg_ctl") or "pg_ctl", "-D", str(self.dir), "-o", opts,
                   "-l", str(self.dir / "server.log"), "-w", "start"])
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, argv: list[str]) -> None:
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its URL."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the server and delete its directory."""
        try:
            self._run([shutil.which("pg_ctl") or "pg_ctl", "-D", str(self.dir), "-m", "immediate",
                       "-w", "stop"])
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session (skips if PostgreSQL is not installed)."""
    try:
        server = PostgresServer()
    except FileNotFoundError:
        pytest.skip("PostgreSQL is not installed (no 'initdb' on PATH); skipping PostgreSQL tests")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of the session server's default database."""
    return postgres_server.url


def fresh_database(server: PostgresServer, prefix: str = "t") -> str:
    """A new empty database on ``server``; returns its URL."""
    return server.create_database(f"{prefix}_{os.getpid()}_{next(_counter)}")
