"""Hooks (agent/hooks.py) against real subprocesses and a real HTTP server on loopback.

Nothing here is mocked: commands are real child processes (a Python interpreter running a
small script), webhooks POST to an ``http.server`` on 127.0.0.1 in a thread, "never answers"
is a listening socket nobody accepts on, "connection refused" a bound socket that is not
listening. Waits are on observable state with a deadline, never a bare sleep.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agent.hooks import (
    ALERT_EVENTS,
    RETRAIN_EVENTS,
    Hook,
    HookEvent,
    HookOutcome,
    HookRunner,
    parse_hook,
    parse_hooks,
    run_hook,
)
from trust.errors import ConfigError, FormatError

PY = sys.executable
WHEN = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib honours *_proxy variables; the loopback server must be reached directly.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def _event(**overrides: Any) -> HookEvent:
    values: dict[str, Any] = {
        "event": "drift_alert", "node_id": "emea-1", "model": "credit-risk", "version": "3",
        "reason": "drift share 0.6 > 0.3", "evidence_path": Path("/var/warden/ev/7.json"),
        "details": {"drift_share": 0.6, "window": "2026-11-26T10", "features": ["age"]},
        "time": WHEN,
    }
    values.update(overrides)
    return HookEvent(**values)


def _command(script: str, *args: str, timeout_s: float = 20.0) -> Hook:
    return Hook(kind="command", command=(PY, "-c", textwrap.dedent(script), *args),
                timeout_s=timeout_s)


def _wait_for(check: Callable[[], bool], *, what: str, deadline_s: float = 10.0) -> None:
    end = time.monotonic() + deadline_s
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for init to reap it counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# A command that starts a child (which sleeps), writes both pids, and then hangs itself.
HANGS_WITH_CHILD = """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(f"{child.pid}")
    import os; os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(120)
"""


def _read_pid(path: Path) -> int:
    _wait_for(path.exists, what=f"{path} written by the hook")
    return int(path.read_text())


# --------------------------------------------------------------------------------------------
# Commands


def test_command_success_sees_the_event_in_its_environment(tmp_path: Path) -> None:
    out = tmp_path / "env.json"
    hook = _command("""
        import json, os, sys
        env = {k: v for k, v in os.environ.items() if k.startswith("WARDEN_")}
        env["PATH_SET"] = "PATH" in os.environ
        env["STDIN"] = sys.stdin.read()
        open(sys.argv[1], "w").write(json.dumps(env))
        print("retraining queued")
    """, str(out))
    outcome = run_hook(hook, _event())
    assert outcome.ok, outcome
    assert (outcome.exit_code, outcome.error, outcome.attempts) == (0, None, 1)
    assert outcome.output == "retraining queued"
    env = json.loads(out.read_text())
    assert env["WARDEN_EVENT"] == "drift_alert"
    assert env["WARDEN_NODE_ID"] == "emea-1"
    assert env["WARDEN_MODEL"] == "credit-risk"
    assert env["WARDEN_VERSION"] == "3"
    assert env["WARDEN_REASON"] == "drift share 0.6 > 0.3"
    assert env["WARDEN_EVIDENCE"] == "/var/warden/ev/7.json"
    assert env["WARDEN_TIME"] == "2026-11-26T11:00:00Z"
    assert json.loads(env["WARDEN_DETAILS"]) == {"drift_share": 0.6, "window": "2026-11-26T10",
                                                 "features": ["age"]}
    assert env["PATH_SET"] is True  # the agent's own environment is passed on
    assert env["STDIN"] == ""  # stdin is /dev/null


def test_command_event_without_model_or_evidence_gets_empty_variables(tmp_path: Path) -> None:
    out = tmp_path / "env.json"
    hook = _command("""
        import json, os, sys
        keys = ("WARDEN_MODEL", "WARDEN_VERSION", "WARDEN_EVIDENCE", "WARDEN_DETAILS")
        open(sys.argv[1], "w").write(json.dumps({k: os.environ[k] for k in keys}))
    """, str(out))
    event = _event(event="hub_misbehaviour", model=None, version=None, evidence_path=None,
                   details={})
    assert run_hook(hook, event).ok
    assert json.loads(out.read_text()) == {"WARDEN_MODEL": "", "WARDEN_VERSION": "",
                                           "WARDEN_EVIDENCE": "", "WARDEN_DETAILS": "{}"}


def test_command_arguments_reach_the_program_verbatim_no_shell(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    tricky = "$(touch pwned); `id` && echo ; rm -rf /"
    hook = _command("import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))",
                    str(out), tricky, "*")
    assert run_hook(hook, _event()).ok
    assert json.loads(out.read_text()) == [tricky, "*"]
    assert not (Path.cwd() / "pwned").exists()


def test_command_not_found() -> None:
    outcome = run_hook(Hook(kind="command", command=("warden-no-such-hook-xyz", "--go")),
                       _event())
    assert not outcome.ok
    assert outcome.error == "command not found: warden-no-such-hook-xyz"
    assert outcome.exit_code is None
    assert outcome.target == "warden-no-such-hook-xyz"


def test_command_path_not_executable(tmp_path: Path) -> None:
    script = tmp_path / "retrain.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    outcome = run_hook(Hook(kind="command", command=(str(script),)), _event())
    assert (outcome.ok, outcome.error) == (False, f"not executable: {script}")


def test_command_exit_1_keeps_the_output_tail_for_the_log_not_the_record() -> None:
    hook = _command("""
        import sys
        print("x" * 5000)
        print("training data missing: /data/batch-7.parquet", file=sys.stderr)
        sys.exit(1)
    """)
    outcome = run_hook(hook, _event())
    assert (outcome.ok, outcome.exit_code, outcome.error) == (False, 1, "exit 1")
    assert outcome.output.endswith("training data missing: /data/batch-7.parquet")
    assert len(outcome.output) <= 500
    assert "output" not in outcome.to_dict()
    assert "batch-7" not in json.dumps(outcome.to_dict())


def test_command_killed_by_a_signal_is_named() -> None:
    outcome = run_hook(_command("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"),
                       _event())
    assert (outcome.ok, outcome.exit_code) == (False, -11)
    assert outcome.error == "killed by signal SIGSEGV"


def test_command_that_hangs_is_killed_with_its_child(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    hook = _command(HANGS_WITH_CHILD, str(pids), timeout_s=1.0)
    started = time.monotonic()
    outcome = run_hook(hook, _event())
    elapsed = time.monotonic() - started
    assert not outcome.ok
    assert outcome.error is not None and outcome.error.startswith("timed out after 1 s")
    assert outcome.exit_code is None
    assert 1.0 <= outcome.duration_s < 10 and elapsed < 10
    child = int(pids.read_text())
    _wait_for(lambda: not _alive(child), what=f"the hook's child {child} to be gone")


def test_command_that_leaves_a_background_job_with_its_output_does_not_hang(
        tmp_path: Path) -> None:
    # The background child inherits the output file; the agent waits for the command only.
    pids = tmp_path / "pids"
    hook = _command("""
        import subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        open(sys.argv[1], "w").write(str(child.pid))
    """, str(pids), timeout_s=20)
    outcome = run_hook(hook, _event())
    child = int(pids.read_text())
    try:
        assert outcome.ok and outcome.duration_s < 10
        assert _alive(child)  # started on purpose; exiting in time is success
    finally:
        os.kill(child, 9)


# --------------------------------------------------------------------------------------------
# Webhooks


class _Server:
    """A loopback HTTP server answering POSTs with scripted statuses; it records requests."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with owner.lock:
                    owner.requests.append({"path": self.path, "headers": dict(self.headers),
                                           "body": body})
                    status = owner.statuses.pop(0) if owner.statuses else 200
                answer = b'{"ok": true}' if status < 400 else b"upstream exploded"
                self.send_response(status)
                if status in (301, 302, 307, 308):
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server() -> Iterator[Callable[[list[int]], _Server]]:
    made: list[_Server] = []

    def make(statuses: list[int]) -> _Server:
        made.append(_Server(statuses))
        return made[-1]

    yield make
    for s in made:
        s.close()


def _webhook(url: str, **kwargs: Any) -> Hook:
    kwargs.setdefault("timeout_s", 5.0)
    kwargs.setdefault("backoff_s", 0.01)
    return Hook(kind="webhook", url=url, **kwargs)


def test_webhook_json_payload(server: Callable[[list[int]], _Server]) -> None:
    srv = server([200])
    hook = _webhook(srv.url + "/hooks/warden?token=s3cret",
                    headers=(("Authorization", "Bearer t0ken"),))
    outcome = run_hook(hook, _event())
    assert outcome.ok and outcome.error is None
    assert (outcome.http_status, outcome.attempts, outcome.exit_code) == (200, 1, None)
    [req] = srv.requests
    assert req["path"] == "/hooks/warden?token=s3cret"
    assert req["headers"]["Content-Type"] == "application/json"
    assert req["headers"]["Authorization"] == "Bearer t0ken"
    assert json.loads(req["body"]) == {
        "schema": "warden.hook/v1", "event": "drift_alert", "node_id": "emea-1",
        "model": "credit-risk", "version": "3", "reason": "drift share 0.6 > 0.3",
        "time": "2026-11-26T11:00:00Z", "evidence_path": "/var/warden/ev/7.json",
        "details": {"drift_share": 0.6, "window": "2026-11-26T10", "features": ["age"]},
    }
    # What goes into a record: the origin only, no path, query, header or token.
    record = json.dumps(outcome.to_dict())
    assert outcome.to_dict()["target"] == srv.url
    for secret in ("s3cret", "t0ken", "/hooks"):
        assert secret not in record and secret not in repr(hook)


def test_webhook_slack_payload(server: Callable[[list[int]], _Server]) -> None:
    srv = server([200])
    event = _event(reason="drift <script> & more", details={"drift_share": 0.6,
                                                            "features": ["age"]})
    assert run_hook(_webhook(srv.url, format="slack"), event).ok
    message = json.loads(srv.requests[0]["body"])
    assert set(message) == {"text", "blocks"}
    assert message["text"] == ("Warden drift_alert at node emea-1: credit-risk version 3 — "
                               "drift <script> & more")
    assert "\n" not in message["text"]
    blocks = message["blocks"]
    assert all(b["type"] in ("section", "context") for b in blocks)
    texts = [b["text"]["text"] for b in blocks if "text" in b]
    assert "credit-risk" in texts[0] and "emea-1" in texts[0]
    assert texts[1] == "drift &lt;script&gt; &amp; more"  # Slack's mrkdwn escaping
    [fields] = [b["fields"] for b in blocks if "fields" in b]
    assert fields == [{"type": "mrkdwn", "text": "*drift_share*\n0.6"}]  # scalars only
    [context] = [b for b in blocks if b["type"] == "context"]
    assert "2026-11-26T11:00:00Z" in context["elements"][0]["text"]


def test_webhook_500_then_200_is_retried(server: Callable[[list[int]], _Server]) -> None:
    srv = server([500, 503, 200])
    outcome = run_hook(_webhook(srv.url, retries=3), _event())
    assert (outcome.ok, outcome.http_status, outcome.attempts) == (True, 200, 3)
    assert len(srv.requests) == 3


def test_webhook_500_every_time_gives_up_after_the_retries(
        server: Callable[[list[int]], _Server]) -> None:
    srv = server([500] * 10)
    outcome = run_hook(_webhook(srv.url, retries=2), _event())
    assert (outcome.ok, outcome.http_status, outcome.attempts) == (False, 500, 3)
    assert outcome.error == "HTTP 500"
    assert outcome.output == "upstream exploded"
    assert len(srv.requests) == 3


def test_webhook_backoff_doubles(server: Callable[[list[int]], _Server]) -> None:
    srv = server([500, 500, 200])
    outcome = run_hook(_webhook(srv.url, retries=2, backoff_s=0.2), _event())
    assert outcome.ok and outcome.attempts == 3
    assert outcome.duration_s >= 0.2 + 0.4


@pytest.mark.parametrize("status", [400, 401, 404])
def test_webhook_4xx_is_not_retried(server: Callable[[list[int]], _Server],
                                    status: int) -> None:
    srv = server([status, 200])
    outcome = run_hook(_webhook(srv.url, retries=3), _event())
    assert (outcome.ok, outcome.http_status, outcome.attempts) == (False, status, 1)
    assert outcome.error == f"HTTP {status}"
    assert len(srv.requests) == 1


def test_webhook_429_is_retried(server: Callable[[list[int]], _Server]) -> None:
    srv = server([429, 200])
    outcome = run_hook(_webhook(srv.url, retries=1), _event())
    assert (outcome.ok, outcome.attempts) == (True, 2)


def test_webhook_redirect_is_not_followed(server: Callable[[list[int]], _Server]) -> None:
    srv = server([307])
    outcome = run_hook(_webhook(srv.url, retries=3,
                                headers=(("Authorization", "Bearer x"),)), _event())
    assert (outcome.ok, outcome.http_status, outcome.attempts) == (False, 307, 1)
    assert outcome.error == "HTTP 307 (redirects are not followed)"


def test_webhook_that_never_answers_times_out() -> None:
    # Listening, never accepting: the connection is made by the kernel, no answer comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        outcome = run_hook(_webhook(url, timeout_s=0.3, retries=1), _event())
    assert not outcome.ok
    assert (outcome.error, outcome.attempts, outcome.http_status) == (
        "timed out after 0.3 s", 2, None)
    assert 0.6 <= outcome.duration_s < 5


def test_webhook_connection_refused() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"
        outcome = run_hook(_webhook(url, retries=2), _event())
    assert (outcome.ok, outcome.error, outcome.attempts) == (False, "connection refused", 3)
    assert outcome.to_dict() == {
        "ok": False, "kind": "webhook", "target": url.removesuffix("/hook"),
        "exit_code": None, "http_status": None, "attempts": 3,
        "duration_s": round(outcome.duration_s, 3), "error": "connection refused",
    }


def test_webhook_server_that_hangs_up_without_answering() -> None:
    with socket.socket() as rude:
        rude.bind(("127.0.0.1", 0))
        rude.listen(8)
        port = rude.getsockname()[1]

        def hang_up() -> None:
            for _ in range(2):
                conn, _addr = rude.accept()
                conn.recv(65536)
                conn.close()

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        outcome = run_hook(_webhook(f"http://127.0.0.1:{port}/", retries=1), _event())
        thread.join(5)
    assert (outcome.ok, outcome.attempts) == (False, 2)
    assert outcome.error == "connection closed without an answer"


# --------------------------------------------------------------------------------------------
# HookRunner


def _drain(runner: HookRunner, n: int) -> list[tuple[Hook, HookEvent, HookOutcome]]:
    got: list[tuple[Hook, HookEvent, HookOutcome]] = []

    def enough() -> bool:
        got.extend(runner.completed())
        return len(got) >= n

    _wait_for(enough, what=f"{n} hook outcomes")
    return got


def test_runner_a_hanging_hook_does_not_block_another_and_close_kills_it(
        tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    hanging = _command(HANGS_WITH_CHILD, str(pids), timeout_s=60)
    quick = _command("pass")
    runner = HookRunner(max_workers=2)
    try:
        runner.submit(hanging, _event())
        child = _read_pid(pids)  # the hanging hook runs
        runner.submit(quick, _event(event="rollback"))
        [(hook, event, outcome)] = _drain(runner, 1)
        assert hook is quick and event.event == "rollback" and outcome.ok
        assert runner.pending() == 1
    finally:
        started = time.monotonic()
        runner.close(timeout=0.2)
        assert time.monotonic() - started < 5
    [(hook, _event_, outcome)] = runner.completed()
    assert hook is hanging
    assert (outcome.ok, outcome.error) == (False, "killed: the agent stopped")
    assert runner.pending() == 0
    _wait_for(lambda: not _alive(child), what=f"the hanging hook's child {child} to be gone")


def test_runner_close_waits_for_hooks_that_finish_in_time(tmp_path: Path) -> None:
    out = tmp_path / "done"
    runner = HookRunner(max_workers=1)
    slow = _command("import sys, time; time.sleep(0.3); open(sys.argv[1], 'w').write('ok')",
                    str(out))
    runner.submit(slow, _event())
    runner.submit(slow, _event())  # waits for the first: close() lets it run too
    runner.close(timeout=15)
    outcomes = [o for _h, _e, o in runner.completed()]
    assert [o.ok for o in outcomes] == [True, True]
    assert out.read_text() == "ok"


def test_runner_queue_full_and_closed_refusals_are_outcomes(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    hanging = _command(HANGS_WITH_CHILD, str(pids), timeout_s=60)
    runner = HookRunner(max_workers=1, max_queued=1)
    try:
        runner.submit(hanging, _event())
        _read_pid(pids)
        waiting = _command("pass")
        refused = _command("pass")
        runner.submit(waiting, _event())
        runner.submit(refused, _event(event="rollback"))
        [(hook, event, outcome)] = runner.completed()
        assert hook is refused and event.event == "rollback"
        assert (outcome.ok, outcome.attempts) == (False, 0)
        assert outcome.error == "not run: hook queue full (1 waiting)"
        assert runner.pending() == 2
    finally:
        runner.close(timeout=0)
    by_hook = {id(h): o for h, _e, o in runner.completed()}
    assert by_hook[id(waiting)].error == "not run: the agent stopped"
    assert by_hook[id(waiting)].attempts == 0
    assert by_hook[id(hanging)].error == "killed: the agent stopped"
    late = _command("pass")
    runner.submit(late, _event())
    [(hook, _e, outcome)] = runner.completed()
    assert hook is late and outcome.error == "not run: the agent stopped"


def test_runner_close_stops_webhook_retries() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/"
        runner = HookRunner()
        runner.submit(_webhook(url, retries=5, backoff_s=30), _event())
        _wait_for(lambda: runner.pending() == 1, what="the webhook to start")
        started = time.monotonic()
        runner.close(timeout=0.3)
        assert time.monotonic() - started < 5
    [(_h, _e, outcome)] = runner.completed()
    assert outcome.attempts == 1
    assert outcome.error == "connection refused; no further retry: the agent stopped"


# --------------------------------------------------------------------------------------------
# Configuration


def _parse(value: Any, events: frozenset[str] | None = ALERT_EVENTS,
           base: Path = Path("/etc/warden")) -> Hook:
    return parse_hook(value, at="alerts[0]", where="agent.yaml", base=base, events=events)


def test_parse_command_hook_defaults_and_path_resolution() -> None:
    hook = _parse({"command": ["bin/retrain.sh", "--model", "x"]})
    assert hook.kind == "command"
    assert hook.command == ("/etc/warden/bin/retrain.sh", "--model", "x")
    assert (hook.timeout_s, hook.on) == (300.0, ALERT_EVENTS)
    # A bare name is looked up on PATH when it runs, not resolved against the config dir.
    assert _parse({"command": ["retrain"]}).command == ("retrain",)
    assert _parse({"command": ["/opt/r.sh"]}).command == ("/opt/r.sh",)


def test_parse_webhook_hook() -> None:
    hook = _parse({"url": "https://hooks.slack.com/services/T0/B0/secret", "format": "slack",
                   "retries": 5, "backoff_s": 0.5, "timeout_s": 3,
                   "headers": {"Authorization": "Bearer abc"},
                   "on": ["drift_alert", "rollback_impossible"]})
    assert (hook.kind, hook.format, hook.retries, hook.backoff_s, hook.timeout_s) == (
        "webhook", "slack", 5, 0.5, 3.0)
    assert hook.headers == (("Authorization", "Bearer abc"),)
    assert hook.on == frozenset({"drift_alert", "rollback_impossible"})
    assert hook.fires_for("drift_alert") and not hook.fires_for("rollback")
    assert hook.target == "https://hooks.slack.com"
    defaults = _parse({"url": "http://127.0.0.1:8080/x"})
    assert (defaults.timeout_s, defaults.retries, defaults.backoff_s, defaults.format) == (
        10.0, 3, 1.0, "json")


def test_parse_retrain_section_has_fixed_events_when_none() -> None:
    assert _parse({"command": ["r"]}, events=None).on == frozenset()
    assert _parse({"command": ["r"], "on": ["rollback"]}, events=RETRAIN_EVENTS).on == {
        "rollback"}


def test_parse_hooks_list() -> None:
    hooks = parse_hooks([{"command": ["a"]}, {"url": "http://h/"}], at="alerts",
                        where="agent.yaml", base=Path("/"), events=ALERT_EVENTS)
    assert [h.kind for h in hooks] == ["command", "webhook"]
    assert parse_hooks(None, at="alerts", where="w", base=Path("/"), events=None) == ()
    with pytest.raises(ConfigError, match=r"agent.yaml: alerts\[1\] needs exactly one"):
        parse_hooks([{"command": ["a"]}, {}], at="alerts", where="agent.yaml", base=Path("/"),
                    events=ALERT_EVENTS)
    with pytest.raises(ConfigError, match="alerts must be a list of hooks"):
        parse_hooks({"command": ["a"]}, at="alerts", where="agent.yaml", base=Path("/"),
                    events=ALERT_EVENTS)


BAD_HOOKS: list[tuple[str, Any, str]] = [
    ("not a mapping", ["retrain.sh"], r"alerts\[0\] must be a mapping"),
    ("unknown key", {"command": ["a"], "shell": True}, r"unknown key alerts\[0\]\.shell"),
    ("both command and url", {"command": ["a"], "url": "http://h/"},
     r"exactly one of command .* and url, not both"),
    ("neither", {"timeout_s": 3}, r"alerts\[0\] needs exactly one of command"),
    ("command as a string", {"command": "retrain.sh --fast"},
     r"alerts\[0\]\.command must be a list of strings \(argv: no shell is used\), "
     r"got 'retrain.sh --fast'"),
    ("command empty", {"command": []}, r"alerts\[0\]\.command must name a program"),
    ("command with an empty argument", {"command": ["a", ""]},
     r"alerts\[0\]\.command\[1\] must be a non-empty string, got ''"),
    ("command with a number", {"command": ["a", 3]},
     r"alerts\[0\]\.command\[1\] must be a non-empty string, got 3"),
    ("url scheme ftp", {"url": "ftp://h/x"},
     r"alerts\[0\]\.url must be an http:// or https:// URL, got scheme 'ftp'"),
    ("url without scheme", {"url": "hooks.example.com/x"}, r"got scheme '\(none\)'"),
    ("url with userinfo", {"url": "https://bob:pw@h/x"}, r"must not hold a user or password"),
    ("url with a bad port", {"url": "http://h:99999/"}, r"alerts\[0\]\.url has an invalid port"),
    ("url with a space", {"url": "http://h/a b"}, r"spaces or control characters"),
    ("bad event name", {"command": ["a"], "on": ["drift"]},
     r"alerts\[0\]\.on: 'drift' is not an event"),
    ("event twice", {"command": ["a"], "on": ["rollback", "rollback"]}, r"'rollback' twice"),
    ("empty on", {"command": ["a"], "on": []}, r"must name at least one event"),
    ("on as a string", {"command": ["a"], "on": "rollback"}, r"on must be a list of event"),
    ("timeout zero", {"command": ["a"], "timeout_s": 0}, r"alerts\[0\]\.timeout_s must be"),
    ("timeout not a number", {"command": ["a"], "timeout_s": "soon"},
     r"alerts\[0\]\.timeout_s must be a number, got 'soon'"),
    ("retries on a command", {"command": ["a"], "retries": 2},
     r"alerts\[0\]\.retries applies to url hooks only"),
    ("retries fractional", {"url": "http://h/", "retries": 1.5}, r"must be a whole number"),
    ("retries too many", {"url": "http://h/", "retries": 11}, r"between 0 and 10, got 11"),
    ("bad format", {"url": "http://h/", "format": "teams"}, r"format 'teams' is not one of"),
    ("headers not a mapping", {"url": "http://h/", "headers": ["Authorization: x"]},
     r"headers must be a mapping"),
    ("header value not a string", {"url": "http://h/", "headers": {"X-Token": 5}},
     r"headers\.X-Token must be a non-empty string"),
    ("header injection", {"url": "http://h/", "headers": {"X-A": "v\r\nX-B: w"}},
     r"must not hold line breaks"),
    ("header content-type", {"url": "http://h/", "headers": {"content-type": "text/plain"}},
     r"is set by Warden"),
    ("header bad name", {"url": "http://h/", "headers": {"X A": "v"}},
     r"'X A' is not a valid header name"),
]


@pytest.mark.parametrize(("value", "message"), [(v, m) for _n, v, m in BAD_HOOKS],
                         ids=[n for n, _v, _m in BAD_HOOKS])
def test_parse_hook_refuses(value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        _parse(value)
    assert info.value.message.startswith("agent.yaml: ")


def test_parse_hook_refuses_on_where_events_are_fixed() -> None:
    with pytest.raises(ConfigError, match=r"unknown key alerts\[0\]\.on") as info:
        _parse({"command": ["a"], "on": ["rollback"]}, events=None)
    assert info.value.hint == "this hook's events are fixed; remove 'on'"


def test_parse_errors_never_show_secrets() -> None:
    for value in ({"url": "ftp://hooks/s3cret"},
                  {"url": "https://u:s3cret@hooks/x"},
                  {"url": "http://hooks/x", "headers": {"Authorization": "Bearer\ns3cret"}}):
        with pytest.raises(ConfigError) as info:
            _parse(value)
        assert "s3cret" not in info.value.diagnostics()


def test_event_refuses_details_that_are_not_json() -> None:
    with pytest.raises(FormatError, match="details must be JSON"):
        _event(details={"x": float("nan")})
    with pytest.raises(FormatError, match="details must be JSON"):
        _event(details={"x": object()})
    with pytest.raises(FormatError, match="timezone-aware"):
        _event(time=datetime(2026, 1, 1))
    event = _event(details={"counts": [1, 2]})
    with pytest.raises(TypeError):
        event.details["counts"] = 3  # type: ignore[index]
