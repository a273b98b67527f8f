"""Alembic migrations for the hub database; run them with :func:`hub.db.migrate`."""
