"""Ledger store tests (run on SQLite and PostgreSQL)."""
