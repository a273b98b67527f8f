"""Run Rego unit tests the way ``opa test`` does.

Every rule whose name starts with ``test_`` in a ``*_test.rego`` file is a test. A test passes
when it evaluates to ``true``; ``false`` or undefined is a failure; an evaluation error is an
error. Tests see the bundle's ``data`` as ``data.config`` (overridable with
``with data.config.<key> as …``) and an empty input unless they use ``with input.<field> as …``
(or ``with input as {…}`` with a literal value; see :mod:`trust.policy._rego` for why).

Invariants: test results are reported in a stable order (file, then test name) so two runs on
the same bundle print the same report; tests run in a bounded worker process, so a test whose
evaluation blows up is an ``ERROR``, not a dead host.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from trust.errors import PolicyError
from trust.policy import _rego
from trust.policy.engine import compile_error
from trust.policy.worker import (
    EvaluationCrashError,
    EvaluationLimitError,
    EvaluationLimits,
    PolicyWorker,
)

__all__ = ["Outcome", "TestResult", "discover_tests", "run_tests"]

_PACKAGE_RE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)", re.MULTILINE)
_TEST_RE = re.compile(r"^(test_\w+)\b", re.MULTILINE)


class Outcome(StrEnum):
    """The result of one test."""

    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"


@dataclass(frozen=True)
class TestResult:
    """One test's outcome, where it lives, and how long it took."""

    __test__ = False  # not a pytest test class

    file: str
    name: str
    outcome: Outcome
    duration_ms: float
    detail: str = ""

    def line(self) -> str:
        """``data.pkg.test_x: PASS (0.4ms)`` like ``opa test -v``."""
        extra = f" — {self.detail}" if self.detail else ""
        return f"{self.name}: {self.outcome.value} ({self.duration_ms:.1f}ms){extra}"


def discover_tests(files: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(file, data.pkg.test_name)`` for each test rule, sorted; a rule with several bodies
    counts once."""
    found: set[tuple[str, str]] = set()
    for path, text in files.items():
        if not path.endswith("_test.rego"):
            continue
        pkg = _PACKAGE_RE.search(text)
        if not pkg:
            continue
        for m in _TEST_RE.finditer(text):
            found.add((path, f"data.{pkg.group(1)}.{m.group(1)}"))
    return sorted(found)


def run_tests(
    files: Mapping[str, str], data: Mapping[str, Any], *, limits: EvaluationLimits | None = None
) -> list[TestResult]:
    """Compile every file (tests included) and run each test; raise PolicyError if it won't
    compile.

    Tests run in a bounded worker (see :mod:`trust.policy.worker`): a test that exceeds the
    time or memory limit, or crashes the engine, is an ``ERROR`` with the reason, and the
    remaining tests run in a fresh worker.
    """
    tests = discover_tests(files)
    if not tests:
        return []
    entrypoints = [name[len("data.") :].replace(".", "/") for _, name in tests]
    try:
        runner = PolicyWorker(
            files,
            {"config": dict(data)},
            entrypoints,
            limits=limits,
            what="tests",
        )
    except _rego.CompileFailed as exc:
        raise compile_error(exc, what="tests") from None
    results = []
    with runner:
        for (path, name), entry in zip(tests, entrypoints, strict=True):
            started = time.perf_counter()
            try:
                value = runner.entrypoint(entry, "{}")
            except _rego.EvalFailed as exc:
                outcome, detail = Outcome.ERROR, "; ".join(exc.messages)
            except (EvaluationLimitError, EvaluationCrashError) as exc:
                outcome, detail = Outcome.ERROR, exc.message
            else:
                if value is True:
                    outcome, detail = Outcome.PASS, ""
                elif value is _rego.UNDEFINED:
                    outcome, detail = Outcome.FAIL, "undefined"
                else:
                    outcome, detail = Outcome.FAIL, f"got {value!r:.100}"
            elapsed = (time.perf_counter() - started) * 1000.0
            results.append(TestResult(path, name, outcome, elapsed, detail))
    return results


def require_tests(files: Mapping[str, str], *, what: str) -> None:
    """Raise PolicyError if a bundle has no tests at all (``warden policy test`` needs some)."""
    if not discover_tests(files):
        raise PolicyError(f"{what}: no test_* rules found in *_test.rego files")
