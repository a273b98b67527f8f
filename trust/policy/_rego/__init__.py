"""The one place Warden talks to regopy (rego-cpp): compile, query, and read errors back.

Nothing outside this package imports regopy. The package is split by concern; every name
callers use is re-exported here, so ``from trust.policy import _rego`` is the import surface:

* :mod:`.scan` — text checks on the source before it reaches rego-cpp (banned built-ins,
  constructs that crash rego-cpp);
* :mod:`.diagnostics` — :class:`RegoDiagnostic`, the internal failures, and reading
  rego-cpp's error S-expressions and error nodes back into located messages;
* :mod:`.values` — :data:`UNDEFINED` and decoding rego-cpp result trees into Python values;
* :mod:`.compile` — interpreters and :func:`compile_modules` (scan, parse, build, plan check);
* :mod:`.query` — evaluating an entrypoint or an ad-hoc query on a compiled bundle.

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

from regopy import RegoError

from trust.policy._rego.compile import (
    QUERY_SOURCE,
    compile_modules,
    new_interpreter,
    plan_builtins,
)
from trust.policy._rego.diagnostics import (
    CompileFailed,
    EvalFailed,
    RegoDiagnostic,
    parse_diagnostics,
)
from trust.policy._rego.query import (
    is_expression_query,
    query_bundle,
    query_compiled,
    query_text,
)
from trust.policy._rego.scan import NONDETERMINISTIC_BUILTINS, code_only, static_problems
from trust.policy._rego.values import UNDEFINED

__all__ = [
    "RegoError",
    "RegoDiagnostic",
    "CompileFailed",
    "EvalFailed",
    "UNDEFINED",
    "NONDETERMINISTIC_BUILTINS",
    "QUERY_SOURCE",
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
