"""argparse types and option sets that need nothing heavy (command registration imports them).

Numbers typed on a command line are refused with a message naming the option and the value,
never a ``ValueError`` traceback: indexes and sizes fit the ledger's signed 64-bit columns,
seconds are positive and finite, sizes take binary units. ``hub``, ``agent`` and ``policy``
commands all use these, so a bound reads the same everywhere.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Any

from trust.errors import UsageError

__all__ = [
    "MAX_LEDGER_INT",
    "MAX_TIMEOUT_S",
    "add_limit_options",
    "byte_size",
    "evaluation_limits",
    "positive_int",
    "seconds",
    "whole_number",
]

# The largest index or size a ledger can hold: the database stores them as signed 64-bit.
MAX_LEDGER_INT = 2**63 - 1
# The longest wait a command accepts (a day): anything longer is a typo, not a plan.
MAX_TIMEOUT_S = 24 * 3600.0
_DIGITS = re.compile(r"[+-]?[0-9]+")
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(|k|m|g|kib|mib|gib|kb|mb|gb)", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "kib": 2**10, "kb": 10**3, "m": 2**20, "mib": 2**20, "mb": 10**6,
          "g": 2**30, "gib": 2**30, "gb": 10**9}


def whole_number(minimum: int, maximum: int = MAX_LEDGER_INT) -> Callable[[str], int]:
    """An argparse ``type``: a base-10 integer with ``minimum ≤ value ≤ maximum``."""

    def parse(text: str) -> int:
        t = text.strip()
        if not _DIGITS.fullmatch(t):
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
        # Count digits before converting: int() refuses strings past 4300 digits itself.
        negative = t.startswith("-")
        too_long = len(t.lstrip("+-").lstrip("0")) > len(str(max(maximum, -minimum)))
        if too_long and not negative:
            raise argparse.ArgumentTypeError(f"{_shown(t)} is too large; at most {maximum}")
        value = minimum - 1 if too_long else int(t)
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"{_shown(t)} is out of range: it must be ≥ {minimum}")
        if value > maximum:
            raise argparse.ArgumentTypeError(f"{text} is too large; at most {maximum}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in its fallback message
    return parse


def seconds(maximum: float = MAX_TIMEOUT_S) -> Callable[[str], float]:
    """An argparse ``type``: a positive, finite number of seconds, at most ``maximum``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(
                f"{text} is not a positive, finite number of seconds")
        if value > maximum:
            raise argparse.ArgumentTypeError(f"{text} is too long; at most {maximum:g} seconds")
        return value

    parse.__name__ = "seconds"
    return parse


def _shown(text: str) -> str:
    """A typed number short enough to echo (a 5000-digit argument is not repeated whole)."""
    return text if len(text) <= 32 else f"{text[:29]}… ({len(text)} characters)"


def positive_int(text: str) -> int:
    """argparse ``type=``: an integer ≥ 1 (a size, a version), refused with a clear message."""
    return _POSITIVE(text)


_POSITIVE = whole_number(1)


def byte_size(text: str) -> int:
    """argparse ``type=``: a size such as ``512MiB``, ``2GiB`` or ``1048576`` (bytes)."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size (examples: 1048576, 512MiB, 2GiB)")
    value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive size")
    return value


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    """``--eval-timeout`` and ``--eval-memory``: the bounds of one policy evaluation."""
    parser.add_argument(
        "--eval-timeout", type=seconds(), metavar="SECONDS",
        help="give up on one policy evaluation after this long: exit 2, 'could not decide' "
        "(default 10)")
    parser.add_argument(
        "--eval-memory", type=byte_size, metavar="SIZE",
        help="memory one policy evaluation may use, e.g. 512MiB (default 2GiB; at least 64MiB)")


def evaluation_limits(args: argparse.Namespace) -> Any:
    """The :class:`~trust.policy.worker.EvaluationLimits` the flags ask for (defaults else)."""
    from trust.errors import ConfigError
    from trust.policy.worker import DEFAULT_LIMITS, EvaluationLimits

    timeout = getattr(args, "eval_timeout", None)
    memory = getattr(args, "eval_memory", None)
    if timeout is None and memory is None:
        return DEFAULT_LIMITS
    try:
        return EvaluationLimits(
            timeout_s=DEFAULT_LIMITS.timeout_s if timeout is None else timeout,
            memory_bytes=DEFAULT_LIMITS.memory_bytes if memory is None else memory,
            startup_timeout_s=DEFAULT_LIMITS.startup_timeout_s)
    except ConfigError as exc:
        raise UsageError(exc.message) from None
