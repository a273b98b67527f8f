"""UTC timestamps in the one textual form Warden signs: RFC 3339 with a ``Z`` suffix."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from trust.errors import FormatError, UsageError

__all__ = ["utcnow", "format_time", "parse_time", "parse_duration", "from_now"]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, truncated to whole seconds."""
    return datetime.now(UTC).replace(microsecond=0)


def format_time(t: datetime) -> str:
    """``2026-11-26T11:00:00Z`` (whole seconds, UTC)."""
    if t.tzinfo is None:
        raise FormatError("refusing to format a naive datetime; Warden times are UTC")
    return t.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object, *, what: str) -> datetime:
    """Parse an RFC 3339 UTC time; ``what`` names the field in errors."""
    if not isinstance(text, str):
        raise FormatError(f"{what}: expected an RFC 3339 time string, got {text!r}")
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if t.tzinfo is None:
            raise FormatError(f"{what}: time {text!r} has no timezone; use UTC with 'Z'")
        return t.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise FormatError(f"{what}: not an RFC 3339 time in range: {text!r}") from exc


def parse_duration(text: str, *, what: str = "duration") -> timedelta:
    """``90s``, ``15m``, ``24h``, ``30d``, ``2w`` → timedelta."""
    m = _DURATION.match(text)
    if not m:
        raise UsageError(f"{what}: {text!r} is not a duration like 24h, 30d or 15m")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def from_now(text: str, *, what: str = "duration", now: datetime | None = None) -> datetime:
    """``now`` plus a duration such as ``365d``; out-of-range results are a :class:`UsageError`.

    A zero duration is refused: it names a validity that is over as soon as it begins (a root
    written with ``--expires 0s`` would be born expired).
    """
    delta = parse_duration(text, what=what)
    if not delta:
        raise UsageError(
            f"{what}: {text.strip()!r} would expire at once; give a duration above zero",
            hint="e.g. 365d",
        )
    try:
        return (now or utcnow()) + delta
    except OverflowError as exc:
        raise UsageError(f"{what}: {text!r} reaches past the year 9999") from exc
