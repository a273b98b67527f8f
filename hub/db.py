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
* A database that cannot take writes raises a typed, retryable error from every statement,
  never a driver traceback: full (SQLITE_FULL, PostgreSQL ``disk_full``) is
  :class:`StorageFullError`; read-only (SQLITE_READONLY, a PostgreSQL read-only transaction)
  and unreachable (connection refused or lost) are :class:`StorageUnavailableError`. Each
  engine logs one line when its condition changes (and one when a write succeeds again), not
  one per failed call. Messages name the database by :func:`url_label`, never its password.
* :func:`probe_writable` makes a real write in a transaction it rolls back, so a hub refuses
  to start on a database it could only read.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext

from trust.errors import ConfigError, StorageFullError, StorageUnavailableError

__all__ = [
    "LEDGER_LOCK",
    "MIGRATION_LOCK",
    "create_engine",
    "normalise_url",
    "is_sqlite",
    "url_label",
    "write_transaction",
    "read_transaction",
    "probe_writable",
    "mark_serving",
    "migrate",
]

log = logging.getLogger("warden.hub.db")

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


def url_label(url: str | sa.engine.URL) -> str:
    """How messages and logs name a database: the SQLite file, or PostgreSQL's
    ``host:port/database`` (never the user's password)."""
    try:
        parsed = url if isinstance(url, sa.engine.URL) else sa.engine.make_url(normalise_url(url))
    except sa.exc.ArgumentError:
        return "the configured database"
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` configured as the module docstring says."""
    url = normalise_url(url)
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        # The URL did not parse, so its password cannot be cut out: do not echo it.
        raise ConfigError(
            "database URL is not valid",
            hint="use a file path, sqlite:///PATH or postgresql://USER@HOST:PORT/DB",
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            parent = Path(parsed.database).parent
            if not parent.is_dir():
                raise ConfigError(f"database directory {parent} does not exist")
        engine = sa.create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
    elif parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        engine = sa.create_engine(url, **kwargs)
    else:
        raise ConfigError(
            f"database URL {parsed.render_as_string(hide_password=True)!r}: only sqlite and"
            " postgresql are supported"
        )
    _HEALTH[engine] = _Health(url_label(parsed), parsed.password)
    event.listen(engine, "handle_error", _map_storage_error)
    return engine


class _Health:
    """An engine's last reported storage condition, so each change is logged once."""

    def __init__(self, label: str, password: str | None) -> None:
        self.label = label
        self.password = password or None
        self.condition: str | None = None
        self.serving = False  # until then a condition becomes the caller's start-up error only
        self._lock = threading.Lock()

    def report(self, condition: str, message: str) -> None:
        """Log ``message`` if ``condition`` is not the one already reported."""
        with self._lock:
            if self.condition == condition:
                return
            self.condition = condition
            if not self.serving:
                return
        log.error("%s", message, extra={"fields": {"database": self.label,
                                                     "condition": condition}})

    def clear(self) -> None:
        """A write committed: log once that an earlier condition has cleared."""
        if self.condition is None:  # the hot path: no lock while healthy
            return
        with self._lock:
            old, self.condition = self.condition, None
        if old is not None:
            log.warning("database %s accepts writes again (was %s)", self.label, old,
                        extra={"fields": {"database": self.label, "condition": "ok"}})

    def reason(self, exc: BaseException) -> str:
        """The driver's first line for ``exc``, with the URL's password cut out."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return text.replace(self.password, "***") if self.password else text


_HEALTH: weakref.WeakKeyDictionary[Engine, _Health] = weakref.WeakKeyDictionary()

_PG_UNREACHABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def _storage_condition(exc: BaseException, is_disconnect: bool) -> str | None:
    """``"full"``, ``"read-only"``, ``"unreachable"`` or ``None`` (another error)."""
    name = getattr(exc, "sqlite_errorname", None)
    if isinstance(name, str):  # sqlite3 (Python ≥ 3.11 names the result code)
        if name == "SQLITE_FULL":
            return "full"
        if name.startswith("SQLITE_READONLY"):
            return "read-only"
        if name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN")):
            return "unreachable"
        return None
    if type(exc).__module__.split(".")[0] != "psycopg":
        return None
    import psycopg

    state = getattr(exc, "sqlstate", None)
    if state == "53100":
        return "full"
    if state == "25006":
        return "read-only"
    if is_disconnect or state in _PG_UNREACHABLE_STATES or (state or "").startswith("08"):
        return "unreachable"
    if state is None and isinstance(exc, psycopg.OperationalError):
        return "unreachable"  # the connection failed before the server said anything
    return None


_WHAT = {
    "full": "is full (no space left for the ledger)",
    "read-only": "is read-only (the hub cannot write to it)",
    "unreachable": "cannot be reached or opened",
}


def _map_storage_error(ctx: ExceptionContext) -> None:
    """``handle_error`` hook: turn a storage condition into a typed, retryable error."""
    if ctx.is_pre_ping:  # the pool reconnects by itself after a failed ping
        return
    condition = _storage_condition(ctx.original_exception, ctx.is_disconnect)
    if condition is None:
        return
    health = _HEALTH.get(ctx.engine) if ctx.engine is not None else None
    label = health.label if health else "the hub's database"
    reason = health.reason(ctx.original_exception) if health else type(
        ctx.original_exception).__name__
    message = f"database {label} {_WHAT[condition]}: {reason}"
    if health is not None:
        health.report(condition, message)
    cls = StorageFullError if condition == "full" else StorageUnavailableError
    raise cls(message, hint="the hub's operator must fix its storage; retry later")


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
    health = _HEALTH.get(engine)
    if health is not None:
        health.clear()


def mark_serving(engine: Engine) -> None:
    """Start-up checks are over: from now on log each change of storage condition once."""
    health = _HEALTH.get(engine)
    if health is not None:
        health.serving = True


class _Probe(Exception):
    """Raised inside :func:`probe_writable` to roll its write back."""


def probe_writable(engine: Engine) -> None:
    """Make a real write and roll it back; :class:`StorageUnavailableError` if it fails.

    The write rewrites Alembic's version row with itself (present once migrated), so the
    database must accept a row change, not only a lock: SQLite opened read-only, or
    PostgreSQL in a read-only transaction (a standby, ``default_transaction_read_only``),
    fails here instead of on the first Append.
    """
    try:
        with write_transaction(engine, lock=None) as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = version_num"))
            raise _Probe
    except _Probe:
        pass


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
