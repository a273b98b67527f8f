"""A world of real processes for the agent daemon's tests and benchmark: a ``warden hub
serve`` process on SQLite, node directories made by ``warden agent init`` and enrolled by
``warden agent enroll``, and ``warden agent run`` processes whose JSON logs are read from a
pipe as they are written.

Everything a test waits for is observable state polled with a deadline (:func:`wait_until`):
a log line (:meth:`AgentProcess.wait_log`), the node's status (:func:`node_status`, the
function behind ``warden agent status --json``), a stage pointer file. Nothing sleeps to
synchronise.

Officers' keys come from :class:`tests.hub.harness.Officers` (fresh per world); bundles are
``policies/standard`` signed 2-of-3 with any version number (:func:`standard_bundle`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO, TypeVar

from tests.hub.harness import Officers
from trust import dsse, keys
from trust.policy.bundle import BUNDLE_PAYLOAD_TYPE, build_payload
from trust.policy.source import load_source
from trust.timeutil import utcnow

REPO = Path(__file__).resolve().parents[2]
WARDEN = str(Path(sys.executable).with_name("warden"))
ORIGIN = "test.warden/hub"
MODEL = "credit-risk"

# Short intervals: a pass of the daemon's loop every 0.2 s, a witness round every 0.5 s.
FAST_INTERVALS = {
    "scan_interval_s": 0.2,
    "push_interval_s": 0.2,
    "witness_interval_s": 0.5,
    "heartbeat_interval_s": 2,
    "watch_backoff_initial_s": 0.1,
    "watch_backoff_max_s": 1,
}

T = TypeVar("T")


def wait_until(probe: Callable[[], T | None], timeout: float, what: str,
               *, every: float = 0.05) -> T:
    """``probe()`` once it returns something truthy; AssertionError naming ``what`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def wait_status_rewrites(status: Path, times: int, timeout: float, what: str) -> None:
    """Wait until the daemon's ``status.json`` has been rewritten ``times`` times after this
    call began watching (it is rewritten at the end of a loop pass, every couple of
    seconds): proof that passes of the loop went on."""
    seen: list[int] = []

    def rewritten() -> bool:
        if status.exists():
            m = status.stat().st_mtime_ns
            if not seen or seen[-1] != m:
                seen.append(m)
        return len(seen) > times

    wait_until(rewritten, timeout, what, every=0.1)


def run_warden(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``warden ARGV`` as a process; AssertionError with its stderr unless it exits 0."""
    r = subprocess.run([WARDEN, *argv], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"warden {' '.join(argv)} exited {r.returncode}:\n{r.stderr}")
    return r


# -- trust and policy ---------------------------------------------------------------------------


@dataclass
class Trust:
    """The officers, their root file and the hub key file."""

    officers: Officers
    root: Path
    hub_key: Path


def make_trust(d: Path) -> Trust:
    """Fresh officer keys; ``root.json`` (v1, 2-of-3 policy) and ``hub-signer.key`` in ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    officers = Officers()
    keys.save_private(officers.hub, d / "hub-signer.key")
    (d / "root.json").write_bytes(officers.root_envelope())
    return Trust(officers, d / "root.json", d / "hub-signer.key")


_SOURCE: Any = None


def standard_bundle(trust: Trust, version: int, **data: Any) -> bytes:
    """``policies/standard`` as version ``version`` (``data`` overrides thresholds), signed
    now by two of the three policy officers: the exact envelope bytes to publish."""
    global _SOURCE
    if _SOURCE is None:
        _SOURCE = load_source(REPO / "policies" / "standard")
    source = replace(_SOURCE, version=version, data={**_SOURCE.data, **data})
    payload = build_payload(source, now=utcnow())
    return dsse.sign(BUNDLE_PAYLOAD_TYPE, payload, trust.officers.policy[:2]).to_json()


# -- the hub -------------------------------------------------------------------------------------


@dataclass
class HubProcess:
    """``warden hub serve`` on a hub directory; :meth:`start` again after :meth:`kill` keeps
    the port."""

    dir: Path
    log_path: Path
    port: int = 0
    proc: subprocess.Popen[str] | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        """The hub's ``hub.yaml``."""
        return self.dir / "hub.yaml"

    def token(self, role: str) -> str:
        """An operator token of ``role`` (admin, compliance, auditor) from ``warden hub init``."""
        return (self.dir / "tokens" / f"{role}.token").read_text().strip()

    @property
    def ca(self) -> bytes:
        """The hub's CA certificate."""
        return (self.dir / "tls" / "ca.crt").read_bytes()

    def start(self, timeout: float = 30) -> None:
        """Serve on the port of the last start (a free one the first time); return once the
        port file is written (the server is bound and serving)."""
        port_file = self.dir / f"port-{time.monotonic_ns()}"
        log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            [WARDEN, "hub", "serve", "--config", str(self.config), "--listen",
             f"127.0.0.1:{self.port}", "--port-file", str(port_file)],
            stdout=log, stderr=log, text=True)
        log.close()
        proc = self.proc
        wait_until(lambda: (port_file.exists() and port_file.read_text().strip())
                   or proc.poll() is not None, timeout, "the hub to write its port file")
        if proc.poll() is not None:
            raise AssertionError(f"the hub exited {proc.returncode}:\n{self.log_path.read_text()}")
        port = int(port_file.read_text())
        assert self.port in (0, port), (self.port, port)
        self.port = port

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM and wait; the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)

    def client(self, role: str | None = None) -> Any:
        """A :class:`HubClient` as operator ``role`` (anonymous when None)."""
        from protos.client import HubClient

        return HubClient(self.address, ca_cert=self.ca,
                         token=None if role is None else self.token(role), timeout=10)


def make_hub(d: Path, trust: Trust) -> HubProcess:
    """``warden hub init`` (TLS, SQLite) in ``d/hub`` with the trust's root and hub key."""
    run_warden("hub", "init", str(d / "hub"), "--origin", ORIGIN, "--hub-key",
               str(trust.hub_key), "--root", str(trust.root))
    return HubProcess(d / "hub", d / "hub.log")


# -- nodes ---------------------------------------------------------------------------------------


def model_entry(data: str, *, name: str = MODEL) -> str:
    """One ``models:`` entry of agent.yaml: the node's data, label ``repaid``, fairness by
    ``sex``, promotion to ``staging`` only."""
    return (f"  - name: {name}\n    data: {data}\n    label: repaid\n"
            "    sensitive: [sex]\n    stages: [staging]\n")


def init_node(root: Path, node_id: str, hub: HubProcess, trust: Trust, *,
              data: Path | None = None, settings: dict[str, Any] | None = None) -> Path:
    """``warden agent init`` + ``warden hub token create`` + ``warden agent enroll`` for
    ``node_id`` in ``root/node_id``; then agent.yaml gets the model (when ``data`` is given:
    copied into the node directory) and ``settings`` (default :data:`FAST_INTERVALS`).
    Returns the path of agent.yaml."""
    d = root / node_id
    run_warden("agent", "init", "--node-id", node_id, "--hub", hub.address, "--ca",
               str(hub.dir / "tls" / "ca.crt"), "--root", str(trust.root), "--dir", str(d))
    token = run_warden("hub", "token", "create", "--config", str(hub.config), "--node",
                       node_id, "--ttl", "1h").stdout.strip()
    token_file = root / f"{node_id}.token"
    token_file.write_text(token + "\n")
    run_warden("agent", "enroll", "--config", str(d / "agent.yaml"), "--token-file",
               str(token_file))
    config = d / "agent.yaml"
    text = config.read_text()
    if data is not None:
        (d / "data").mkdir()
        (d / "data" / data.name).write_bytes(data.read_bytes())
        assert "models: []\n" in text, "agent init's template changed"
        text = text.replace("models: []\n", "models:\n" + model_entry(f"data/{data.name}"))
    for k, v in (FAST_INTERVALS if settings is None else settings).items():
        text += f"{k}: {v}\n"
    config.write_text(text)
    return config


def node_status(config: Path) -> dict[str, Any]:
    """What ``warden agent status --json`` prints, computed in this process (the same
    function; it takes no lock, so it is safe beside the running daemon)."""
    from agent.config import load_agent_config
    from agent.status import collect_status

    return collect_status(load_agent_config(config, overrides={}))


def stage_of(config: Path, stage: str, *, model: str = MODEL) -> str | None:
    """The version the node's stage pointer names, or None when there is none."""
    p = config.parent / "models" / model / "stages" / stage
    try:
        return p.read_text().strip() or None
    except FileNotFoundError:
        return None


# -- agent processes -----------------------------------------------------------------------------


@dataclass
class LogLine:
    """One JSON log line and when this process read it (``time.monotonic()``)."""

    at: float
    obj: dict[str, Any]


@dataclass
class AgentProcess:
    """``warden agent run`` with stderr on a pipe, read line by line by a thread."""

    config: Path
    proc: subprocess.Popen[str]
    tee: TextIO | None = None
    lines: list[LogLine] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        """The daemon's process id."""
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            at = time.monotonic()
            if self.tee is not None:
                self.tee.write(raw)
                self.tee.flush()
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = {"msg": raw.rstrip("\n"), "level": "raw"}
            if not isinstance(obj, dict):
                obj = {"msg": raw.rstrip("\n"), "level": "raw"}
            with self._cond:
                self.lines.append(LogLine(at, obj))
                self._cond.notify_all()

    def wait_log(self, pred: Callable[[dict[str, Any]], bool], timeout: float, what: str,
                 *, since: int = 0) -> LogLine:
        """The first line from index ``since`` on that satisfies ``pred``, waiting for it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[since:]:
                    if pred(line.obj):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reading()):
                    tail = "\n".join(json.dumps(x.obj) for x in self.lines[-15:])
                    raise AssertionError(f"{self.config.parent.name}: no log line for {what} "
                                         f"within {timeout:g} s; last lines:\n{tail}")
                self._cond.wait(min(left, 0.2))

    def _reading(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    def mark(self) -> int:
        """The index of the next line (for ``wait_log(since=...)``)."""
        with self._cond:
            return len(self.lines)

    def errors(self) -> list[dict[str, Any]]:
        """Every line at level error (or raw output: a traceback)."""
        with self._cond:
            return [x.obj for x in self.lines if x.obj.get("level") in ("error", "raw")]

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM and wait; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(5)
        return rc

    def kill(self) -> None:
        """SIGKILL (clean-up after a failed test)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self._reader is not None:
            self._reader.join(5)


def start_agent(config: Path, *, tee: Path | None = None, extra: tuple[str, ...] = ()
                ) -> AgentProcess:
    """Start ``warden agent run --config CONFIG``; its log lines are collected as read."""
    proc = subprocess.Popen([WARDEN, "agent", "run", "--config", str(config), *extra],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, bufsize=1,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    agent = AgentProcess(config, proc, tee=None if tee is None else tee.open("a"))
    agent._reader = threading.Thread(target=agent._read, daemon=True,
                                     name=f"log-{config.parent.name}")
    agent._reader.start()
    return agent


@dataclass
class Agents:
    """The agents a test started, stopped (SIGKILL) at exit if still running."""

    running: list[AgentProcess] = field(default_factory=list)

    def start(self, config: Path, **kw: Any) -> AgentProcess:
        """:func:`start_agent`, remembered for clean-up."""
        a = start_agent(config, **kw)
        self.running.append(a)
        return a

    def close(self) -> None:
        """Kill whatever still runs; close the tee files."""
        for a in self.running:
            a.kill()
            if a.tee is not None:
                a.tee.close()


def is_policy_applied(version: int) -> Callable[[dict[str, Any]], bool]:
    """Matches the daemon's ``policy_applied`` log line for standard ``version``."""
    return lambda o: (o.get("logger") == "warden.agent" and o.get("policy") == "standard"
                      and o.get("version") == version and " applied" in str(o.get("msg")))


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` (``VmRSS`` of /proc/PID/status) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc/PID/task/*/children)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def mapped_objects(pid: int) -> set[str]:
    """The file paths mapped into ``pid`` (/proc/PID/maps)."""
    paths = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/"):
            paths.add(parts[5])
    return paths


def iter_entries(client: Any) -> Iterator[Any]:
    """Every ledger entry, page by page, from index 0 to the size at the last page."""
    start = 0
    while True:
        page = client.get_entries(start, 1000)
        yield from page.entries
        start += len(page.entries)
        if start >= page.ledger_size or not page.entries:
            return
