"""Evaluating a compiled bundle: an entrypoint, or an ad-hoc query compiled into its plan.

Invariants: an output that is not ``ok``, is an error node, or prints as an error is always
:class:`~.diagnostics.EvalFailed`, never a value (rego-cpp reports recursion as an "ok" output
whose body is an error); more than one result is an error rather than a pick; a value that
is missing is :data:`~.values.UNDEFINED`, never ``None`` or ``False``; query values are read
from the result tree, never from rego-cpp's printed text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from regopy import Bundle, Interpreter, RegoError
from regopy import rego_shared as _rs

from trust.policy._rego.diagnostics import EvalFailed, node_errors, parse_diagnostics
from trust.policy._rego.scan import code_only
from trust.policy._rego.values import UNDEFINED, result_values

__all__ = ["query_bundle", "query_text", "query_compiled", "is_expression_query"]


def _read_output(out: Any) -> Any:
    try:
        text = _rs.rego_output_string(out)
        if not _rs.rego_output_ok(out) or text.startswith("(error"):
            node = _rs.rego_output_node(out)
            messages = node_errors(node) if node else []
            raise EvalFailed(messages or [text.strip() or "evaluation failed"])
        if text == "undefined":
            return UNDEFINED
        try:
            result = json.loads(text)
        except json.JSONDecodeError:
            # rego-cpp 1.5.2 can print strings built by sprintf unescaped; read the node tree.
            result = [{"expressions": exprs} for exprs, _ in result_values(out)] or UNDEFINED
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
            messages = node_errors(node) if node else []
            raise EvalFailed(messages or ["evaluation failed"])
        results = result_values(out)
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
