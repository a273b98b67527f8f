"""Compiling Rego modules (and an optional ad-hoc query) into a rego-cpp bundle.

Invariants: every interpreter made here prints nothing and has strict built-in errors
(:func:`new_interpreter`); :func:`compile_modules` refuses a source before rego-cpp sees it
when the text scan finds a problem (:mod:`.scan`), reports every file's syntax errors, and
refuses a bundle whose plan calls a banned built-in — failing closed if the plan's built-in
table cannot be read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from regopy import Bundle, Interpreter, LogLevel, RegoError
from regopy import rego_shared as _rs

from trust.policy._rego.diagnostics import CompileFailed, RegoDiagnostic, parse_diagnostics
from trust.policy._rego.scan import NONDETERMINISTIC_BUILTINS, locate_builtin, static_problems
from trust.policy._rego.values import child_named, type_name

__all__ = ["QUERY_SOURCE", "new_interpreter", "compile_modules", "plan_builtins"]

QUERY_SOURCE = "query"  # the name a query's diagnostics carry


def new_interpreter() -> Interpreter:
    """An interpreter that prints nothing and forwards built-in errors."""
    interp = Interpreter()
    interp.log_level = LogLevel.NONE
    interp.strict_built_in_errors = True
    return interp


def compile_modules(
    modules: Mapping[str, str],
    data: Mapping[str, Any],
    entrypoints: list[str],
    *,
    query: str | None = None,
) -> tuple[Interpreter, Bundle]:
    """Compile ``modules`` (path → text) with ``data`` into a rego-cpp bundle.

    ``entrypoints`` are rego-cpp entrypoint paths such as ``warden/decision``; ``query``, if
    given, is compiled into the bundle's plan too (run it with
    :func:`.query.query_compiled`), so the same checks — the text scan and the plan's built-in
    table — cover an ad-hoc query exactly as they cover the modules. Returns the interpreter
    that compiled (kept alive beside the bundle) and the bundle.
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
        raise CompileFailed([locate_builtin(name, sources) for name in banned])
    return interp, bundle


def plan_builtins(bundle: Bundle) -> frozenset[str]:
    """Every built-in the compiled modules call, read from the plan's built-in table.

    rego-cpp lists in ``rego-policy/rego-static/rego-builtinfunctionseq`` each built-in called
    anywhere in the modules — reachable from an entrypoint or not, whatever the spelling
    (``time["now_ns"]()`` included) — so this is the authoritative check; the text scan of
    :func:`.scan.static_problems` only adds file:line. Fails closed: if the table cannot be
    found (a changed rego-cpp), compilation fails rather than skip the check.
    """
    node = _rs.rego_bundle_node(bundle._impl)
    for step in ("rego-policy", "rego-static", "rego-builtinfunctionseq"):
        node = child_named(node, step) if node else None
    if not node:
        raise CompileFailed(
            [RegoDiagnostic("cannot read the compiled plan's built-in table (rego-cpp changed?)")]
        )
    names = set()
    for i in range(_rs.rego_node_size(node)):
        fn = _rs.rego_node_get(node, i)
        if type_name(fn) != "rego-builtinfunction" or not _rs.rego_node_size(fn):
            raise CompileFailed([RegoDiagnostic("unexpected entry in the plan's built-in table")])
        names.add(_rs.rego_node_value(_rs.rego_node_get(fn, 0)))
    return frozenset(names)
