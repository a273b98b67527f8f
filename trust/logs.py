"""Structured logs for the hub and the agent: one JSON object per line on stderr.

Every record has ``time`` (RFC 3339 UTC with milliseconds), ``level``, ``logger`` and ``msg``;
fields passed as ``extra={"fields": {...}}`` are merged in, so an access-log line reads
``{"time": ..., "level": "info", "logger": "warden.hub.rpc", "msg": "rpc", "method": ...}``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["JsonFormatter", "setup_logging"]


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as compact JSON (exception text included when present)."""
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def setup_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Route the ``warden`` loggers to ``stream`` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("warden")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
