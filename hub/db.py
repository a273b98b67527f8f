"""Database engines for the hub: SQLite by default, PostgreSQL by URL, migrated by Alembic.

Invariants:

* SQLite runs in WAL mode with ``synchronous=FULL``: a transaction that has returned from
  ``COMMIT`` survives a crash or power loss, so the hub may acknowledge it. A busy timeout
  makes concurrent writers wait instead of failing.
* Write transactions on SQLite start with ``BEGIN IMMEDIATE`` (take the write lock first, so
  a read-then-write transaction can never be invalidated half-way); read transactions start
  with a plain ``BEGIN`` and, in WAL mode, never block or wait for writers.
* PostgreSQL goes through psycopg 3; ``postgresql://`` URLs are rewritten to
  ``postgresql+psycopg://``. Writers serialise with transaction-scoped advisory locks
  (:func:`write_transaction` takes one when asked), so several hub processes share one DB.
* :func:`migrate` brings any database to the newest schema with Alembic, under the same write
  lock, so two hub processes starting together migrate once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from trust.errors import ConfigError

__all__ = [
    "LEDGER_LOCK",
    "MIGRATION_LOCK",
    "create_engine",
    "normalise_url",
    "is_sqlite",
    "write_transaction",
    "read_transaction",
    "migrate",
]

LEDGER_LOCK = 0x5741_5244_454E  # "WARDEN": the advisory lock serialising ledger appends
MIGRATION_LOCK = LEDGER_LOCK + 1
BUSY_TIMEOUT_MS = 30_000
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def normalise_url(url: str) -> str:
    """A SQLAlchemy URL from a URL or a plain file path (which means SQLite)."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def is_sqlite(engine: Engine | Connection) -> bool:
    """Whether ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` configured as the module docstring says."""
    url = normalise_url(url)
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"database URL {url!r} is not valid: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            parent = Path(parsed.database).parent
            if not parent.is_dir():
                raise ConfigError(f"database directory {parent} does not exist")
        engine = sa.create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(url, **kwargs)
    raise ConfigError(f"database URL {url!r}: only sqlite and postgresql are supported")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred-only).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("warden_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction(engine: Engine, *, lock: int | None = LEDGER_LOCK) -> Iterator[Connection]:
    """A transaction holding the database's write lock; commits on success.

    SQLite: ``BEGIN IMMEDIATE`` (the one writer lock). PostgreSQL: the advisory lock ``lock``
    (none when ``None``), released at commit or rollback.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(warden_write=True)
        with conn.begin():
            if lock is not None and not is_sqlite(conn):
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
            yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A read-only snapshot transaction (a consistent view of several queries)."""
    with engine.connect() as conn, conn.begin():
        if not is_sqlite(conn):
            conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        yield conn


def migrate(url_or_engine: str | Engine) -> None:
    """Upgrade the database to the newest schema (``alembic upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    engine = create_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    with write_transaction(engine, lock=MIGRATION_LOCK) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    if isinstance(url_or_engine, str):
        engine.dispose()
