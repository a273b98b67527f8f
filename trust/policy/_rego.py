"""The one place Warden talks to regopy (rego-cpp): compile, query, and read errors back.

Invariants:

* rego-cpp's diagnostic printing is silenced (log level NONE) on every interpreter we create,
  so nothing leaks onto the user's terminal; errors come back as :class:`RegoDiagnostic` values
  with the file, 1-based line and column recovered from rego-cpp's byte offsets.
* A query result that is an error node, is not JSON, or is not ``ok`` is always an error,
  never a value: rego-cpp reports some runtime errors (recursion) as a successful output whose
  body is an error term, and a caller must not mistake that for "undefined" or ``false``.
* Built-in errors (divide by zero, bad conversions) are strict: they surface as errors instead
  of silently making a rule undefined, which could turn a ``deny`` into nothing.
* Source constructs that crash rego-cpp 1.5.2 (``with input as …`` / ``with data as …``, which
  abort the process) and non-deterministic built-ins (time, randomness, network) are refused
  before the source reaches rego-cpp, so the decision stays a pure function of
  (bundle, input) and a policy cannot take the process down.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from regopy import Bundle, Interpreter, LogLevel, RegoError
from regopy import rego_shared as _rs

__all__ = [
    "RegoError",
    "RegoDiagnostic",
    "CompileFailed",
    "EvalFailed",
    "UNDEFINED",
    "new_interpreter",
    "static_problems",
    "compile_modules",
    "query_bundle",
    "query_interpreter",
    "parse_diagnostics",
]


class _Undefined:
    """Marker for a Rego result that is undefined (no rule produced a value)."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED = _Undefined()


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


def new_interpreter() -> Interpreter:
    """An interpreter that prints nothing and forwards built-in errors."""
    interp = Interpreter()
    interp.log_level = LogLevel.NONE
    interp.strict_built_in_errors = True
    return interp


# --- static checks on the source text ---------------------------------------------------------

_NONDETERMINISTIC = (
    "time.now_ns",
    "rand.intn",
    "uuid.rfc4122",
    "uuid.parse",
    "http.send",
    "net.lookup_ip_addr",
    "opa.runtime",
    "trace",
)
_NONDET_RE = re.compile(
    r"(?<![\w.])(" + "|".join(re.escape(n) for n in _NONDETERMINISTIC) + r")\s*\("
)
# `with input as X` / `with data as X` replace the whole document; rego-cpp 1.5.2 segfaults or
# aborts on them. `with input.field as X` works and is what tests should use.
_WHOLE_DOC_WITH_RE = re.compile(r"\bwith\s+(input|data)\s+as\b")


def _strip_comments_and_strings(line: str) -> str:
    """Blank out string literals and the trailing comment so regexes only see code."""
    out = []
    i = 0
    quote: str | None = None
    while i < len(line):
        c = line[i]
        if quote:
            if quote == '"' and c == "\\":
                out.append("  ")
                i += 2
                continue
            if c == quote:
                quote = None
            out.append(" ")
        elif c in '"`':
            quote = c
            out.append(" ")
        elif c == "#":
            break
        else:
            out.append(c)
        i += 1
    return "".join(out)


def static_problems(path: str, text: str) -> list[RegoDiagnostic]:
    """Constructs refused before compilation, with file:line:column."""
    problems = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comments_and_strings(raw)
        for m in _NONDET_RE.finditer(line):
            problems.append(
                RegoDiagnostic(
                    f"built-in {m.group(1)}() is not allowed: a decision must depend only on "
                    "the bundle and the input (pass times and identifiers in the input)",
                    path,
                    lineno,
                    m.start(1) + 1,
                    "nondeterministic_builtin",
                )
            )
        for m in _WHOLE_DOC_WITH_RE.finditer(line):
            problems.append(
                RegoDiagnostic(
                    f"'with {m.group(1)} as …' (replacing the whole document) is not supported by "
                    f"the Rego engine; replace fields instead: 'with {m.group(1)}.<field> as …'",
                    path,
                    lineno,
                    m.start() + 1,
                    "unsupported_with",
                )
            )
    return problems


# --- errors -----------------------------------------------------------------------------------

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


def _node_errors(node: Any) -> list[str]:
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
            messages.extend(_node_errors(child))
    if codes and messages:
        messages[-1] = f"{messages[-1]} ({codes[0]})"
    return messages


# --- compile & query --------------------------------------------------------------------------


def compile_modules(
    modules: Mapping[str, str], data: Mapping[str, Any], entrypoints: list[str]
) -> tuple[Interpreter, Bundle]:
    """Compile ``modules`` (path → text) with ``data`` into a rego-cpp bundle.

    ``entrypoints`` are rego-cpp entrypoint paths such as ``warden/decision``. Returns the
    interpreter that compiled (kept alive beside the bundle) and the bundle.
    """
    diags: list[RegoDiagnostic] = []
    for path in sorted(modules):
        diags.extend(static_problems(path, modules[path]))
    if diags:
        raise CompileFailed(diags)
    interp = new_interpreter()
    # Parse each module separately so that every file's syntax error is reported.
    for path in sorted(modules):
        try:
            interp.add_module(path, modules[path])
        except RegoError as exc:
            diags.extend(parse_diagnostics(str(exc), modules))
    if diags:
        raise CompileFailed(diags)
    try:
        interp.add_data_json(json.dumps(dict(data), allow_nan=False, sort_keys=True))
        bundle = interp.build(None, entrypoints)
    except RegoError as exc:
        raise CompileFailed(parse_diagnostics(str(exc), modules)) from exc
    if not bundle.ok():
        raise CompileFailed([RegoDiagnostic("the Rego compiler produced no usable bundle")])
    return interp, bundle


def _string(raw: str) -> str:
    # rego-cpp keeps some strings in their JSON-quoted form; decode those, keep the rest.
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            return raw
        if isinstance(value, str):
            return value
    return raw


def _node_value(node: Any) -> Any:
    """Build a Python value from a rego-cpp result node (the slow, always-correct path)."""
    kind = _rs.rego.regoNodeType(node)
    size = _rs.rego_node_size(node)
    if kind in (1002, 1003):  # Term, Scalar: one child
        return _node_value(_rs.rego_node_get(node, 0))
    if kind == 1008:
        return int(_rs.rego_node_value(node))
    if kind == 1009:
        return float(_rs.rego_node_value(node))
    if kind == 1010:
        return _string(_rs.rego_node_value(node))
    if kind == 1011:
        return True
    if kind == 1012:
        return False
    if kind == 1013:
        return None
    if kind in (1004, 1005, 1015):  # Array, Set, Terms
        return [_node_value(_rs.rego_node_get(node, i)) for i in range(size)]
    if kind == 1006:  # Object of ObjectItem(key, value)
        obj = {}
        for i in range(size):
            item = _rs.rego_node_get(node, i)
            key = _node_value(_rs.rego_node_get(item, 0))
            obj[key if isinstance(key, str) else json.dumps(key)] = _node_value(
                _rs.rego_node_get(item, 1)
            )
        return obj
    if kind == 1014:
        return UNDEFINED
    raise EvalFailed([f"unexpected node kind {kind} in a Rego result"])


def _results_from_nodes(out: Any) -> Any:
    node = _rs.rego_output_node(out)
    kind = _rs.rego.regoNodeType(node)
    if kind == 1014:
        return {}
    results = (
        [node]
        if kind == 1018
        else [_rs.rego_node_get(node, i) for i in range(_rs.rego_node_size(node))]
    )
    converted = []
    for result in results:
        entry: dict[str, Any] = {}
        for i in range(_rs.rego_node_size(result)):
            child = _rs.rego_node_get(result, i)
            if _rs.rego.regoNodeType(child) == 1015:
                entry["expressions"] = _node_value(child)
        converted.append(entry)
    return converted


def _read_output(out: Any) -> Any:
    try:
        text = _rs.rego_output_string(out)
        if not _rs.rego_output_ok(out) or text.startswith("(error"):
            node = _rs.rego_output_node(out)
            messages = _node_errors(node) if node else []
            raise EvalFailed(messages or [text.strip() or "evaluation failed"])
        if text == "undefined":
            return UNDEFINED
        try:
            result = json.loads(text)
        except json.JSONDecodeError:
            # rego-cpp 1.5.2 can print strings built by sprintf unescaped; read the node tree.
            result = _results_from_nodes(out)
    finally:
        _rs.rego_free_output(out)
    # A query yields {"expressions": [value], ...}; several results mean the entrypoint is not
    # a single document, which Warden treats as an error rather than picking one.
    if isinstance(result, list):
        if len(result) != 1:
            raise EvalFailed([f"query produced {len(result)} results, expected one"])
        result = result[0]
    exprs = result.get("expressions") if isinstance(result, dict) else None
    if not isinstance(exprs, list) or not exprs:
        return UNDEFINED
    return exprs[-1]


def query_bundle(runner: Interpreter, bundle: Bundle, entrypoint: str, input_json: str) -> Any:
    """Evaluate a compiled entrypoint on ``input_json``; the value, or :data:`UNDEFINED`."""
    try:
        runner.set_input_term(input_json)
        out = _rs.rego_bundle_query_entrypoint(runner._impl, bundle._impl, entrypoint)
    except RegoError as exc:
        raise EvalFailed([d.message for d in parse_diagnostics(str(exc), {})]) from exc
    return _read_output(out)


def query_interpreter(interp: Interpreter, query: str, input_json: str) -> Any:
    """Evaluate an ad-hoc query on an interpreter holding the modules; value or UNDEFINED."""
    try:
        interp.set_input_term(input_json)
        out = _rs.rego_query(interp._impl, query)
    except RegoError as exc:
        raise EvalFailed([d.message for d in parse_diagnostics(str(exc), {})]) from exc
    return _read_output(out)
