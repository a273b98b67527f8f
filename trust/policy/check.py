"""``warden policy check``: everything that can be known about a bundle before signing it.

Checks, in order, and reports every problem found at a stage before giving up:

1. ``bundle.yaml`` parses and has only known keys with well-typed values;
2. every ``.rego`` file parses (each syntax error reported as ``path:line:col: message``, with
   the path on disk, including files pulled in through ``include``);
3. a declared ``input_projection`` covers every ``input`` reference of the policy modules
   (each uncovered one reported as ``path:line:col``; see :mod:`trust.policy.projection`);
4. the policy modules compile together and the entrypoint names a package or rule;
5. the tests compile too (they are not run here: that is ``warden policy test``).

Invariant: :func:`check_directory` either returns a :class:`CheckReport` for a bundle that will
compile on every verifier, or raises :class:`PolicyError` / :class:`FormatError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trust.errors import PolicyError
from trust.policy import _rego
from trust.policy.bundle import MANIFEST_FILE, BundleSource, UnverifiedPolicyBundle, load_source
from trust.policy.engine import PolicyEngine
from trust.policy.projection import InputProjection, require_coverage
from trust.policy.testing import discover_tests
from trust.policy.worker import PolicyWorker

__all__ = ["CheckReport", "check_directory"]


@dataclass(frozen=True)
class CheckReport:
    """What a successful check found."""

    name: str
    version: int
    entrypoint: str
    modules: int
    tests: int
    compile_ms: float
    projection: tuple[str, ...] | None = None


def _locate(diag: _rego.RegoDiagnostic, source: BundleSource) -> str:
    origin = source.origins.get(diag.file or "")
    if origin is None:
        return str(diag)
    return str(_rego.RegoDiagnostic(diag.message, str(origin), diag.line, diag.column))


def check_directory(directory: str | Path) -> CheckReport:
    """Check a bundle source directory; raise with every located error."""
    source = load_source(directory)
    problems: list[str] = []
    for path in sorted(source.files):
        text = source.files[path]
        for diag in _rego.static_problems(path, text):
            problems.append(_locate(diag, source))
        interp = _rego.new_interpreter()
        try:
            interp.add_module(path, text)
        except _rego.RegoError as exc:
            for diag in _rego.parse_diagnostics(str(exc), {path: text}):
                problems.append(_locate(diag, source))
    if problems:
        raise PolicyError(f"{directory}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    bundle = UnverifiedPolicyBundle.from_source(directory)
    paths = bundle.manifest.input_projection
    if paths is not None:
        where = str(source.directory / MANIFEST_FILE)
        require_coverage(
            InputProjection.from_paths(paths, what=where),
            bundle.modules,
            what=where,
            locate={name: str(path) for name, path in source.origins.items()},
        )
    # Both compilations run in a bounded worker (trust.policy.worker), like evaluation. A source
    # directory is unsigned by nature and nothing is decided here: compile only.
    with PolicyEngine.for_unverified(bundle) as engine:
        compile_seconds = engine.compile_seconds
    tests = discover_tests(bundle.files)
    if tests:
        entrypoints = [name[len("data.") :].replace(".", "/") for _, name in tests]
        try:
            PolicyWorker(
                bundle.files, {"config": dict(bundle.data)}, entrypoints, what="tests"
            ).close()
        except _rego.CompileFailed as exc:
            located = [_locate(d, source) for d in exc.diagnostics]
            raise PolicyError(
                f"{directory}: tests do not compile:\n  " + "\n  ".join(located)
            ) from None
    return CheckReport(
        name=bundle.name,
        version=bundle.version,
        entrypoint=bundle.manifest.entrypoint,
        modules=len(bundle.modules),
        tests=len(tests),
        compile_ms=compile_seconds * 1000.0,
        projection=paths,
    )
