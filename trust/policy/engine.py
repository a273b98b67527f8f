"""Evaluate a policy bundle: compile once, decide many times.

:class:`PolicyEngine` compiles a :class:`~trust.policy.bundle.PolicyBundle` with rego-cpp
(through regopy) into a plan for the bundle's entrypoint, then evaluates that plan for each
input. The bundle's ``data`` is visible to Rego as ``data.config``; ``*_test.rego`` files are
not part of the evaluated policy.

Invariants:

* The decision is a pure function of (bundle, input): the input is encoded as RFC 8785
  canonical JSON before Rego sees it, non-deterministic built-ins are refused at compile
  time, and violations and warnings are sorted (see :mod:`trust.policy.decision`).
* Anything that is not a clean result — a compile error, an undefined or malformed entrypoint
  value for a convention that needs one, a runtime error (divide by zero, conflicting outputs,
  recursion) — raises :class:`PolicyError`. It never becomes an ``allow``.
* Evaluation is bounded: it runs in a worker process (see :mod:`trust.policy.worker`) with a
  wall-clock timeout and a memory ceiling, and hitting either is a :class:`PolicyError`
  ("could not decide"), never an allow and never a dead or hung caller.
* Only a verified :class:`~trust.policy.bundle.PolicyBundle` is evaluated by
  ``PolicyEngine(bundle)``; anything else raises :class:`~trust.errors.UnverifiedError`. An
  :class:`~trust.policy.bundle.UnverifiedPolicyBundle` needs the separately named
  :meth:`PolicyEngine.for_unverified` (the CLI's explicit unverified paths), and its decisions
  say ``signature_verified: false``.
* One engine may be shared between threads: requests to its worker are serialised by a lock,
  because a rego-cpp interpreter holds the current input.
* A bundle that declares an ``input_projection`` is evaluated on the projected input only
  (see :mod:`trust.policy.projection`), and only if the projection covers every ``input``
  reference of its policy modules: otherwise the engine refuses the bundle (a
  :class:`PolicyError` naming each uncovered reference) before compiling it. The decision's
  ``input_sha256`` is always the hash of the whole input as given; ``projected_sha256`` the
  hash of what Rego saw.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from trust.canonical import canonical_json, sha256_hex
from trust.errors import FormatError, PolicyError, UnverifiedError
from trust.policy import _rego, worker
from trust.policy.bundle import PolicyBundle, UnverifiedPolicyBundle
from trust.policy.decision import Convention, Decision, Severity, Violation
from trust.policy.projection import InputProjection, require_coverage
from trust.policy.worker import EvaluationLimits
from trust.timeutil import utcnow

__all__ = ["PolicyEngine", "declared_documents", "entrypoint_declared", "compile_error"]

_KEYWORDS = frozenset(
    {"package", "import", "else", "not", "some", "every", "with", "as", "if", "contains", "in"}
)
_PACKAGE_RE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)")
_HEAD_RE = re.compile(
    r"^\s*(?:default\s+)?([A-Za-z_]\w*)(?:\.[A-Za-z_][\w.]*)?\s*(\[|\(|:=|=|\{|if\b|contains\b|$)"
)
_DENY_KEYS = ("deny", "violation", "violations")
_WARN_KEYS = ("warn", "warning", "warnings")
_SEVERITIES = frozenset(s.value for s in Severity)


def declared_documents(modules: Mapping[str, str]) -> tuple[set[str], set[str]]:
    """(packages, ``pkg.rule`` paths) declared by ``modules`` — a static scan of rule heads.

    Rule heads are recognised at brace depth 0, so rules may be indented.
    """
    packages: set[str] = set()
    rules: set[str] = set()
    for text in modules.values():
        package = None
        depth = 0
        # Blank strings and comments over the whole text: a raw string may span lines.
        for line in _rego.code_only(text).splitlines():
            if depth == 0:
                m = _PACKAGE_RE.match(line)
                if m:
                    package = m.group(1)
                    packages.add(package)
                elif package:
                    h = _HEAD_RE.match(line)
                    if h and h.group(1) not in _KEYWORDS:
                        rules.add(f"{package}.{h.group(1)}")
            depth += sum(line.count(c) for c in "{[(") - sum(line.count(c) for c in "}])")
            depth = max(depth, 0)
    return packages, rules


def entrypoint_declared(entrypoint: str, modules: Mapping[str, str]) -> bool:
    """Whether ``data.a.b`` names a package, a parent of packages, a rule, or a path in a rule."""
    path = entrypoint[len("data.") :]
    packages, rules = declared_documents(modules)
    if path in packages or path in rules:
        return True
    if any(doc.startswith(path + ".") for doc in packages | rules):
        return True
    return any(path.startswith(rule + ".") for rule in rules)


def compile_error(failed: _rego.CompileFailed, *, what: str) -> PolicyError:
    """A PolicyError listing every diagnostic as ``file:line:col: message``."""
    lines = [str(d) for d in failed.diagnostics]
    return PolicyError(f"{what}: Rego compilation failed: " + "; ".join(lines))


class PolicyEngine:
    """A compiled bundle, ready to evaluate inputs — in a bounded worker process.

    ``limits`` bound each evaluation in time and memory (default
    :data:`trust.policy.worker.DEFAULT_LIMITS`: 10 s, 2 GiB); exceeding one raises
    :class:`~trust.policy.worker.EvaluationLimitError`, a :class:`PolicyError`. The worker
    is started and the bundle compiled in it once, here; it is stopped by :meth:`close`, on
    leaving a ``with`` block, or when the engine is collected.
    """

    def __init__(self, bundle: PolicyBundle, *, limits: EvaluationLimits | None = None) -> None:
        """Compile the verified ``bundle``; raise :class:`PolicyError` naming file:line on any
        error, and :class:`UnverifiedError` for anything but a verified :class:`PolicyBundle`.
        """
        if not isinstance(bundle, PolicyBundle):
            raise UnverifiedError(
                f"the policy engine evaluates only a verified bundle, got "
                f"{type(bundle).__name__}",
                hint="verify it with PolicyBundle.from_envelope (or use "
                "PolicyEngine.for_unverified where unverified evaluation is explicitly asked)",
            )
        self._start(bundle, limits, verified=True)

    @classmethod
    def for_unverified(
        cls, bundle: UnverifiedPolicyBundle, *, limits: EvaluationLimits | None = None
    ) -> PolicyEngine:
        """An engine for a bundle whose signatures were NOT checked (its digests were).

        Only for paths where the user explicitly asked for it (``warden policy eval
        --skip-signature`` or on a source directory, ``policy check``); every decision says
        ``signature_verified: false``.
        """
        if not isinstance(bundle, UnverifiedPolicyBundle):
            raise PolicyError(
                f"PolicyEngine.for_unverified takes an UnverifiedPolicyBundle, got "
                f"{type(bundle).__name__}",
                hint="a verified PolicyBundle goes to PolicyEngine(bundle)",
            )
        engine = cls.__new__(cls)
        engine._start(bundle, limits, verified=False)
        return engine

    def _start(
        self,
        bundle: PolicyBundle | UnverifiedPolicyBundle,
        limits: EvaluationLimits | None,
        *,
        verified: bool,
    ) -> None:
        self.bundle: PolicyBundle | UnverifiedPolicyBundle = bundle
        self.signature_verified = verified
        what = f"bundle {bundle.name} v{bundle.version}"
        modules = bundle.modules
        entrypoint = bundle.manifest.entrypoint
        paths = bundle.manifest.input_projection
        self.projection: InputProjection | None = None
        if paths is not None:
            self.projection = InputProjection.from_paths(paths, what=what)
            require_coverage(self.projection, modules, what=what)
        try:
            self._worker = worker.PolicyWorker(
                modules,
                {"config": dict(bundle.data)},
                [bundle.manifest.rego_entrypoint],
                limits=limits,
                what=f"{what}, {entrypoint}",
            )
        except _rego.CompileFailed as exc:
            raise compile_error(exc, what=what) from None
        if not entrypoint_declared(entrypoint, modules):
            self._worker.close()
            raise PolicyError(
                f"{what}: entrypoint {entrypoint} is not defined by any module "
                f"(rules: {', '.join(sorted(declared_documents(modules)[1])) or 'none'})",
                hint="fix 'entrypoint' in bundle.yaml or add the rule",
            )
        self.limits = self._worker.limits
        self._in_process: tuple[Any, Any] | None = None
        # Compilation proper, in the worker (starting the worker process is not counted).
        self.compile_seconds = self._worker.compile_ms / 1000.0

    @property
    def worker_pid(self) -> int | None:
        """The evaluation worker's process id (None until the next evaluation after a kill)."""
        return self._worker.pid

    def close(self) -> None:
        """Stop the evaluation worker; a later evaluation would start a new one."""
        self._worker.close()

    def __enter__(self) -> PolicyEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # The benchmark compares against raw regopy on the same plan, in this process. That plan
    # is unbounded, so it is built only on request and never used to decide.
    def _in_process_plan(self) -> tuple[Any, Any]:
        if self._in_process is None:
            modules = self.bundle.modules
            _, plan = _rego.compile_modules(
                modules, {"config": dict(self.bundle.data)}, [self.bundle.manifest.rego_entrypoint]
            )
            self._in_process = (_rego.new_interpreter(), plan)
        return self._in_process

    @property
    def _runner(self) -> Any:
        return self._in_process_plan()[0]

    @property
    def _plan(self) -> Any:
        return self._in_process_plan()[1]

    def _encode(self, input_doc: Any) -> bytes:
        if not isinstance(input_doc, Mapping):
            raise PolicyError(f"policy input must be a JSON object, got {type(input_doc).__name__}")
        try:
            return canonical_json(dict(input_doc))
        except FormatError as exc:
            raise PolicyError(f"policy input cannot be encoded: {exc.message}") from exc
        except RecursionError:
            raise PolicyError("policy input cannot be encoded: it is nested too deeply") from None

    def _rego_input(self, input_doc: Any) -> tuple[bytes, bytes | None]:
        """(canonical whole input, canonical projected input or None without a projection)."""
        encoded = self._encode(input_doc)
        if self.projection is None:
            return encoded, None
        return encoded, self._encode(self.projection.apply(input_doc))

    def evaluate(self, input_doc: Any, *, now: datetime | None = None) -> Decision:
        """Decide on ``input_doc`` (projected, when the bundle says so); raise
        :class:`PolicyError` rather than guess.

        With a projection, the whole input is canonicalised and hashed while the worker
        evaluates the projected one (the two take similar time, in two processes); an input
        that cannot be encoded whole is still an error, raised after the reply is read.
        """
        started = time.perf_counter()
        manifest = self.bundle.manifest
        whole: list[bytes] = []

        def encode_whole() -> None:
            whole.append(self._encode(input_doc))

        projected: bytes | None = None
        if self.projection is None:
            encode_whole()
            seen = whole[0]
        else:
            if not isinstance(input_doc, Mapping):
                encode_whole()  # raises: a policy input is an object
            projected = seen = self._encode(self.projection.apply(input_doc))
        try:
            value = self._worker.entrypoint(
                manifest.rego_entrypoint,
                seen.decode("utf-8"),
                meanwhile=None if projected is None else encode_whole,
            )
        except _rego.EvalFailed as exc:
            raise PolicyError(
                f"bundle {self.bundle.name} v{self.bundle.version}: evaluating "
                f"{manifest.entrypoint} failed: {'; '.join(exc.messages)}",
                hint="a policy error is never an allow; fix the policy or the input",
            ) from None
        allow, violations, warnings = interpret(value, manifest.decision, manifest.entrypoint)
        return Decision(
            bundle_name=self.bundle.name,
            bundle_version=self.bundle.version,
            bundle_digest=self.bundle.digest,
            entrypoint=manifest.entrypoint,
            allow=allow,
            violations=violations,
            warnings=warnings,
            input_sha256=sha256_hex(whole[0]),
            evaluated_at=now or utcnow(),
            duration_ms=(time.perf_counter() - started) * 1000.0,
            signature_verified=self.signature_verified,
            projection=None if self.projection is None else self.projection.paths,
            projected_sha256=None if projected is None else sha256_hex(projected),
        )

    def query(self, query: str, input_doc: Any, *, undefined: Any = None) -> Any:
        """Evaluate an ad-hoc Rego query (``warden policy eval --query``); the raw value.

        A single expression gives its value (``false`` is ``False``); a statement query such
        as ``x := data.a.b`` gives its bindings as an object (see
        :func:`trust.policy._rego.query_compiled`). Returns ``undefined`` (default ``None``)
        when the query has no result. The query is compiled with the bundle into a plan whose
        built-in table is checked like a bundle's, so it may not call a non-deterministic
        built-in either; it runs in the same bounded worker. Errors raise :class:`PolicyError`.
        The query sees what the bundle's policy sees: the projected input, when the bundle
        declares an ``input_projection``.
        """
        encoded, projected = self._rego_input(input_doc)
        seen = encoded if projected is None else projected
        try:
            value = self._worker.query(query, seen.decode("utf-8"))
        except _rego.CompileFailed as exc:
            raise PolicyError(
                f"query {query!r} failed: " + "; ".join(str(d) for d in exc.diagnostics)
            ) from None
        except _rego.EvalFailed as exc:
            raise PolicyError(f"query {query!r} failed: {'; '.join(exc.messages)}") from None
        return undefined if value is _rego.UNDEFINED else value


# --- reading a result by convention -----------------------------------------------------------


def _violation(item: Any, default_rule: str, *, where: str) -> Violation:
    if isinstance(item, str):
        return Violation(default_rule, item)
    if isinstance(item, Mapping):
        message = item.get("message", item.get("msg"))
        if not isinstance(message, str):
            raise PolicyError(f"{where}: a violation object needs a string 'message', got {item!r}")
        rule = item.get("rule", item.get("id", default_rule))
        if not isinstance(rule, str):
            raise PolicyError(f"{where}: violation 'rule' must be a string, got {rule!r}")
        severity = item.get("severity", Severity.ERROR.value)
        if not isinstance(severity, str) or severity.lower() not in _SEVERITIES:
            raise PolicyError(
                f"{where}: violation severity must be one of {sorted(_SEVERITIES)}, "
                f"got {severity!r}"
            )
        return Violation(rule, message, severity.lower())
    return Violation(default_rule, canonical_json(item).decode("utf-8"))


def _collection(value: Any, *, where: str) -> list[Any]:
    """Items of a Rego set/array: a v1 set arrives as a list, a v0 partial set as {k: true}."""
    if value is _rego.UNDEFINED or value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if all(v is True for v in value.values()):
            return list(value.keys())
        raise PolicyError(f"{where}: expected a set of violations, got an object {value!r:.200}")
    raise PolicyError(f"{where}: expected a set of violations, got {value!r:.200}")


def _warning(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping) and isinstance(item.get("message", item.get("msg")), str):
        rule = item.get("rule")
        msg = str(item.get("message", item.get("msg")))
        return f"{rule}: {msg}" if isinstance(rule, str) else msg
    return canonical_json(item).decode("utf-8")


def interpret(
    value: Any, convention: Convention, entrypoint: str
) -> tuple[bool, tuple[Violation, ...], tuple[str, ...]]:
    """Turn an entrypoint's value into (allow, sorted violations, sorted warnings)."""
    name = entrypoint[len("data.") :]
    violations: list[Violation] = []
    warnings: list[str] = []
    if convention is Convention.DOCUMENT:
        if value is _rego.UNDEFINED:
            raise PolicyError(f"{entrypoint} is undefined for this input")
        if not isinstance(value, dict):
            raise PolicyError(
                f"{entrypoint}: decision 'document' needs an object (a package), got {value!r:.200}"
            )
        for key in _DENY_KEYS:
            if key in value:
                for item in _collection(value[key], where=f"{entrypoint}.{key}"):
                    violations.append(
                        _violation(item, f"{name}.{key}", where=f"{entrypoint}.{key}")
                    )
        for key in _WARN_KEYS:
            if key in value:
                warnings.extend(_warning(i) for i in _collection(value[key], where=entrypoint))
        allow_value = value.get("allow", _rego.UNDEFINED)
        if allow_value is _rego.UNDEFINED:
            allowed = False
            violations.append(Violation(f"{name}.allow", f"{entrypoint}.allow is undefined"))
        elif isinstance(allow_value, bool):
            allowed = allow_value
            if not allowed and not violations:
                violations.append(Violation(f"{name}.allow", f"{entrypoint}.allow is false"))
        else:
            raise PolicyError(f"{entrypoint}.allow must be a boolean, got {allow_value!r:.200}")
    elif convention is Convention.ALLOW_RULE:
        if value is _rego.UNDEFINED:
            allowed = False
            violations.append(Violation(name, f"{entrypoint} is undefined (no rule matched)"))
        elif isinstance(value, bool):
            allowed = value
            if not allowed:
                violations.append(Violation(name, f"{entrypoint} is false"))
        else:
            raise PolicyError(
                f"{entrypoint}: decision 'allow_rule' needs a boolean, got {value!r:.200}"
            )
    elif convention is Convention.DENY_RULES:
        for item in _collection(value, where=entrypoint):
            violations.append(_violation(item, name, where=entrypoint))
        allowed = True
    elif convention is Convention.DENY_RULE:
        if value is _rego.UNDEFINED or value is False:
            allowed = True
        elif value is True:
            allowed = False
            violations.append(Violation(name, f"{entrypoint} is true"))
        else:
            raise PolicyError(
                f"{entrypoint}: decision 'deny_rule' needs a boolean, got {value!r:.200}"
            )
    else:  # pragma: no cover - Convention is closed
        raise PolicyError(f"unknown decision convention {convention!r}")
    unique = tuple(sorted(set(violations)))
    return allowed and not unique, unique, tuple(sorted(set(warnings)))
