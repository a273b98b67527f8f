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
* Non-deterministic built-ins (clock, randomness, network, host; see
  :data:`NONDETERMINISTIC_BUILTINS`) are refused, so the decision stays a pure function of
  (bundle, input). Two layers: a text scan of each whole file (strings and comments blanked
  with their state carried across lines) for file:line errors, and, authoritatively, the
  compiled plan's built-in table, which lists every built-in the modules call whatever the
  spelling. An ad-hoc query is compiled into a plan too (:func:`compile_modules` with
  ``query``), so the same table covers it.
* Source constructs that crash rego-cpp 1.5.2 are refused before the source reaches it, so a
  policy cannot take the process down (reproduced in tests/policy/test_rego_crashes.py, which
  runs rego-cpp directly in a subprocess):

  - ``with data as <anything>`` segfaults;
  - ``with input as <ref>``, where the value is a rule or data reference (``with input as h``,
    ``with input as data.x``, ``with input as h.a``), aborts ("shape `rego-with` has no field
    `rego-ref`") or segfaults. A local variable works, but a text scan cannot tell a local
    from a rule, so only a value that starts as a literal (``{``, ``[``, a string, a number,
    ``true``/``false``/``null``) is accepted; ``with input.<field> as …`` is always accepted.
"""

from __future__ import annotations

import ctypes
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
    "NONDETERMINISTIC_BUILTINS",
    "new_interpreter",
    "code_only",
    "static_problems",
    "plan_builtins",
    "is_expression_query",
    "compile_modules",
    "query_bundle",
    "query_text",
    "query_compiled",
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
    nor a line break between tokens hides a call. :func:`compile_modules` checks the compiled
    plan's built-in table as well, which also catches spellings a text scan cannot see.
    """
    blanked = code_only(text)
    problems = []
    for m in _NONDET_RE.finditer(blanked):
        name = re.sub(r"[\s(]", "", m.group(1))
        problems.append(
            RegoDiagnostic(
                _nondeterministic_message(name),
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
                continue  # a literal value works; only a reference crashes (see module doc)
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


def _nondeterministic_message(name: str) -> str:
    return (
        f"built-in {name}() is not allowed: a decision must depend only on the bundle and the "
        "input (pass times and identifiers in the input)"
    )


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


QUERY_SOURCE = "query"  # the name a query's diagnostics carry


def compile_modules(
    modules: Mapping[str, str],
    data: Mapping[str, Any],
    entrypoints: list[str],
    *,
    query: str | None = None,
) -> tuple[Interpreter, Bundle]:
    """Compile ``modules`` (path → text) with ``data`` into a rego-cpp bundle.

    ``entrypoints`` are rego-cpp entrypoint paths such as ``warden/decision``; ``query``, if
    given, is compiled into the bundle's plan too (run it with :func:`query_compiled`), so the
    same checks — the text scan and the plan's built-in table — cover an ad-hoc query exactly
    as they cover the modules. Returns the interpreter that compiled (kept alive beside the
    bundle) and the bundle.
    """
    diags: list[RegoDiagnostic] = []
    for path in sorted(modules):
        diags.extend(static_problems(path, modules[path]))
    if query is not None:
        diags.extend(static_problems(QUERY_SOURCE, query))
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
        bundle = interp.build(query, entrypoints)
    except RegoError as exc:
        raise CompileFailed(parse_diagnostics(str(exc), modules)) from exc
    if not bundle.ok():
        raise CompileFailed([RegoDiagnostic("the Rego compiler produced no usable bundle")])
    # The plan's table lists the query's built-ins as well as the modules'.
    banned = sorted(plan_builtins(bundle) & NONDETERMINISTIC_BUILTINS)
    if banned:
        sources = dict(modules) if query is None else {**modules, QUERY_SOURCE: query}
        raise CompileFailed([_locate_builtin(name, sources) for name in banned])
    return interp, bundle


def _type_name(node: Any) -> str:
    size = _rs.rego.regoNodeTypeNameSize(node)
    buf = ctypes.create_string_buffer(size + 1)
    if _rs.rego.regoNodeTypeName(node, buf, size + 1) != 0:
        return ""
    return buf.value.decode("utf-8")


def _child(node: Any, type_name: str) -> Any:
    for i in range(_rs.rego_node_size(node)):
        child = _rs.rego_node_get(node, i)
        if _type_name(child) == type_name:
            return child
    return None


def plan_builtins(bundle: Bundle) -> frozenset[str]:
    """Every built-in the compiled modules call, read from the plan's built-in table.

    rego-cpp lists in ``rego-policy/rego-static/rego-builtinfunctionseq`` each built-in called
    anywhere in the modules — reachable from an entrypoint or not, whatever the spelling
    (``time["now_ns"]()`` included) — so this is the authoritative check; the text scan of
    :func:`static_problems` only adds file:line. Fails closed: if the table cannot be found
    (a changed rego-cpp), compilation fails rather than skip the check.
    """
    node = _rs.rego_bundle_node(bundle._impl)
    for step in ("rego-policy", "rego-static", "rego-builtinfunctionseq"):
        node = _child(node, step) if node else None
    if not node:
        raise CompileFailed(
            [RegoDiagnostic("cannot read the compiled plan's built-in table (rego-cpp changed?)")]
        )
    names = set()
    for i in range(_rs.rego_node_size(node)):
        fn = _rs.rego_node_get(node, i)
        if _type_name(fn) != "rego-builtinfunction" or not _rs.rego_node_size(fn):
            raise CompileFailed([RegoDiagnostic("unexpected entry in the plan's built-in table")])
        names.add(_rs.rego_node_value(_rs.rego_node_get(fn, 0)))
    return frozenset(names)


def _locate_builtin(name: str, modules: Mapping[str, str]) -> RegoDiagnostic:
    """A diagnostic for a banned built-in found in the plan; located by its last name part
    when the source mentions it (the spelling evaded the text scan, e.g. ``time["now_ns"]``)."""
    last = re.compile(r"(?<!\w)" + re.escape(name.rsplit(".", 1)[-1]) + r"(?!\w)")
    for path in sorted(modules):
        m = last.search(modules[path])
        if m:
            return RegoDiagnostic(
                _nondeterministic_message(name),
                path,
                *_where(modules[path], m.start()),
                "nondeterministic_builtin",
            )
    return RegoDiagnostic(_nondeterministic_message(name), code="nondeterministic_builtin")


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
            result = [{"expressions": exprs} for exprs, _ in _results(out)] or UNDEFINED
    finally:
        _rs.rego_free_output(out)
    if result is UNDEFINED:
        return UNDEFINED
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


_QUERY_VAR = "__warden_query_value"
# At the top level of a query, these make it a statement (bindings, several expressions)
# rather than one expression whose value is wanted.
_STATEMENT_RE = re.compile(r"[;\n]|:=|(?<![=!<>:])=(?!=)|\b(some|every|not|with|import|package)\b")


def _top_level(query: str) -> str:
    """``query`` with strings, comments and everything inside brackets blanked."""
    out = []
    depth = 0
    for c in code_only(query):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        out.append(c if depth == 0 else " ")
    return "".join(out)


def is_expression_query(query: str) -> bool:
    """Whether ``query`` is one expression (``data.a.b``, ``x == 1``) rather than statements."""
    return _STATEMENT_RE.search(_top_level(query.strip())) is None


def _results(out: Any) -> list[tuple[list[Any], dict[str, Any]]]:
    """(expression values, bindings) of each result in a query output, from the node tree."""
    node = _rs.rego_output_node(out)
    kind = _rs.rego.regoNodeType(node)
    if kind == 1014:  # Undefined
        return []
    if kind == 1018:  # Result
        results = [node]
    elif kind == 1017:  # Results
        results = [_rs.rego_node_get(node, i) for i in range(_rs.rego_node_size(node))]
    else:
        raise EvalFailed([f"unexpected node kind {kind} in a Rego query output"])
    converted = []
    for result in results:
        exprs: list[Any] = []
        bindings: dict[str, Any] = {}
        for i in range(_rs.rego_node_size(result)):
            child = _rs.rego_node_get(result, i)
            ckind = _rs.rego.regoNodeType(child)
            if ckind == 1015:  # Terms
                exprs = _node_value(child)
            elif ckind == 1016:  # Bindings of Binding(Var, value)
                for j in range(_rs.rego_node_size(child)):
                    binding = _rs.rego_node_get(child, j)
                    var = _rs.rego_node_value(_rs.rego_node_get(binding, 0))
                    bindings[var] = _node_value(_rs.rego_node_get(binding, 1))
        converted.append((exprs, bindings))
    return converted


def query_text(query: str) -> tuple[str, bool]:
    """The text to compile for an ad-hoc ``query``, and whether it is a single expression.

    rego-cpp, like OPA, treats an expression that evaluates to ``false`` as a failed query and
    reports it as undefined. So a single-expression query is compiled as
    ``<var> := (<query>)`` and its value read from the binding: ``false`` stays ``false`` and
    only a missing value is :data:`UNDEFINED`.
    """
    expression = is_expression_query(query)
    return (f"{_QUERY_VAR} := (\n{query}\n)" if expression else query), expression


def query_compiled(runner: Interpreter, bundle: Bundle, expression: bool, input_json: str) -> Any:
    """Run the query compiled into ``bundle`` (see :func:`query_text`); value or UNDEFINED.

    A single expression gives its value; a statement query (assignments, ``some``, several
    expressions) yields its variable bindings as an object, or ``True`` when it succeeds
    without binding any. Values always come from the result tree, never from the printed
    text. More than one result is an error.
    """
    try:
        runner.set_input_term(input_json)
        out = _rs.rego_bundle_query(runner._impl, bundle._impl)
    except RegoError as exc:
        raise EvalFailed([d.message for d in parse_diagnostics(str(exc), {})]) from exc
    try:
        if not _rs.rego_output_ok(out):
            node = _rs.rego_output_node(out)
            messages = _node_errors(node) if node else []
            raise EvalFailed(messages or ["evaluation failed"])
        results = _results(out)
    finally:
        _rs.rego_free_output(out)
    if not results:
        return UNDEFINED
    if len(results) != 1:
        raise EvalFailed([f"query produced {len(results)} results, expected one"])
    _, bindings = results[0]
    if expression:
        return bindings.get(_QUERY_VAR, UNDEFINED)
    return dict(bindings) if bindings else True
