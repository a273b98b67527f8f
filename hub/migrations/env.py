"""Alembic environment: runs on the connection :func:`hub.db.migrate` hands over.

Run from the command line (``alembic -c ...``) it opens its own engine from
``sqlalchemy.url`` through :func:`hub.db.create_engine`, so SQLite gets the same pragmas.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from hub.db import create_engine, write_transaction
from hub.ledger.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (conn := config.attributes.get("connection")) is not None:
    _run(conn)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with write_transaction(engine) as conn:
        _run(conn)
    engine.dispose()
