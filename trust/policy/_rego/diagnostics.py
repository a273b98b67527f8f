"""Errors from rego-cpp, read back into located :class:`RegoDiagnostic` values.

Invariants: a diagnostic's line and column are 1-based and computed from rego-cpp's *byte*
offsets into the UTF-8 source; parsing an error text always yields at least one diagnostic
(an unreadable one becomes its own message), so an error never turns into "no error".
:class:`CompileFailed` and :class:`EvalFailed` are internal to ``trust.policy``: callers map
them to :class:`trust.errors.PolicyError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from regopy import rego_shared as _rs

__all__ = [
    "RegoDiagnostic",
    "CompileFailed",
    "EvalFailed",
    "parse_diagnostics",
    "node_errors",
    "nondeterministic_message",
]


@dataclass(frozen=True)
class RegoDiagnostic:
    """One error reported by the Rego compiler or evaluator, located when possible."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    code: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}:{self.column}: " if self.line else f"{self.file}: "
        return f"{where}{self.message}"


class CompileFailed(Exception):
    """Internal: compilation failed with these diagnostics (mapped to PolicyError by callers)."""

    def __init__(self, diagnostics: list[RegoDiagnostic]) -> None:
        super().__init__("; ".join(str(d) for d in diagnostics))
        self.diagnostics = diagnostics


class EvalFailed(Exception):
    """Internal: evaluation failed with these messages (mapped to PolicyError by callers)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def nondeterministic_message(name: str) -> str:
    """The one message for a banned built-in, whichever check found it."""
    return (
        f"built-in {name}() is not allowed: a decision must depend only on the bundle and the "
        "input (pass times and identifiers in the input)"
    )


_OFFSET_RE = re.compile(r"\|(\d+)\|(\d+)")


def _read_prefixed(text: str, start: int) -> tuple[str, int]:
    """Read ``N:<N chars>`` at ``start``; return the string and the index after it."""
    colon = text.index(":", start)
    n = int(text[start:colon])
    return text[colon + 1 : colon + 1 + n], colon + 1 + n


def _line_col(source: str, offset: int) -> tuple[int, int]:
    # rego-cpp offsets are byte offsets into the UTF-8 source.
    data = source.encode("utf-8")[:offset]
    line = data.count(b"\n") + 1
    col = len(data) - (data.rfind(b"\n") + 1) + 1
    return line, col


def parse_diagnostics(text: str, sources: Mapping[str, str]) -> list[RegoDiagnostic]:
    """Turn rego-cpp's error S-expression into located diagnostics.

    The format is ``(error N:<file>|<offset>|<len> (errormsg N:<message>) … (errorcode N:…))``
    where ``N:`` gives the length of the string that follows.
    """
    diags: list[RegoDiagnostic] = []
    i = 0
    while True:
        j = text.find("(error", i)
        if j < 0:
            break
        k = j + len("(error")
        if text.startswith("seq", k) or text.startswith("msg", k) or text.startswith("ast", k):
            i = k
            continue
        file = line = col = None
        rest = text[k:].lstrip()
        k = len(text) - len(rest)
        if rest[:1].isdigit():
            file, k = _read_prefixed(text, k)
            where = _OFFSET_RE.match(text, k)
            if where and file in sources:
                line, col = _line_col(sources[file], int(where.group(1)))
        m = text.find("(errormsg ", k)
        message = "unknown Rego error"
        if m >= 0:
            message, k = _read_prefixed(text, m + len("(errormsg "))
        code = None
        c = text.find("(errorcode ", k)
        nxt = text.find("(error ", k)
        if c >= 0 and (nxt < 0 or c < nxt):
            code, k = _read_prefixed(text, c + len("(errorcode "))
        diags.append(RegoDiagnostic(message, file, line, col, code))
        i = k
    if not diags:
        diags.append(RegoDiagnostic(text.strip() or "unknown Rego error"))
    return diags


def node_errors(node: Any) -> list[str]:
    """Messages under an error node (kinds Error 1800 / ErrorSeq 1804)."""
    kind = _rs.rego.regoNodeType(node)
    if kind == 1801:  # ErrorMessage
        return [_rs.rego_node_value(node)]
    messages: list[str] = []
    codes: list[str] = []
    for i in range(_rs.rego_node_size(node)):
        child = _rs.rego_node_get(node, i)
        ckind = _rs.rego.regoNodeType(child)
        if ckind == 1803:  # ErrorCode
            codes.append(_rs.rego_node_value(child))
        elif ckind in (1800, 1801, 1804):
            messages.extend(node_errors(child))
    if codes and messages:
        messages[-1] = f"{messages[-1]} ({codes[0]})"
    return messages
