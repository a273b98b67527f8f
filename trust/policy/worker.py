"""Bounded policy evaluation: Rego runs in a worker process with a time and a memory limit.

A policy that passes ``warden policy check`` can still build a 100-million-element array
(``numbers.range``) or backtrack for ever (``regex.match("^(a+)+$", …)``) on some input. In
the caller's process that is an OOM kill of the host or a hang. :class:`PolicyWorker` compiles
the modules in a child process once and sends it one request per evaluation; the parent waits
at most :attr:`EvaluationLimits.timeout_s`, the child cannot map more than
:attr:`EvaluationLimits.memory_bytes` beyond its start-up footprint (see
:mod:`trust.policy._worker`).

Invariants:

* Hitting a bound raises :class:`EvaluationLimitError`; any other death of the worker (a
  signal, a broken reply) raises :class:`EvaluationCrashError`. Both are
  :class:`~trust.errors.PolicyError` (exit 2, "could not decide"): never an allow, and the
  caller's process neither grows nor hangs.
* A worker that timed out or died is killed and reaped, and the next request starts a fresh
  one (compiling again), so one bad input does not poison later decisions. A worker found
  dead *before* a request is sent is replaced silently: its death was not this request's.
* Requests are serialised by a lock: one worker evaluates one thing at a time.
* A request's ``meanwhile`` callable runs in the caller while the worker evaluates (the
  engine hashes the whole input there); whatever it raises is raised only after the reply has
  been read, so the next request never reads this one's reply.
* The child is a fresh interpreter (``subprocess``, no ``fork`` of a threaded parent); it
  runs the same ``trust`` package as the parent (its directory goes first on ``sys.path``).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import trust
from trust.errors import ConfigError, PolicyError

__all__ = [
    "DEFAULT_LIMITS",
    "EvaluationCrashError",
    "EvaluationLimitError",
    "EvaluationLimits",
    "PolicyWorker",
]

GiB = 2**30
MiB = 2**20
_MIN_MEMORY = 64 * MiB
_HINT = (
    "a policy that cannot be evaluated within its bounds is never an allow; look for "
    "unbounded built-ins (numbers.range, regex backtracking, walk) or raise the engine's limits"
)
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from trust.policy._worker import main; main()"
_ROOT = str(Path(trust.__file__).resolve().parent.parent)


@dataclass(frozen=True)
class EvaluationLimits:
    """How long and how much memory one evaluation may take.

    ``timeout_s`` bounds each request (wall clock, send to reply); ``memory_bytes`` bounds the
    address space the worker may map beyond its start-up footprint (compile and evaluation
    together); ``startup_timeout_s`` bounds starting a worker and compiling the bundle.
    """

    timeout_s: float = 10.0
    memory_bytes: int = 2 * GiB
    startup_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("timeout_s", "startup_timeout_s"):
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or value <= 0:
                raise ConfigError(
                    f"evaluation limit {name} must be a positive number, got {value!r}"
                )
        memory = self.memory_bytes
        if not isinstance(memory, int) or isinstance(memory, bool) or memory < _MIN_MEMORY:
            raise ConfigError(
                f"evaluation limit memory_bytes must be at least {_size(_MIN_MEMORY)}, "
                f"got {self.memory_bytes!r}"
            )


DEFAULT_LIMITS = EvaluationLimits()


def _size(n: int) -> str:
    return f"{n / GiB:g} GiB" if n >= GiB else f"{n / MiB:g} MiB"


class EvaluationLimitError(PolicyError):
    """Evaluation hit its time or memory bound: the engine could not decide (exit 2).

    ``limit`` is ``"time"`` or ``"memory"``; ``peak_rss_bytes`` is the worker's measured peak
    resident memory when it is known.
    """

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        peak_rss_bytes: int | None = None,
        hint: str | None = _HINT,
    ) -> None:
        super().__init__(message, hint=hint)
        self.limit = limit
        self.peak_rss_bytes = peak_rss_bytes


class EvaluationCrashError(PolicyError):
    """The evaluation worker died (a signal, a broken reply): could not decide (exit 2)."""


@dataclass
class _Child:
    """One worker process and the parent's end of its socket."""

    proc: subprocess.Popen[bytes]
    conn: Connection
    stderr: IO[bytes]
    compile_ms: float = 0.0

    def kill(self) -> tuple[int | None, int | None]:
        """Kill (if alive) and reap; (exit status as Popen reports it, peak RSS in bytes)."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        peak = None
        if self.proc.returncode is None:
            try:
                _, status, usage = os.wait4(self.proc.pid, 0)
            except ChildProcessError:  # reaped elsewhere
                self.proc.wait()
            else:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                peak = usage.ru_maxrss * 1024  # Linux reports KiB
        self.conn.close()
        return self.proc.returncode, peak

    def stderr_tail(self) -> bytes:
        self.stderr.seek(0, os.SEEK_END)
        size = self.stderr.tell()
        self.stderr.seek(max(0, size - 4096))
        return self.stderr.read()

    def close(self) -> None:
        self.kill()
        self.stderr.close()


# Idle workers kept for the next PolicyWorker: starting a Python process and importing
# regopy costs far more than compiling a bundle, and tests and services create many engines.
# Only a worker whose last request completed is kept; "load" resets everything in it.
_POOL_SIZE = 2
# How often a waiting parent checks the worker's resident set (a decision answers in well
# under this, so only long evaluations pay for the watchdog; one look reads /proc, ~10 µs).
_WATCH_S = 0.005
_POOL_MAX_RSS = 512 * MiB
_pool: list[_Child] = []
_pool_lock = threading.RLock()  # re-entrant: a finalizer may run while this thread holds it
_pool_pid = os.getpid()


def _resident(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _release(child: _Child) -> None:
    """Keep a healthy idle worker for reuse, or stop it."""
    rss = _resident(child.proc.pid)
    keep = (
        not sys.is_finalizing()
        and os.getpid() == _pool_pid
        and child.proc.poll() is None
        and rss is not None
        and rss < _POOL_MAX_RSS
    )
    if keep:
        with _pool_lock:
            if len(_pool) < _POOL_SIZE:
                _pool.append(child)
                return
    child.close()


def _acquire() -> _Child | None:
    """An idle live worker from the pool, if any (dead ones are reaped on the way)."""
    if os.getpid() != _pool_pid:  # a fork of this process: the pooled workers are not ours
        return None
    while True:
        with _pool_lock:
            if not _pool:
                return None
            child = _pool.pop()
        if child.proc.poll() is None:
            return child
        child.close()


@atexit.register
def _drain_pool() -> None:
    with _pool_lock:
        idle = list(_pool)
        _pool.clear()
    for child in idle:
        child.close()


class _Slot:
    """The current child, if any; a finalizer releases it when its worker is collected."""

    def __init__(self) -> None:
        self.child: _Child | None = None

    def close(self) -> None:
        child, self.child = self.child, None
        if child is not None:
            _release(child)

    def discard(self) -> _Child | None:
        """Forget the current child without pooling it (it failed); the caller stops it."""
        child, self.child = self.child, None
        return child


class PolicyWorker:
    """Rego modules compiled in a worker process; bounded requests against them.

    ``entrypoints`` are rego-cpp paths (``pkg/rule``). Raises the internal
    :class:`trust.policy._rego.CompileFailed` / :class:`~trust.policy._rego.EvalFailed` for a
    policy's own errors (callers word them), :class:`EvaluationLimitError` and
    :class:`EvaluationCrashError` for bounds and crashes. ``what`` names the policy in messages.
    """

    def __init__(
        self,
        modules: Mapping[str, str],
        data: Mapping[str, Any],
        entrypoints: list[str],
        *,
        limits: EvaluationLimits | None = None,
        what: str,
    ) -> None:
        """Start a worker and compile; raise CompileFailed on a compile error.

        ``limits`` defaults to :data:`DEFAULT_LIMITS` (looked up at call time).
        """
        limits = limits if limits is not None else DEFAULT_LIMITS
        self.limits = limits
        self.what = what
        self._load = {
            "op": "load",
            "modules": dict(modules),
            "data": dict(data),
            "entrypoints": list(entrypoints),
            "memory_bytes": limits.memory_bytes,
        }
        self._lock = threading.Lock()
        self._slot = _Slot()
        self._finalizer = weakref.finalize(self, self._slot.close)
        with self._lock:
            self._ensure()

    # --- public requests ---

    @property
    def compile_ms(self) -> float:
        """How long the current worker took to compile the modules."""
        child = self._slot.child
        return child.compile_ms if child else 0.0

    @property
    def pid(self) -> int | None:
        """The current worker's process id (None between a kill and the next request)."""
        child = self._slot.child
        return child.proc.pid if child else None

    def entrypoint(
        self, entrypoint: str, input_json: str, *, meanwhile: Callable[[], object] | None = None
    ) -> Any:
        """Evaluate a compiled entrypoint on ``input_json``; the value or ``_rego.UNDEFINED``.

        ``meanwhile`` (optional) is called once the request is sent, while the worker
        evaluates; its time counts against the time limit, and an exception from it is raised
        after the reply is read (in place of the result).
        """
        request = {"op": "entrypoint", "entrypoint": entrypoint, "input": input_json}
        return self._value(request, meanwhile)

    def query(self, query: str, input_json: str) -> Any:
        """Compile ``query`` against the modules (same bans) and run it; value or UNDEFINED."""
        return self._value({"op": "query", "query": query, "input": input_json})

    def close(self) -> None:
        """Stop the worker (also done when the object is collected and at exit)."""
        self._finalizer()

    def __enter__(self) -> PolicyWorker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- the protocol ---

    def _value(
        self, request: dict[str, Any], meanwhile: Callable[[], object] | None = None
    ) -> Any:
        from trust.policy import _rego

        with self._lock:
            child = self._ensure()
            reply = self._call(child, request, self.limits.timeout_s, meanwhile)
        if reply.get("ok") is True:
            return reply.get("value") if reply.get("defined") is True else _rego.UNDEFINED
        return self._raise(reply)

    def _ensure(self) -> _Child:
        """The live worker, starting (and compiling in) a new one when there is none."""
        child = self._slot.child
        if child is not None and child.proc.poll() is None:
            return child
        if child is not None:  # died while idle: not the next request's doing
            child.close()
            self._slot.discard()
        child = _acquire() or self._spawn()
        self._slot.child = child
        reply = self._call(child, self._load, self.limits.startup_timeout_s)
        if reply.get("error") == "compile":
            self._slot.close()  # a compile error leaves a healthy worker: pool it
            self._raise(reply)
        if reply.get("ok") is not True:  # e.g. no way to set the memory ceiling here: refuse
            failed = self._slot.discard()
            if failed is not None:
                failed.close()
            messages = reply.get("messages")
            raise EvaluationCrashError(
                f"could not decide: the policy evaluation worker cannot load the policy "
                f"({self.what}): {'; '.join(map(str, messages)) if messages else 'no reason'}"
            )
        child.compile_ms = float(reply.get("compile_ms", 0.0))
        return child

    def _spawn(self) -> _Child:
        parent_end, child_end = _socketpair()
        # The child's stderr outlives this call (read after a crash), so no ``with`` here.
        stderr = tempfile.TemporaryFile(prefix="warden-policy-worker-")  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOT, _ROOT, str(child_end)],
                pass_fds=(child_end,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                close_fds=True,
                # Its own session: a SIGINT/SIGTERM to the caller's process group (Ctrl-C,
                # systemd's control-group stop) must not kill a decision half-way; the caller
                # closes the worker when it stops, and the socket's EOF ends an orphan.
                start_new_session=True,
            )
        except OSError as exc:
            os.close(parent_end)
            stderr.close()
            raise EvaluationCrashError(
                f"could not decide: cannot start the policy evaluation worker ({exc})"
            ) from exc
        finally:
            os.close(child_end)
        return _Child(proc, Connection(parent_end), stderr)

    def _call(
        self,
        child: _Child,
        request: dict[str, Any],
        timeout: float,
        meanwhile: Callable[[], object] | None = None,
    ) -> dict[str, Any]:
        """Send one request, run ``meanwhile``, and wait at most ``timeout`` seconds (from the
        send) for the reply; then raise what ``meanwhile`` raised, if anything."""
        deadline = time.monotonic() + timeout
        failure: BaseException | None = None
        try:
            # The resident set before this request: the memory watchdog's base line.
            base = _resident(child.proc.pid) or 0
            child.conn.send_bytes(json.dumps(request, allow_nan=False).encode("utf-8"))
            if meanwhile is not None:
                try:
                    meanwhile()
                except BaseException as exc:  # noqa: BLE001 - re-raised once the reply is read
                    failure = exc
            while not child.conn.poll(min(_WATCH_S, max(0.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    self._slot.discard()
                    _, peak = child.kill()
                    child.stderr.close()
                    raise EvaluationLimitError(
                        f"could not decide: policy evaluation exceeded the {timeout:g} s time "
                        f"limit ({self.what})",
                        limit="time",
                        peak_rss_bytes=peak,
                    )
                # Second line behind RLIMIT_AS: rego-cpp's allocator reserved its address
                # space at start, so touching reserved pages grows the resident set without
                # mapping more. Kill a worker whose resident set outgrows the budget.
                rss = _resident(child.proc.pid)
                if rss is not None and rss > base + self.limits.memory_bytes:
                    raise self._died(child, out_of_memory=True)
            raw = child.conn.recv_bytes(self.limits.memory_bytes + 16 * MiB)
        except (EOFError, OSError):
            raise self._died(child) from None
        try:
            reply = json.loads(raw)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            self._slot.discard()
            child.close()
            raise EvaluationCrashError(
                f"could not decide: the policy evaluation worker sent a malformed reply "
                f"({self.what})"
            )
        if reply.get("error") == "memory":  # the worker said so, and is exiting
            raise self._died(child, out_of_memory=True)
        if failure is not None:
            raise failure
        return reply

    def _died(self, child: _Child, *, out_of_memory: bool = False) -> PolicyError:
        """The error for a worker that stopped answering mid-request (after reaping it)."""
        self._slot.discard()
        status, peak = child.kill()
        tail = child.stderr_tail()
        child.stderr.close()
        from trust.policy._worker import BAD_ALLOC_MARKER

        if out_of_memory or BAD_ALLOC_MARKER in tail:
            return EvaluationLimitError(
                f"could not decide: policy evaluation exceeded the "
                f"{_size(self.limits.memory_bytes)} memory limit ({self.what})",
                limit="memory",
                peak_rss_bytes=peak,
            )
        if status is not None and status < 0:
            try:
                how = f"was killed by {signal.Signals(-status).name}"
            except ValueError:
                how = f"was killed by signal {-status}"
        else:
            how = f"exited with status {status}"
        return EvaluationCrashError(
            f"could not decide: the policy evaluation worker {how} ({self.what})",
            hint="rego-cpp crashed on this policy or input; a crash is never an allow",
        )

    def _raise(self, reply: dict[str, Any]) -> Any:
        from trust.policy import _rego

        if reply.get("error") == "compile":
            diagnostics = [
                _rego.RegoDiagnostic(**d)
                for d in reply.get("diagnostics", [])
                if isinstance(d, dict)
            ]
            raise _rego.CompileFailed(diagnostics or [_rego.RegoDiagnostic("compilation failed")])
        messages = reply.get("messages")
        if not isinstance(messages, list) or not messages:
            messages = ["evaluation failed"]
        raise _rego.EvalFailed([str(m) for m in messages])


def _socketpair() -> tuple[int, int]:
    """Two connected stream-socket descriptors (parent's, child's), not inheritable."""
    import socket

    a, b = socket.socketpair()
    return a.detach(), b.detach()
