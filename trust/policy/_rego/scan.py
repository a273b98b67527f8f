"""Text checks on Rego source, run before the source reaches rego-cpp.

Invariants: the scan sees code only — string literals and comments are blanked to spaces by
:func:`code_only` with offsets and newlines kept, and its state carries across lines, so
neither a multi-line raw string nor a line break between tokens hides a call; every problem is
located (file, 1-based line and column). This scan adds file:line to errors; the authoritative
check for banned built-ins is the compiled plan's table (:func:`.compile.plan_builtins`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from trust.policy._rego.diagnostics import RegoDiagnostic, nondeterministic_message

__all__ = [
    "NONDETERMINISTIC_BUILTINS",
    "code_only",
    "static_problems",
    "locate_builtin",
]

# Built-ins whose result depends on something other than (bundle, input): the clock, randomness,
# the network or the host. io.jwt.decode_verify and crypto.x509.parse_and_verify_certificates
# check expiry against the current clock; providers.aws.sign_req stamps the current time.
NONDETERMINISTIC_BUILTINS = frozenset(
    {
        "time.now_ns",
        "rand.intn",
        "uuid.rfc4122",
        "http.send",
        "net.lookup_ip_addr",
        "opa.runtime",
        "trace",
        "io.jwt.decode_verify",
        "crypto.x509.parse_and_verify_certificates",
        "crypto.x509.parse_and_verify_certificates_with_options",
        "providers.aws.sign_req",
    }
)


def _call_pattern(name: str) -> str:
    # rego-cpp accepts whitespace, newlines and comments (blanked to spaces by code_only)
    # between the parts of a ref and before the '(' — `time . now_ns\n()` is a call.
    return r"\s*\.\s*".join(re.escape(part) for part in name.split(".")) + r"\s*\("


_NONDET_RE = re.compile(
    r"(?<![\w.])("
    + "|".join(_call_pattern(n) for n in sorted(NONDETERMINISTIC_BUILTINS, key=len, reverse=True))
    + r")"
)
_WITH_WHOLE_DOC_RE = re.compile(r"(?<![\w.])with\s+(input|data)\s+as(?!\w)")
_LITERAL_START_RE = re.compile(r"""[{\["`]|-?\d|(?:true|false|null)(?!\w)""")


def code_only(text: str) -> str:
    """``text`` with string literals and comments blanked to spaces, offsets and newlines kept.

    The state carries across newlines: a raw string (backticks) may span lines, so code after
    its closing backtick on a later line is code. A double-quoted string cannot span lines
    (rego-cpp refuses it), and a ``#`` comment ends at the newline.
    """
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
        elif c == "`":
            close = text.find("`", i + 1)
            end = n if close < 0 else close + 1
        elif c == '"':
            end = i + 1
            while end < n and text[end] not in '"\n':
                end += 2 if text[end] == "\\" else 1
            end = min(end + 1 if end < n and text[end] == '"' else end, n)
        else:
            i += 1
            continue
        for k in range(i, end):
            if out[k] != "\n":
                out[k] = " "
        i = end
    return "".join(out)


def _skip_blank(text: str, pos: int) -> int:
    """The first offset at or after ``pos`` that is neither whitespace nor in a comment."""
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
        elif text[pos] == "#":
            newline = text.find("\n", pos)
            pos = len(text) if newline < 0 else newline
        else:
            break
    return pos


def _where(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def static_problems(path: str, text: str) -> list[RegoDiagnostic]:
    """Constructs refused before compilation, with file:line:column.

    The scan runs on the whole file (see :func:`code_only`), so neither a multi-line raw string
    nor a line break between tokens hides a call. :func:`.compile.compile_modules` checks the
    compiled plan's built-in table as well, which also catches spellings a text scan cannot see.
    """
    blanked = code_only(text)
    problems = []
    for m in _NONDET_RE.finditer(blanked):
        name = re.sub(r"[\s(]", "", m.group(1))
        problems.append(
            RegoDiagnostic(
                nondeterministic_message(name),
                path,
                *_where(text, m.start(1)),
                "nondeterministic_builtin",
            )
        )
    for m in _WITH_WHOLE_DOC_RE.finditer(blanked):
        doc = m.group(1)
        if doc == "input":
            value_at = _skip_blank(text, m.end())
            if _LITERAL_START_RE.match(text, value_at):
                continue  # a literal value works; only a reference crashes (see package doc)
            message = (
                "'with input as <reference>' crashes the Rego engine (rego-cpp 1.5.2 aborts "
                "when the value is a rule or data reference); write the value as a literal "
                "('with input as {…}') or replace fields: 'with input.<field> as …'"
            )
        else:
            message = (
                "'with data as …' (replacing the whole data document) crashes the Rego engine "
                "(rego-cpp 1.5.2); replace fields instead: 'with data.<path> as …'"
            )
        problems.append(RegoDiagnostic(message, path, *_where(text, m.start()), "unsupported_with"))
    problems.sort(key=lambda d: (d.line or 0, d.column or 0))
    return problems


def locate_builtin(name: str, modules: Mapping[str, str]) -> RegoDiagnostic:
    """A diagnostic for a banned built-in found in the plan; located by its last name part
    when the source mentions it (the spelling evaded the text scan, e.g. ``time["now_ns"]``)."""
    last = re.compile(r"(?<!\w)" + re.escape(name.rsplit(".", 1)[-1]) + r"(?!\w)")
    for path in sorted(modules):
        m = last.search(modules[path])
        if m:
            return RegoDiagnostic(
                nondeterministic_message(name),
                path,
                *_where(modules[path], m.start()),
                "nondeterministic_builtin",
            )
    return RegoDiagnostic(nondeterministic_message(name), code="nondeterministic_builtin")
