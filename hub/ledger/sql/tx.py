"""Helpers every part of the SQL store shares: driver-level inserts (and, re-exported from
:mod:`hub.ledger.rules`, the bounds and value checks).

Invariants:

* Numbers from the wire are uint64; the columns are signed 64-bit. A value above
  :data:`MAX_INT` is not in the store (reads say :class:`NotFoundError`) and is never written.
* :func:`insert_many` hands rows to the driver's ``executemany`` as they are, so only values
  both drivers take unchanged (int, str, bytes) or values passed through :func:`bind` may
  appear in them. Every write happens inside a :func:`hub.db.write_transaction` the caller
  holds; these helpers never open or commit a transaction themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Re-exported: the bounds and value checks are backend-neutral and live in hub.ledger.rules.
from hub.ledger.rules import ACTIVE, MAX_INT, check_hex

__all__ = ["ACTIVE", "MAX_INT", "bind", "check_hex", "insert_many"]


def bind(conn: Connection, column: sa.Column[Any], value: Any) -> Any:
    """``value`` as the driver receives it for ``column`` (its type's bind processing)."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return value if process is None else process(value)


def insert_many(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """A driver-level ``executemany`` of ``rows`` (values already in driver form).

    The append path inserts a few hundred rows per batch; SQLAlchemy's per-row parameter
    processing cost more than the insert itself.
    """
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    conn.exec_driver_sql(sql, rows)

