"""The child side of :mod:`trust.policy.worker`: a process that compiles and evaluates Rego.

Started by :class:`trust.policy.worker.PolicyWorker` as ``python -I -c <boot> <root> <fd>``
with one end of a socket pair as ``fd``. It speaks a small protocol of JSON messages framed by
:class:`multiprocessing.connection.Connection` (JSON, not pickle: the parent never unpickles
what a process running policies sends back). Requests and replies::

    {"op": "load", "modules": {...}, "data": {...}, "entrypoints": [...], "memory_bytes": N}
        -> {"ok": true, "compile_ms": F} | {"error": "compile", "diagnostics": [...]}
    {"op": "entrypoint", "entrypoint": "pkg/rule", "input": "<JSON text>"}
    {"op": "query", "query": "<Rego>", "input": "<JSON text>"}
        -> {"ok": true, "defined": B, "value": V} | {"error": "compile" | "eval", ...}
    any request that runs out of memory in Python
        -> {"error": "memory"}, then the process exits

Invariants:

* The memory ceiling is set with ``RLIMIT_AS`` *after* rego-cpp's allocator (snmalloc) has
  started, as the address space in use at that point plus ``memory_bytes``: snmalloc reserves
  ~256 TiB of address space when it starts, so a plain ``RLIMIT_AS`` below that makes it fail
  to start, while an increment over it bounds every later mapping (rego-cpp then dies of
  ``std::bad_alloc``, which the parent reads from this process's stderr).
* Requests are served on the main thread (the same stack rego-cpp gets in any caller); a
  second thread exits the process when the parent goes away, so an orphan never keeps running
  a policy.
* Running out of memory is reported as ``{"error": "memory"}`` whether Python raised
  ``MemoryError`` or rego-cpp reported ``std::bad_alloc`` as an evaluation error, and the
  process then exits: its heap may be in any state.
* Nothing here decides anything: the parent reads results by convention, so a lying or dying
  worker can only make the parent raise, never allow.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["main", "BAD_ALLOC_MARKER"]

# What the C++ runtime prints when rego-cpp cannot allocate under the ceiling.
BAD_ALLOC_MARKER = b"std::bad_alloc"
_BAD_ALLOC = BAD_ALLOC_MARKER.decode()
_PARENT_POLL_S = 0.5


def _address_space() -> int:
    """Bytes of address space this process maps now (Linux: /proc/self/statm, in pages)."""
    with open("/proc/self/statm", "rb") as f:
        pages = int(f.read().split()[0])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _limit_memory(budget: int) -> None:
    # Lift our own soft limit first (a reused process may have set one), then cap what is
    # mapped from here on at ``budget`` more than now.
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    ceiling = _address_space() + budget
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))


class _Undefinable(Exception):
    """A result holds an undefined value inside a value (no JSON form): an error."""


def _no_undefined(value: Any) -> Any:
    raise _Undefinable(repr(value))


class _Server:
    """One compiled policy and the requests against it."""

    def __init__(self) -> None:
        from trust.policy import _rego

        self._rego = _rego
        # Creating an interpreter starts snmalloc, whose reservation must precede the ceiling.
        self._runner = _rego.new_interpreter()
        self._compiled: Any = None
        self._modules: dict[str, str] = {}
        self._data: dict[str, Any] = {}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        _rego = self._rego
        op = request.get("op")
        try:
            if op == "load":
                # A pooled worker is reused for another bundle: nothing of the last survives.
                self._compiled = None
                self._runner = _rego.new_interpreter()
                _limit_memory(int(request["memory_bytes"]))
                started = time.perf_counter()
                self._modules = dict(request["modules"])
                self._data = dict(request["data"])
                self._compiled = _rego.compile_modules(
                    self._modules, self._data, list(request["entrypoints"])
                )
                return {"ok": True, "compile_ms": (time.perf_counter() - started) * 1000.0}
            if op == "entrypoint":
                _, plan = self._compiled
                value = _rego.query_bundle(
                    self._runner, plan, str(request["entrypoint"]), str(request["input"])
                )
            elif op == "query":
                text, expression = _rego.query_text(str(request["query"]))
                _keep, plan = _rego.compile_modules(self._modules, self._data, [], query=text)
                value = _rego.query_compiled(self._runner, plan, expression, str(request["input"]))
            else:
                return {"error": "eval", "messages": [f"unknown worker request {op!r}"]}
        except _rego.CompileFailed as exc:
            if any(_BAD_ALLOC in d.message for d in exc.diagnostics):
                raise MemoryError from exc
            return {
                "error": "compile",
                "diagnostics": [dataclasses.asdict(d) for d in exc.diagnostics],
            }
        except _rego.EvalFailed as exc:
            if any(_BAD_ALLOC in m for m in exc.messages):  # rego-cpp caught it and said so
                raise MemoryError from exc
            return {"error": "eval", "messages": exc.messages}
        if value is _rego.UNDEFINED:
            return {"ok": True, "defined": False, "value": None}
        return {"ok": True, "defined": True, "value": value}


def _encode(reply: dict[str, Any]) -> bytes:
    try:
        return json.dumps(reply, allow_nan=False, default=_no_undefined).encode("utf-8")
    except _Undefinable:
        return b'{"error": "eval", "messages": ["the result holds an undefined value"]}'


def _serve(conn: Connection) -> None:
    server = _Server()
    while True:
        try:
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            reply = _encode(server.handle(json.loads(raw)))
        except MemoryError:
            reply = b'{"error": "memory"}'
            conn.send_bytes(reply)
            os._exit(3)  # the heap may be in any state: start afresh
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
            reply = _encode({"error": "eval", "messages": [f"{type(exc).__name__}: {exc}"]})
        try:
            conn.send_bytes(reply)
        except OSError:
            return


def _exit_with(parent: int) -> None:
    while True:
        time.sleep(_PARENT_POLL_S)
        if os.getppid() != parent:
            os._exit(0)


def main() -> None:
    """Serve requests on the socket whose descriptor is ``sys.argv[2]``; exit with the parent."""
    conn = Connection(int(sys.argv[2]))
    # Started before any ceiling is set (a thread's stack is mapped when it starts).
    threading.Thread(target=_exit_with, args=(os.getppid(),), name="parent", daemon=True).start()
    _serve(conn)  # on the main thread: its stack grows to RLIMIT_STACK, as in the caller
    os._exit(0)
