"""Hooks the agent runs after events: a command (argv, no shell) or an HTTP webhook (JSON POST).

The retraining trigger (``retrain``) and the node's alerts (``alerts``) are both hooks: the
daemon builds a :class:`HookEvent` after it has *recorded* what happened (a drift alert, a
rollback, a blocked promotion, a lying hub), hands each configured :class:`Hook` whose ``on``
names the event to a :class:`HookRunner`, and later writes each :class:`HookOutcome` it drains
from :meth:`HookRunner.completed` into a record (``retrain_triggered`` for the retraining hook).

Invariants:

* **A hook never stops the agent.** :func:`run_hook` never raises for anything the hook does
  (missing command, non-zero exit, hang, refused connection, HTTP 5xx, garbage answer): each
  is a failed :class:`HookOutcome` with a one-line ``error``. :class:`HookRunner` runs hooks
  on its own threads, so a hook that hangs never blocks governance; its queue is bounded and
  a hook refused because the queue is full, or not run because the agent stopped, still
  yields an outcome (``attempts == 0``), so no fired hook is dropped silently (the daemon
  records a retraining hook's outcome as ``retrain_triggered`` and logs an alert hook's:
  :mod:`agent.notify`).
* **No shell, ever.** A command is an argv tuple given to :func:`subprocess.Popen` as is; an
  event's fields reach it as ``WARDEN_*`` environment variables, never spliced into a command
  line. stdin is ``/dev/null``.
* **A hook that times out leaves nothing running.** Each command starts in its own session
  (``start_new_session``): on its timeout, or when :meth:`HookRunner.close` gives up waiting,
  the whole process group is killed (``SIGKILL``), children included. Only a descendant that
  deliberately left the group (``setsid``) escapes. A command that *exits* in time may leave a
  background job it started on purpose (e.g. ``nohup train.sh &``); it is not killed.
* **Secrets stay at the node.** :meth:`HookOutcome.to_dict` — what goes into a record, signed
  and kept for ever in the hub's ledger — holds the kind, the target, status, attempts,
  duration and error only: no headers, no command arguments, no URL path or query (Slack's
  and most chat tools' incoming-webhook URLs carry their secret in the path, so a webhook's
  target is its origin, ``https://hooks.slack.com``), no output. A hook's output tail
  (``HookOutcome.output``, at most :data:`OUTPUT_TAIL_CHARS`) is for the node's own log.
  ``repr(Hook)`` shows neither headers, arguments nor the URL.
* **Webhooks are retried only when retrying can help**: connection failures, timeouts, HTTP
  5xx, 408 and 429, up to ``retries`` more attempts, waiting ``backoff_s · 2^(n-1)`` (capped at
  :data:`MAX_BACKOFF_S`; a ``Retry-After`` in seconds is honoured up to the cap) between them.
  Other 4xx answers, redirects (never followed: they could carry the ``Authorization`` header
  elsewhere) and untrusted TLS certificates are final. ``timeout_s`` bounds the connection and
  each read of the answer (a socket timeout).

Importing this module loads nothing heavy: ``urllib.request``, ``http.client`` and ``ssl`` are
imported when a webhook runs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from trust._internal.frozen import freeze, thaw
from trust.config_file import coerce_value, resolve_path
from trust.errors import ConfigError, FormatError
from trust.timeutil import format_time, utcnow

__all__ = [
    "ALERT_EVENTS",
    "BACKOFF_S",
    "COMMAND_TIMEOUT_S",
    "HOOK_PAYLOAD_SCHEMA",
    "MAX_BACKOFF_S",
    "MAX_QUEUED",
    "MAX_RETRIES",
    "OUTPUT_TAIL_CHARS",
    "RETRAIN_EVENTS",
    "RETRIES",
    "WEBHOOK_TIMEOUT_S",
    "Hook",
    "HookEvent",
    "HookOutcome",
    "HookRunner",
    "event_environment",
    "parse_hook",
    "parse_hooks",
    "payload",
    "run_hook",
]

# The events an alert hook may be configured for, and those that trigger retraining.
ALERT_EVENTS: frozenset[str] = frozenset({
    "promotion_blocked", "drift_alert", "rollback", "rollback_impossible",
    "hub_misbehaviour", "retrain_triggered",
})
RETRAIN_EVENTS: frozenset[str] = frozenset({"drift_alert", "rollback"})

COMMAND_TIMEOUT_S = 300.0
WEBHOOK_TIMEOUT_S = 10.0
RETRIES = 3
MAX_RETRIES = 10
BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
# Hooks waiting in a HookRunner's queue (not counting the ones running).
MAX_QUEUED = 100
# How much of a command's output (or a webhook's answer) an outcome keeps for the node's log.
OUTPUT_TAIL_CHARS = 500
HOOK_PAYLOAD_SCHEMA = "warden.hook/v1"

_KINDS = ("command", "webhook")
_FORMATS = ("json", "slack")
_KEYS = frozenset({"command", "url", "timeout_s", "retries", "backoff_s", "format", "headers",
                   "on"})
_WEBHOOK_ONLY = ("retries", "backoff_s", "format", "headers")
# RFC 9110 field-name token; Warden sets these itself.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "transfer-encoding"})
_RETRYABLE_STATUS = frozenset({408, 429})
# What a webhook answer may be read to (the rest is discarded unread).
_MAX_ANSWER_BYTES = 64 * 1024
# After killing a group at close(), how long to wait for the workers to report it.
_KILL_GRACE_S = 2.0


@dataclass(frozen=True, repr=False)
class Hook:
    """One configured hook: a command or a webhook, and the events it fires for.

    Build it with :func:`parse_hook`; constructing it directly checks the invariants:
    ``kind`` is ``command`` with a non-empty ``command`` argv and no ``url``, or ``webhook``
    with an ``http``/``https`` ``url`` and no ``command``; ``timeout_s`` and ``backoff_s`` are
    finite and > 0; ``0 ≤ retries ≤ MAX_RETRIES``.
    """

    kind: str
    command: tuple[str, ...] = ()
    url: str = ""
    timeout_s: float = COMMAND_TIMEOUT_S
    retries: int = RETRIES
    backoff_s: float = BACKOFF_S
    format: str = "json"
    # (name, value) pairs sent with a webhook: may hold a secret, so never shown or recorded.
    headers: tuple[tuple[str, str], ...] = ()
    on: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ConfigError(f"hook: kind {self.kind!r} is not one of {', '.join(_KINDS)}")
        if self.kind == "command":
            if not self.command or self.url:
                raise ConfigError("hook: a command hook needs a command (argv) and no url")
            if any(not isinstance(a, str) or not a or "\0" in a for a in self.command):
                raise ConfigError("hook: command arguments must be non-empty strings without "
                                  "NUL characters")
        else:
            if self.command or not self.url:
                raise ConfigError("hook: a webhook needs a url and no command")
            _check_url(self.url, what="hook: url")
        for name in ("timeout_s", "backoff_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"hook: {name} must be a finite number of seconds > 0, "
                                  f"got {value}")
        if not 0 <= self.retries <= MAX_RETRIES:
            raise ConfigError(f"hook: retries must be between 0 and {MAX_RETRIES}, "
                              f"got {self.retries}")
        if self.format not in _FORMATS:
            raise ConfigError(f"hook: format {self.format!r} is not one of "
                              f"{', '.join(_FORMATS)}")

    @property
    def target(self) -> str:
        """What a record may say the hook was: argv[0], or the webhook URL's origin."""
        if self.kind == "command":
            return self.command[0]
        return _origin(self.url)

    def fires_for(self, event: str) -> bool:
        """Whether this hook is configured for ``event``."""
        return event in self.on

    def __repr__(self) -> str:
        return f"Hook(kind={self.kind!r}, target={self.target!r}, on={sorted(self.on)!r})"


@dataclass(frozen=True)
class HookEvent:
    """What happened, as a hook sees it (environment variables, JSON payload, Slack text).

    ``details`` holds JSON-able aggregates only (never raw rows: a webhook sends them off the
    node); it is checked and stored as a read-only copy. ``time`` is timezone-aware.
    ``model``/``version`` are ``None`` for events about the node (``hub_misbehaviour``);
    ``time`` defaults to now.
    """

    event: str
    node_id: str
    model: str | None
    version: str | None
    reason: str
    evidence_path: Path | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    time: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        if not isinstance(self.event, str) or not self.event:
            raise FormatError(f"hook event: event must be a non-empty string, got {self.event!r}")
        if self.time.tzinfo is None:
            raise FormatError("hook event: time must be timezone-aware (UTC)")
        try:
            plain = json.loads(json.dumps(thaw(dict(self.details)), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise FormatError(f"hook event {self.event}: details must be JSON "
                              f"(finite numbers, strings, lists, mappings): {exc}") from None
        object.__setattr__(self, "details", freeze(plain))

    def to_obj(self) -> dict[str, Any]:
        """The JSON form (the ``json`` webhook payload)."""
        return {
            "schema": HOOK_PAYLOAD_SCHEMA,
            "event": self.event,
            "node_id": self.node_id,
            "model": self.model,
            "version": self.version,
            "reason": self.reason,
            "time": format_time(self.time),
            "evidence_path": None if self.evidence_path is None else str(self.evidence_path),
            "details": thaw(self.details),
        }

    def summary(self) -> str:
        """One line for a chat message or a log: what, where, which version, why."""
        subject = f" {self.model}" if self.model else ""
        if self.version:
            subject += f" version {self.version}"
        line = f"Warden {self.event} at node {self.node_id}:{subject} — {self.reason}"
        return _one_line(line, 300)


@dataclass(frozen=True)
class HookOutcome:
    """What running a hook did. ``ok`` is true only for exit 0 / an HTTP 2xx answer.

    ``attempts`` is 0 when the hook never ran (queue full, agent stopping). ``error`` is one
    line (``command not found: X``, ``exit 1``, ``timed out after 5 s``, ``HTTP 500``,
    ``connection refused`` ...). ``output`` (the tail of the command's output or of the
    webhook's answer) is for the node's log only and is not part of :meth:`to_dict`.
    """

    ok: bool
    kind: str
    target: str
    exit_code: int | None
    http_status: int | None
    attempts: int
    duration_s: float
    error: str | None
    output: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form for a record's evidence: no secrets, no headers, no output."""
        return {
            "ok": self.ok,
            "kind": self.kind,
            "target": self.target,
            "exit_code": self.exit_code,
            "http_status": self.http_status,
            "attempts": self.attempts,
            "duration_s": round(self.duration_s, 3),
            "error": self.error,
        }


# ---------------------------------------------------------------------------------------------
# Configuration


def parse_hook(value: Any, *, at: str, where: str, base: Path,
               events: frozenset[str] | None) -> Hook:
    """One hook from ``agent.yaml`` (``at`` names it in errors, e.g. ``alerts[0]``).

    Keys (exactly one of ``command`` and ``url``):

    ``command`` (list of strings)
        The program and its arguments (argv), run without a shell. A first element holding a
        ``/`` is a path, relative ones resolved against the directory of ``agent.yaml``;
        otherwise it is looked up on ``PATH`` when the hook runs. The command's environment
        is the agent's plus ``WARDEN_EVENT``, ``WARDEN_NODE_ID``, ``WARDEN_MODEL``,
        ``WARDEN_VERSION``, ``WARDEN_REASON``, ``WARDEN_TIME`` (RFC 3339 UTC),
        ``WARDEN_EVIDENCE`` (path of the event's evidence file, or empty) and
        ``WARDEN_DETAILS`` (the event's aggregates as JSON); stdin is ``/dev/null``. Exit 0
        is success. On timeout the command's whole process group is killed.
    ``url`` (string)
        An ``http://`` or ``https://`` URL the event is POSTed to as JSON
        (``Content-Type: application/json``); a 2xx answer is success. No user:password in
        the URL (use ``headers``); redirects are not followed. Records name only the URL's
        origin (scheme, host, port), since chat webhooks carry their secret in the path.
    ``timeout_s`` (number > 0; default 300 for a command, 10 for a webhook)
        A command's run time; a webhook's connection and each read of its answer.
    ``retries`` (whole number 0–10; default 3; webhook only)
        Further attempts after a connection failure, a timeout, HTTP 5xx, 408 or 429. Other
        4xx answers are not retried.
    ``backoff_s`` (number > 0; default 1; webhook only)
        Wait before the first retry; doubled for each further one, at most 60 s (a
        ``Retry-After`` in seconds is honoured up to 60 s).
    ``format`` (``json`` | ``slack``; default ``json``; webhook only)
        ``json``: the event as a JSON object (``schema`` ``warden.hook/v1``, ``event``,
        ``node_id``, ``model``, ``version``, ``reason``, ``time``, ``evidence_path``,
        ``details``). ``slack``: a Slack incoming-webhook message (``text`` plus ``blocks``),
        also accepted by Mattermost and Rocket.Chat.
    ``headers`` (mapping of strings; default none; webhook only)
        Extra request headers, e.g. ``Authorization: Bearer …``. Never logged or recorded.
        ``Content-Type``, ``Content-Length``, ``Host`` and ``Transfer-Encoding`` are set by
        Warden and refused here.
    ``on`` (list of event names; default: every event the section allows)
        The events the hook fires for. Alerts: ``promotion_blocked``, ``drift_alert``,
        ``rollback``, ``rollback_impossible``, ``hub_misbehaviour``, ``retrain_triggered``.
        Retraining: ``drift_alert``, ``rollback``.

    ``events`` is the set ``on`` may name (``None``: the section takes no ``on`` key and the
    hook's ``on`` is empty — the caller decides when it fires).
    """
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: {at} must be a mapping with a command or a url, "
                          f"got {value!r}")
    known = _KEYS if events is not None else _KEYS - {"on"}
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        hint = f"known hook keys: {', '.join(sorted(known))}"
        if unknown[0] == "on":
            hint = "this hook's events are fixed; remove 'on'"
        raise ConfigError(f"{where}: unknown key {at}.{unknown[0]}", hint=hint)
    has_command = value.get("command") is not None
    has_url = value.get("url") is not None
    if has_command == has_url:
        raise ConfigError(f"{where}: {at} needs exactly one of command (an argv list) and url"
                          + (", not both" if has_command else ""))
    if has_command:
        for key in _WEBHOOK_ONLY:
            if value.get(key) is not None:
                raise ConfigError(f"{where}: {at}.{key} applies to url hooks only, not to a "
                                  "command")
        command = _parse_command(value["command"], at=f"{at}.command", where=where, base=base)
        url = ""
        kind = "command"
    else:
        url = coerce_value(f"{at}.url", str, value["url"], where=where)
        _check_url(url, what=f"{where}: {at}.url")
        command = ()
        kind = "webhook"
    timeout_s = COMMAND_TIMEOUT_S if kind == "command" else WEBHOOK_TIMEOUT_S
    if value.get("timeout_s") is not None:
        timeout_s = _positive_seconds(value["timeout_s"], key=f"{at}.timeout_s", where=where)
    retries = RETRIES
    if value.get("retries") is not None:
        retries = coerce_value(f"{at}.retries", int, value["retries"], where=where)
        if not 0 <= retries <= MAX_RETRIES:
            raise ConfigError(f"{where}: {at}.retries must be between 0 and {MAX_RETRIES}, "
                              f"got {retries}")
    backoff_s = BACKOFF_S
    if value.get("backoff_s") is not None:
        backoff_s = _positive_seconds(value["backoff_s"], key=f"{at}.backoff_s", where=where)
    fmt = "json"
    if value.get("format") is not None:
        fmt = value["format"]
        if fmt not in _FORMATS:
            raise ConfigError(f"{where}: {at}.format {fmt!r} is not one of "
                              f"{', '.join(_FORMATS)}")
    headers = _parse_headers(value.get("headers"), at=f"{at}.headers", where=where)
    on: frozenset[str] = frozenset()
    if events is not None:
        on = _parse_on(value.get("on"), at=f"{at}.on", where=where, events=events)
    return Hook(kind=kind, command=command, url=url, timeout_s=timeout_s, retries=retries,
                backoff_s=backoff_s, format=fmt, headers=headers, on=on)


def parse_hooks(value: Any, *, at: str, where: str, base: Path,
                events: frozenset[str] | None) -> tuple[Hook, ...]:
    """A list of hooks (``at[0]``, ``at[1]`` ...; see :func:`parse_hook`); ``None`` is none."""
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ConfigError(f"{where}: {at} must be a list of hooks (mappings with a command "
                          f"or a url), got {value!r}")
    return tuple(parse_hook(item, at=f"{at}[{i}]", where=where, base=base, events=events)
                 for i, item in enumerate(value))


def _parse_command(value: Any, *, at: str, where: str, base: Path) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{where}: {at} must be a list of strings (argv: no shell is used), "
                          f"got {value!r}", hint='e.g. command: ["retrain.sh", "--fast"]')
    if not value:
        raise ConfigError(f"{where}: {at} must name a program")
    argv: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item or "\0" in item:
            raise ConfigError(f"{where}: {at}[{i}] must be a non-empty string, got {item!r}")
        argv.append(item)
    if "/" in argv[0]:
        argv[0] = str(resolve_path(Path(argv[0]), base))
    return tuple(argv)


def _check_url(url: str, *, what: str) -> None:
    # The URL itself may be a secret (chat webhooks): errors name its parts, not all of it.
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ConfigError(f"{what} must not hold spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"{what} must be an http:// or https:// URL, got scheme "
                          f"{parts.scheme or '(none)'!r}")
    if not parts.hostname:
        raise ConfigError(f"{what} has no host")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{what} must not hold a user or password",
                          hint="send credentials in headers (e.g. Authorization)")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        raise ConfigError(f"{what} has an invalid port") from None


def _positive_seconds(value: Any, *, key: str, where: str) -> float:
    seconds: float = coerce_value(key, float, value, where=where)
    if seconds <= 0:
        raise ConfigError(f"{where}: {key} must be a number of seconds > 0, got {value!r}")
    return seconds


def _parse_headers(value: Any, *, at: str, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: {at} must be a mapping of header names to strings")
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, text in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ConfigError(f"{where}: {at}: {name!r} is not a valid header name")
        if name.lower() in _RESERVED_HEADERS:
            raise ConfigError(f"{where}: {at}.{name} is set by Warden and cannot be configured")
        if name.lower() in seen:
            raise ConfigError(f"{where}: {at} names {name!r} twice")
        # Values may be secrets: the errors below never show them.
        if not isinstance(text, str) or not text:
            raise ConfigError(f"{where}: {at}.{name} must be a non-empty string")
        if any(c in text for c in "\r\n\0"):
            raise ConfigError(f"{where}: {at}.{name} must not hold line breaks or NUL")
        seen.add(name.lower())
        out.append((name, text))
    return tuple(out)


def _parse_on(value: Any, *, at: str, where: str, events: frozenset[str]) -> frozenset[str]:
    if value is None:
        return events
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{where}: {at} must be a list of event names, got {value!r}")
    if not value:
        raise ConfigError(f"{where}: {at} must name at least one event (or be left out)")
    names: set[str] = set()
    for name in value:
        if name not in events:
            raise ConfigError(f"{where}: {at}: {name!r} is not an event this hook can fire "
                              f"for", hint=f"events: {', '.join(sorted(events))}")
        if name in names:
            raise ConfigError(f"{where}: {at} lists {name!r} twice")
        names.add(name)
    return frozenset(names)


# ---------------------------------------------------------------------------------------------
# Running one hook


class _Control:
    """How a :class:`HookRunner` reaches a running hook: cancellation and its process group."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def started(self, proc: subprocess.Popen[bytes]) -> None:
        """Called with each command's process as soon as it exists."""

    def finished(self, proc: subprocess.Popen[bytes]) -> None:
        """Called once the command's process has been waited for."""


def run_hook(hook: Hook, event: HookEvent) -> HookOutcome:
    """Run ``hook`` for ``event`` in this thread and say what happened; never raises for a
    failure of the hook (see the module docstring)."""
    return _run(hook, event, _Control())


def _run(hook: Hook, event: HookEvent, control: _Control) -> HookOutcome:
    start = time.monotonic()
    try:
        if hook.kind == "command":
            return _run_command(hook, event, control)
        return _post_webhook(hook, event, control)
    except Exception as exc:  # a defect here must not stop the agent either: say so, go on
        return HookOutcome(ok=False, kind=hook.kind, target=hook.target, exit_code=None,
                           http_status=None, attempts=1, duration_s=time.monotonic() - start,
                           error=f"internal error: {type(exc).__name__}: {exc}")


def event_environment(event: HookEvent) -> dict[str, str]:
    """The ``WARDEN_*`` variables a command hook receives (beside the agent's environment)."""
    return {
        "WARDEN_EVENT": event.event,
        "WARDEN_NODE_ID": event.node_id,
        "WARDEN_MODEL": event.model or "",
        "WARDEN_VERSION": event.version or "",
        "WARDEN_REASON": event.reason,
        "WARDEN_TIME": format_time(event.time),
        "WARDEN_EVIDENCE": "" if event.evidence_path is None else str(event.evidence_path),
        "WARDEN_DETAILS": json.dumps(thaw(event.details), sort_keys=True,
                                     separators=(",", ":"), ensure_ascii=False),
    }


def _run_command(hook: Hook, event: HookEvent, control: _Control) -> HookOutcome:
    start = time.monotonic()
    program = hook.command[0]

    def outcome(ok: bool, error: str | None, *, code: int | None = None,
                output: str = "") -> HookOutcome:
        return HookOutcome(ok=ok, kind="command", target=program, exit_code=code,
                           http_status=None, attempts=1,
                           duration_s=time.monotonic() - start, error=error, output=output)

    env = {**os.environ, **event_environment(event)}
    with tempfile.TemporaryFile() as out:
        # Output goes to a file, not a pipe: a background job the hook leaves behind holding
        # the descriptor must not make the agent wait for EOF.
        try:
            proc = subprocess.Popen(list(hook.command), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env, close_fds=True,
                                    start_new_session=True)
        except FileNotFoundError:
            return outcome(False, f"command not found: {program}")
        except PermissionError:
            return outcome(False, f"not executable: {program}")
        except OSError as exc:
            return outcome(False, f"cannot run {program}: {exc.strerror or exc}")
        control.started(proc)
        timed_out = False
        try:
            try:
                code = proc.wait(timeout=hook.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                # The leader is not reaped yet, so its pid still names this group.
                _kill_group(proc)
                code = proc.wait()
        finally:
            control.finished(proc)
        tail = _tail(out)
    if timed_out:
        return outcome(False, f"timed out after {hook.timeout_s:g} s (process group killed)",
                       code=None, output=tail)
    if code == 0:
        return outcome(True, None, code=0, output=tail)
    if control.cancelled.is_set():
        return outcome(False, "killed: the agent stopped", code=code, output=tail)
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return outcome(False, f"killed by signal {name}", code=code, output=tail)
    return outcome(False, f"exit {code}", code=code, output=tail)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _tail(out: IO[bytes]) -> str:
    size = out.seek(0, os.SEEK_END)
    out.seek(max(0, size - 4 * OUTPUT_TAIL_CHARS))
    text = out.read().decode("utf-8", errors="replace").strip()
    return text[-OUTPUT_TAIL_CHARS:]


def payload(hook: Hook, event: HookEvent) -> dict[str, Any]:
    """The JSON object a webhook POSTs (``json`` or ``slack`` format)."""
    if hook.format == "slack":
        return _slack_message(event)
    return event.to_obj()


def _slack_message(event: HookEvent) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (the notification line) plus blocks."""
    head = f"*Warden {_mrkdwn(event.event)}* at node `{_mrkdwn(event.node_id)}`"
    if event.model:
        head += f" · model `{_mrkdwn(event.model)}`"
    if event.version:
        head += f" · version `{_mrkdwn(event.version)}`"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": head}},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": _mrkdwn(_one_line(event.reason, 2900)) or "—"}},
    ]
    # Slack shows at most 10 fields per section; scalar aggregates only.
    fields = [{"type": "mrkdwn", "text": f"*{_mrkdwn(str(k))}*\n{_mrkdwn(_scalar(v))}"}
              for k, v in sorted(event.details.items())
              if isinstance(v, str | int | float | bool) or v is None][:10]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    context = f"{format_time(event.time)}"
    if event.evidence_path is not None:
        context += f" · evidence `{_mrkdwn(_one_line(str(event.evidence_path), 500))}`"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": event.summary(), "blocks": blocks}


def _scalar(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return _one_line(str(value), 500)


def _mrkdwn(text: str) -> str:
    # Slack's three control characters (https://api.slack.com/reference/surfaces/formatting).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}"


class _Attempt:
    """One POST's result: status (None: no HTTP answer), error, whether to retry, the wait."""

    def __init__(self, status: int | None, error: str | None, *, retry: bool,
                 retry_after: float | None = None, output: str = "") -> None:
        self.status = status
        self.error = error
        self.retry = retry
        self.retry_after = retry_after
        self.output = output


def _post_webhook(hook: Hook, event: HookEvent, control: _Control) -> HookOutcome:
    start = time.monotonic()
    body = json.dumps(payload(hook, event), ensure_ascii=False, allow_nan=False).encode()
    attempts = 0
    result = _Attempt(None, "not attempted", retry=False)
    while True:
        attempts += 1
        result = _post_once(hook, body)
        if result.error is None or not result.retry or attempts > hook.retries:
            break
        delay = min(hook.backoff_s * 2 ** (attempts - 1), MAX_BACKOFF_S)
        if result.retry_after is not None:
            delay = min(max(delay, result.retry_after), MAX_BACKOFF_S)
        if control.cancelled.wait(delay):
            result.error = f"{result.error}; no further retry: the agent stopped"
            break
    return HookOutcome(ok=result.error is None, kind="webhook", target=hook.target,
                       exit_code=None, http_status=result.status, attempts=attempts,
                       duration_s=time.monotonic() - start, error=result.error,
                       output=result.output)


def _post_once(hook: Hook, body: bytes) -> _Attempt:
    import http.client
    import ssl
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(hook.url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", "warden-agent")
    for name, value in hook.headers:
        request.add_header(name, value)
    timeout = f"timed out after {hook.timeout_s:g} s"
    try:
        with opener.open(request, timeout=hook.timeout_s) as answer:
            status = int(answer.status)
            text = _answer_text(answer)
        if 200 <= status < 300:
            return _Attempt(status, None, retry=False, output=text)
        return _Attempt(status, f"HTTP {status}", retry=False, output=text)
    except urllib.error.HTTPError as exc:
        status = exc.code
        try:
            text = _answer_text(exc)
        except (OSError, http.client.HTTPException):
            text = ""
        finally:
            exc.close()
        if 300 <= status < 400:
            return _Attempt(status, f"HTTP {status} (redirects are not followed)",
                            retry=False, output=text)
        retry = status >= 500 or status in _RETRYABLE_STATUS
        return _Attempt(status, f"HTTP {status}", retry=retry,
                        retry_after=_retry_after(exc.headers), output=text)
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            return _Attempt(None, f"TLS certificate not trusted: {reason.verify_message}",
                            retry=False)
        if isinstance(reason, OSError | str):
            return _connection_failure(reason, timeout=timeout, host=_origin(hook.url))
        return _Attempt(None, f"cannot connect: {reason}", retry=True)
    except OSError as exc:  # timeouts and resets while reading the answer
        return _connection_failure(exc, timeout=timeout, host=_origin(hook.url))
    except http.client.HTTPException as exc:
        return _Attempt(None, f"bad HTTP answer: {type(exc).__name__}", retry=True)
    except ValueError:  # http.client.InvalidURL and the like: retrying cannot help
        return _Attempt(None, "invalid URL", retry=False)


def _answer_text(answer: Any) -> str:
    raw: bytes = answer.read(_MAX_ANSWER_BYTES)
    return _one_line(raw.decode("utf-8", errors="replace"), OUTPUT_TAIL_CHARS)


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if isinstance(value, str) and value.strip().isdigit():
        return float(value.strip())
    return None


def _connection_failure(reason: OSError | str, *, timeout: str, host: str) -> _Attempt:
    import http.client
    if isinstance(reason, TimeoutError) or (isinstance(reason, str) and "timed out" in reason):
        return _Attempt(None, timeout, retry=True)
    if isinstance(reason, ConnectionRefusedError):
        return _Attempt(None, "connection refused", retry=True)
    if isinstance(reason, http.client.RemoteDisconnected):
        return _Attempt(None, "connection closed without an answer", retry=True)
    if isinstance(reason, ConnectionResetError):
        return _Attempt(None, "connection reset", retry=True)
    if isinstance(reason, socket.gaierror):
        return _Attempt(None, f"cannot resolve host of {host}", retry=True)
    if isinstance(reason, OSError):
        return _Attempt(None, f"cannot connect: {reason.strerror or type(reason).__name__}",
                        retry=True)
    return _Attempt(None, f"cannot connect: {reason}", retry=True)


# ---------------------------------------------------------------------------------------------
# Running hooks off the main thread


class HookRunner:
    """Runs hooks on ``max_workers`` background threads; the daemon drains what they did.

    Thread-safe. :meth:`submit` never blocks and never raises for a full queue: beyond
    ``max_queued`` waiting hooks it refuses the new one with an outcome
    (``error="not run: hook queue full (N waiting)"``, ``attempts=0``) that :meth:`completed`
    returns like any other — so the refusal is recorded, and hooks already waiting (older
    events) keep their turn. :meth:`close` lets waiting and running hooks finish for up to
    ``timeout`` seconds, then kills running commands' process groups, turns hooks still
    waiting into outcomes ``not run: the agent stopped``, and returns; outcomes reported by
    then are available from :meth:`completed`. A webhook in flight cannot be interrupted: its
    thread (a daemon thread) ends within its own timeout and the outcome may be lost.
    """

    def __init__(self, max_workers: int = 2, *, max_queued: int = MAX_QUEUED) -> None:
        if max_workers < 1 or max_queued < 0:
            raise ValueError("HookRunner needs max_workers ≥ 1 and max_queued ≥ 0")
        self._max_queued = max_queued
        self._cond = threading.Condition()
        self._queue: deque[tuple[Hook, HookEvent]] = deque()
        self._done: list[tuple[Hook, HookEvent, HookOutcome]] = []
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._active = 0
        self._closed = False
        self._control = _RunnerControl(self)
        self._threads = [threading.Thread(target=self._work, name=f"warden-hook-{i}",
                                          daemon=True) for i in range(max_workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, hook: Hook, event: HookEvent) -> None:
        """Queue ``hook`` for ``event``; a refusal becomes an outcome (see the class doc)."""
        with self._cond:
            if self._closed:
                self._done.append((hook, event, _not_run(hook, "the agent stopped")))
            elif len(self._queue) >= self._max_queued:
                self._done.append((hook, event, _not_run(
                    hook, f"hook queue full ({self._max_queued} waiting)")))
            else:
                self._queue.append((hook, event))
                self._cond.notify()

    def completed(self) -> list[tuple[Hook, HookEvent, HookOutcome]]:
        """Every outcome reported since the last call, in the order they came (never blocks)."""
        with self._cond:
            done, self._done = self._done, []
        return done

    def pending(self) -> int:
        """Hooks waiting or running."""
        with self._cond:
            return len(self._queue) + self._active

    def close(self, timeout: float) -> None:
        """Stop: wait up to ``timeout`` seconds for hooks to finish, then kill what still runs."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            while self._queue or self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._control.cancelled.set()
            while self._queue:
                hook, event = self._queue.popleft()
                self._done.append((hook, event, _not_run(hook, "the agent stopped")))
            for proc in self._procs:
                _kill_group(proc)
            self._cond.notify_all()
            grace = time.monotonic() + _KILL_GRACE_S
            while self._procs:
                left = grace - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        # Workers whose command was killed report it now; one stuck in a webhook does not
        # hold close() up beyond the grace period.
        for thread in self._threads:
            thread.join(max(0.0, grace - time.monotonic()))

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                hook, event = self._queue.popleft()
                self._active += 1
            result = _run(hook, event, self._control)
            with self._cond:
                self._active -= 1
                self._done.append((hook, event, result))
                self._cond.notify_all()

    # The control's callbacks, under the runner's lock.
    def _started(self, proc: subprocess.Popen[bytes]) -> None:
        with self._cond:
            if self._control.cancelled.is_set():
                _kill_group(proc)  # close() already swept: this one must not outlive it
            self._procs.add(proc)

    def _finished(self, proc: subprocess.Popen[bytes]) -> None:
        with self._cond:
            self._procs.discard(proc)
            self._cond.notify_all()


class _RunnerControl(_Control):
    def __init__(self, runner: HookRunner) -> None:
        super().__init__()
        self._runner = runner

    def started(self, proc: subprocess.Popen[bytes]) -> None:
        self._runner._started(proc)

    def finished(self, proc: subprocess.Popen[bytes]) -> None:
        self._runner._finished(proc)


def _not_run(hook: Hook, why: str) -> HookOutcome:
    return HookOutcome(ok=False, kind=hook.kind, target=hook.target, exit_code=None,
                       http_status=None, attempts=0, duration_s=0.0, error=f"not run: {why}")
