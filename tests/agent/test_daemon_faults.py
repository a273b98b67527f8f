"""Faults of the agent daemon, with real processes: a ``warden hub serve`` process and
``warden agent run`` daemons (tests/agent/daemon_world.py) governing real scikit-learn
models (bench/gen_credit_model.py).

* **kill -9 at arbitrary points**: a daemon governing a stream of model versions is SIGKILLed
  again and again (seeded delays over start-up, policy, validation, decision, push, witness;
  and once right after a promotion is logged); after each kill, and after a final clean
  ``run --once``: the node's records are seqs 1..head with no gap (hub ledger ∪ outbox) and
  no duplicate seq in the ledger, the hub holds exactly the bytes the node signed, every stage
  pointer ever seen names a version with a ``promote`` record, every decided version's seq
  names its record, the policy worker does not outlive the daemon, and the ledger verifies.
  Duplicate *events* for one version after a crash between record and state save are allowed
  (agent/validation.py documents them) and only counted;
* **SIGHUP** after editing agent.yaml: new models governed, the log level applied; a new
  ``node_id`` refused, the daemon keeps governing under its running configuration;
* **SIGTERM during validation** (to the daemon's whole process group, as systemd or Ctrl-C
  send it): exit 0 promptly; each version decided with its record or still pending, never a
  ``validation_error`` caused by the signal; a restart governs the rest;
* **hub refusals** (a node the hub does not know): the daemon keeps running, logs the refusal
  as a JSON error line (no traceback), exits 0 on SIGTERM;
* **a signed bundle the engine cannot build** (Rego that does not compile, an undefined
  entrypoint): ``policy_rejected`` naming the version and reason, nothing promoted, also after
  a restart; a later good bundle governs the waiting version;
* **a full outbox** (``outbox_max_bytes`` 64 KiB, hub away): the storage error is logged,
  governance stops short with no action unrecorded, the daemon keeps running; once the hub is
  back and proved records are pruned, governance resumes and every version is promoted.

Every wait is on observable state with a deadline (log lines, files, the ledger). The only
sleeps are the kill delays of the kill -9 test: they *are* the fault, not a synchronisation.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

# Before bench/ is on sys.path: bench/agent.py would shadow the agent package.
import agent.config
import agent.outbox
from tests.agent.daemon_world import (
    FAST_INTERVALS,
    MODEL,
    ORIGIN,
    REPO,
    WARDEN,
    AgentProcess,
    Agents,
    HubProcess,
    Trust,
    children,
    init_node,
    is_policy_applied,
    iter_entries,
    mapped_objects,
    model_entry,
    run_warden,
    stage_of,
    standard_bundle,
    wait_status_rewrites,
    wait_until,
)
from trust import dsse, keys
from trust.policy.bundle import BUNDLE_PAYLOAD_TYPE, build_payload
from trust.policy.source import load_source
from trust.record import AuditRecord, EventType
from trust.timeutil import utcnow

sys.path.append(str(REPO / "bench"))
from gen_credit_model import credit_table, write_release  # noqa: E402

pytestmark = pytest.mark.slow

# The first validation in a daemon imports NumPy, SciPy, pyarrow, scikit-learn and starts the
# policy worker: seconds on a loaded machine.
FIRST_DECISION_S = 60.0


# -- the world -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two trained releases, cloned into registries under any version name: a compliant
    model (promoted by the standard policy) and a biased one (blocked on fairness)."""
    import pyarrow.parquet as pq

    d = tmp_path_factory.mktemp("releases")
    out = {
        "fair": write_release(d / "fair", MODEL, "0.0.1", bias=0.0, seed=3, rows=1500),
        "biased": write_release(d / "biased", MODEL, "0.0.1", bias=0.3, seed=4, rows=1500),
    }
    pq.write_table(credit_table(20_000, seed=11), d / "validation.parquet")
    out["data"] = d / "validation.parquet"
    return out


def drop(release: Path, config: Path, version: str, *, model: str = MODEL) -> None:
    """Publish ``release`` into the node's registry as ``model`` ``version``, as a publisher
    does: everything but ``READY`` first (manifest renamed to this model and version), then
    ``READY``."""
    dest = config.parent / "models" / model / version
    shutil.copytree(release, dest, ignore=shutil.ignore_patterns("READY"))
    manifest = dest / "manifest.yaml"
    text = manifest.read_text()
    head = f"{{name: {MODEL}, version: '{release.name}',"
    assert head in text, "gen_credit_model's manifest layout changed"
    manifest.write_text(text.replace(head, f"{{name: {model}, version: '{version}',"))
    (dest / "READY").touch()


def publish(hub: HubProcess, envelope: bytes) -> None:
    with hub.client("compliance") as c:
        c.publish(envelope)


def bundle(trust: Trust, version: int, *, entrypoint: str | None = None,
           broken_rego: bool = False) -> bytes:
    """``policies/standard`` as ``version``, signed by two policy officers (valid signatures
    under the root), optionally one the engine cannot build."""
    source = load_source(REPO / "policies" / "standard")
    source = replace(source, version=version)
    if entrypoint is not None:
        source = replace(source, entrypoint=entrypoint)
    if broken_rego:
        files = dict(source.files)
        files["decision.rego"] += "\nbroken_rule if {\n    input.x ==\n"
        source = replace(source, files=files)
    payload = build_payload(source, now=utcnow())
    return dsse.sign(BUNDLE_PAYLOAD_TYPE, payload, trust.officers.policy[:2]).to_json()


def start_own_group(agents: Agents, config: Path) -> AgentProcess:
    """``warden agent run`` as the leader of its own process group (as under systemd), so a
    signal can go to the whole group — the daemon and any child it started — without
    reaching this test process."""
    proc = subprocess.Popen([WARDEN, "agent", "run", "--config", str(config)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, bufsize=1,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            start_new_session=True)
    a = AgentProcess(config, proc)
    a._reader = threading.Thread(target=a._read, daemon=True, name="log-own-group")
    a._reader.start()
    agents.running.append(a)
    return a


# -- what the node and the hub hold ----------------------------------------------------------


def node_key(config: Path) -> keys.PublicKey:
    return keys.load_private(config.parent / "node.key").public


def outbox_path(config: Path) -> Path:
    return agent.config.load_agent_config(config, env={}, overrides={}).outbox_path


def outbox_records(config: Path) -> dict[int, AuditRecord]:
    """The outbox's rows, read through a read-only connection (safe beside a daemon)."""
    path = outbox_path(config)
    if not path.exists():
        return {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT seq, envelope FROM records ORDER BY seq").fetchall()
    finally:
        conn.close()
    key = node_key(config)
    return {int(s): AuditRecord.from_envelope(bytes(e), key) for s, e in rows}


def ledger_records(hub: HubProcess, config: Path, node_id: str) -> list[AuditRecord]:
    """The node's records in the hub's ledger, in ledger order, each verified."""
    key = node_key(config)
    with hub.client("auditor") as c:
        entries = list(iter_entries(c))
    return [AuditRecord.from_envelope(e.envelope, key) for e in entries if e.node_id == node_id]


def history(hub: HubProcess, config: Path, node_id: str) -> dict[int, AuditRecord]:
    """Every record the node ever wrote (hub ledger ∪ outbox), checked: no duplicate seq in
    the ledger, the ledger holds the very bytes the outbox holds, and together they are seqs
    1..head with no gap."""
    ledger = ledger_records(hub, config, node_id)
    seqs = [r.seq for r in ledger]
    dupes = [s for s, n in Counter(seqs).items() if n > 1]
    assert not dupes, f"duplicate seqs in the hub's ledger: {dupes}"
    assert seqs == sorted(seqs), f"the node's records are out of order in the ledger: {seqs}"
    merged = {r.seq: r for r in ledger}
    for seq, r in outbox_records(config).items():
        if seq in merged:
            assert merged[seq].envelope == r.envelope, f"seq {seq}: the hub holds other bytes"
        merged[seq] = r
    head = agent.outbox.read_status(outbox_path(config)).head.seq
    assert sorted(merged) == list(range(1, head + 1)), (
        f"records are not 1..{head}: {sorted(merged)}")
    return merged


def decided(config: Path, model: str = MODEL) -> dict[str, dict[str, Any]]:
    """``decisions.json``: the versions of ``model`` the node has decided."""
    path = config.parent / "decisions.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())["decided"].get(model, {})  # type: ignore[no-any-return]


def events_of(records: dict[int, AuditRecord], event: EventType,
              model: str = MODEL) -> list[AuditRecord]:
    return [r for _, r in sorted(records.items())
            if r.event is event and r.subject.model == model]


_OUTCOME = {"promoted": EventType.PROMOTE, "blocked": EventType.BLOCK}


def check_consistent(records: dict[int, AuditRecord], config: Path,
                     pointers: set[str]) -> None:
    """No action without its record: the stage pointer (remembered in ``pointers``) names a
    version with a ``promote`` record; each decided version's seq names its own record."""
    pointer = stage_of(config, "staging")
    if pointer is not None:
        pointers.add(pointer)
    promoted = {r.subject.version for r in events_of(records, EventType.PROMOTE)}
    missing = pointers - promoted
    assert not missing, f"stage pointer moved to {missing} without a promote record"
    for version, entry in decided(config).items():
        rec = records.get(entry["seq"])
        assert rec is not None, f"{version}: decided with seq {entry['seq']}, no such record"
        assert rec.subject.version == version, (version, entry, rec.subject)
        assert _OUTCOME.get(entry["outcome"]) is rec.event, (version, entry, rec.event)


def stage_in_saved_input(config: Path, record: AuditRecord) -> str:
    """The target stage in the policy input a decision record pins (``inputs/<sha>.json``)."""
    sha = record.evidence["policy_input"]["sha256"]
    doc = json.loads((config.parent / "inputs" / f"{sha}.json").read_bytes())
    return str(doc["model"]["stage"])


def exited(pid: int) -> bool:
    """The process is gone (or a zombie nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def verify_ledger(hub: HubProcess, trust: Trust, node_keys: dict[str, keys.PublicKey]) -> None:
    """Stop the hub and audit its whole ledger (signatures, chains, Merkle root, checkpoints)."""
    from hub.config import load_config
    from hub.ledger.store import LedgerStore
    from tests.ledger.ledger_helpers import verify_whole_ledger

    assert hub.stop() == 0
    store = LedgerStore.open(load_config(hub.config, env={}).database, hub_key=trust.officers.hub)
    try:
        verify_whole_ledger(store, trust.officers.hub.public, node_keys, origin=ORIGIN)
    finally:
        store.close()


def no_traceback(a: AgentProcess) -> None:
    """Every line the daemon wrote was a JSON log line, none carrying a traceback."""
    raw = [x.obj for x in a.lines if x.obj.get("level") == "raw"]
    assert not raw, f"non-JSON output (a traceback?): {raw[:5]}"
    tb = [x.obj for x in a.lines if "Traceback" in json.dumps(x.obj)]
    assert not tb, f"a traceback was logged: {tb[:2]}"


def while_running(a: AgentProcess, probe: Callable[[], Any]) -> Callable[[], Any]:
    """``probe`` for :func:`wait_until` that fails at once when the daemon has exited."""
    def check() -> Any:
        if a.proc.poll() is not None:
            tail = "\n".join(json.dumps(x.obj) for x in a.lines[-10:])
            raise AssertionError(f"the daemon exited with {a.proc.returncode}:\n{tail}")
        return probe()
    return check


def promoted_line(version: str, model: str = MODEL) -> Callable[[dict[str, Any]], bool]:
    return lambda o: (o.get("msg") == "model version promoted" and o.get("version") == version
                      and o.get("model") == model)


# -- kill -9 ---------------------------------------------------------------------------------


def test_kill_9_at_arbitrary_points_loses_no_record_and_takes_no_action_without_one(
    tmp_path: Path, started_hub: tuple[HubProcess, Trust], releases: dict[str, Path], agents: Agents
) -> None:
    hub, trust = started_hub
    cfg = init_node(tmp_path / "nodes", "emea-1", hub, trust, data=releases["data"])
    publish(hub, standard_bundle(trust, 1))
    rng = random.Random(20261202)  # seeded: the same kill points on every run
    # Spread over a daemon's governing period: start-up (~0.3 s), policy applied, the first
    # validation (imports, worker start: ~1-2 s), later decisions (tens of ms), push, witness.
    delays = [0.15, 0.5, 0.9, 1.3, 1.8, 2.4]
    rng.shuffle(delays)
    delays = [round(d + rng.uniform(0.0, 0.1), 3) for d in delays]
    kinds: dict[str, str] = {}
    pointers: set[str] = set()
    orphans: list[int] = []

    def round_of(r: int, n: int) -> None:
        for j in range(n):
            v = f"1.{r}.{j}"
            kinds[v] = "fair" if rng.random() < 0.65 else "biased"
            drop(releases[kinds[v]], cfg, v)

    for r, delay in enumerate(delays):
        round_of(r, 2)
        a = agents.start(cfg)
        time.sleep(delay)  # the fault point (not a synchronisation): kill wherever it is
        workers = children(a.pid) if a.proc.poll() is None else []
        assert a.proc.poll() is None, f"the daemon exited by itself: {a.errors()}"
        a.kill()
        orphans += workers
        check_consistent(history(hub, cfg, "emea-1"), cfg, pointers)
        no_traceback(a)

    # Once more, right where a crash hurts most: just after a pointer moved (the promote
    # record is written, the decided state may not be saved yet).
    drop(releases["fair"], cfg, "1.9.0")
    drop(releases["fair"], cfg, "1.9.1")
    kinds["1.9.0"] = kinds["1.9.1"] = "fair"
    a = agents.start(cfg)
    a.wait_log(lambda o: o.get("msg") == "model version promoted", FIRST_DECISION_S,
               "a promotion to kill the daemon right after")
    orphans += children(a.pid)
    a.kill()
    check_consistent(history(hub, cfg, "emea-1"), cfg, pointers)

    # The policy worker (its own session since the fix) must not outlive its daemon.
    for pid in orphans:
        wait_until(lambda p=pid: exited(p), 10, f"the orphaned policy worker {pid} to exit")

    # A clean run processes what is left, pushes, and proves every record included.
    once = run_warden("agent", "run", "--once", "--config", str(cfg), "--timeout", "60",
                      timeout=120)
    assert "all records acknowledged and proved" in once.stderr, once.stderr[-2000:]
    records = history(hub, cfg, "emea-1")
    assert outbox_records(cfg) == {}, "proved records are pruned"
    ledger_seqs = [r.seq for r in ledger_records(hub, cfg, "emea-1")]
    assert ledger_seqs == list(range(1, max(records) + 1))
    check_consistent(records, cfg, pointers)

    promotes = Counter(r.subject.version for r in events_of(records, EventType.PROMOTE))
    blocks = Counter(r.subject.version for r in events_of(records, EventType.BLOCK))
    errors = events_of(records, EventType.VALIDATION_ERROR)
    assert not errors, [(r.subject.version, r.evidence) for r in errors]
    fair = sorted(v for v, k in kinds.items() if k == "fair")
    biased = sorted(v for v, k in kinds.items() if k == "biased")
    assert set(promotes) == set(fair), (promotes, kinds)
    assert set(blocks) == set(biased), (blocks, kinds)
    assert set(decided(cfg)) == set(kinds)
    assert not pointers & set(biased), "a blocked version was put at a stage"
    # Versions are governed in order, so the last compliant one holds the stage; its promote
    # record's pinned policy input names that stage.
    assert stage_of(cfg, "staging") == fair[-1]
    last = events_of(records, EventType.PROMOTE)[-1]
    assert last.subject.version == fair[-1]
    assert stage_in_saved_input(cfg, last) == "staging"
    assert events_of(records, EventType.POLICY_APPLIED, model="policy:standard")
    repeats = {v: n for v, n in (promotes + blocks).items() if n > 1}
    print(f"kill delays {delays}; duplicate decision events after crashes: {repeats}")

    verify_ledger(hub, trust, {"emea-1": node_key(cfg)})


# -- SIGHUP ----------------------------------------------------------------------------------


def test_sighup_reloads_models_and_log_level_and_refuses_a_new_identity(
    tmp_path: Path, started_hub: tuple[HubProcess, Trust], releases: dict[str, Path], agents: Agents
) -> None:
    hub, trust = started_hub
    cfg = init_node(tmp_path / "nodes", "emea-1", hub, trust, data=releases["data"])
    publish(hub, standard_bundle(trust, 1))
    drop(releases["fair"], cfg, "1.0.0")
    drop(releases["fair"], cfg, "1.0.0", model="fraud-score")  # in the registry, not configured
    a = agents.start(cfg)
    a.wait_log(promoted_line("1.0.0"), FIRST_DECISION_S, "credit-risk 1.0.0 promoted")
    # The daemon has scanned with fraud-score 1.0.0 complete in its registry: not its business.
    assert stage_of(cfg, "staging", model="fraud-score") is None
    assert not [x for x in a.lines if x.obj.get("level") == "debug"]

    data = next((cfg.parent / "data").iterdir()).name
    text = cfg.read_text()
    assert "log_level: info\n" in text and "scan_interval_s: 0.2\n" in text
    text = text.replace("models:\n", "models:\n" + model_entry(f"data/{data}", name="fraud-score")
                        + model_entry(f"data/{data}", name="churn"), 1)  # churn: no versions yet
    text = text.replace("log_level: info\n", "log_level: debug\n")
    text = text.replace("scan_interval_s: 0.2\n", "scan_interval_s: 0.3\n")
    cfg.write_text(text)
    mark = a.mark()
    os.kill(a.pid, signal.SIGHUP)
    reloaded = a.wait_log(lambda o: o.get("msg") == "configuration reloaded", 10,
                          "the reload", since=mark)
    assert reloaded.obj.get("models") == 3, reloaded.obj
    a.wait_log(promoted_line("1.0.0", "fraud-score"), 30, "the new model governed", since=mark)
    assert stage_of(cfg, "staging", model="fraud-score") == "1.0.0"
    a.wait_log(lambda o: o.get("level") == "debug", 10, "a debug line (log_level reloaded)",
               since=mark)

    # A new identity needs a restart: refused, and the running configuration keeps governing.
    cfg.write_text(cfg.read_text().replace("node_id: emea-1", "node_id: emea-2", 1))
    mark = a.mark()
    os.kill(a.pid, signal.SIGHUP)
    refused = a.wait_log(lambda o: "reload refused" in str(o.get("msg")), 10,
                         "the refused reload", since=mark)
    assert "node_id" in json.dumps(refused.obj), refused.obj
    drop(releases["fair"], cfg, "1.1.0", model="fraud-score")
    a.wait_log(promoted_line("1.1.0", "fraud-score"), 30, "governing after a refused reload",
               since=mark)
    assert a.proc.poll() is None
    assert a.terminate() == 0
    no_traceback(a)
    # Still signing as emea-1: its records reach the hub under that identity.
    promoted = {(r.subject.model, r.subject.version)
                for r in ledger_records(hub, cfg, "emea-1") if r.event is EventType.PROMOTE}
    assert promoted >= {(MODEL, "1.0.0"), ("fraud-score", "1.0.0"), ("fraud-score", "1.1.0")}


# -- SIGTERM during validation ---------------------------------------------------------------


def test_sigterm_during_validation_exits_0_and_a_restart_governs_what_is_left(
    tmp_path: Path, started_hub: tuple[HubProcess, Trust], releases: dict[str, Path], agents: Agents
) -> None:
    import pyarrow.parquet as pq

    hub, trust = started_hub
    big = tmp_path / "big-validation.parquet"  # each validation takes a while on it
    pq.write_table(credit_table(300_000, seed=12), big)
    cfg = init_node(tmp_path / "nodes", "emea-1", hub, trust, data=big)
    publish(hub, standard_bundle(trust, 1))
    versions = [f"2.0.{i}" for i in range(6)]
    for v in versions:
        drop(releases["fair"], cfg, v)
    a = start_own_group(agents, cfg)
    # The policy worker starts when the engine is built, right before the first version is
    # validated; the checks' libraries load only once a validation runs (the idle daemon maps
    # none: test_agent_idle.py). Both seen: the first validation is under way — imports, then
    # the checks on 300k rows, seconds of work still ahead.
    def validating() -> list[int] | None:
        workers = children(a.pid)
        if workers and any("/numpy" in p for p in mapped_objects(a.pid)):
            return workers
        return None

    workers = wait_until(validating, FIRST_DECISION_S, "the first validation to start")
    assert not decided(cfg), "the first validation finished before it could be interrupted"
    # A decision must not die half-way with the daemon's group: the worker has its own.
    for w in workers:
        assert os.getpgid(w) != a.pid, "the policy worker is in the daemon's process group"
    # Stop it now, as systemd (KillMode=control-group) or Ctrl-C would: the signal reaches
    # the whole process group.
    t = time.monotonic()
    os.killpg(a.pid, signal.SIGTERM)
    rc = a.proc.wait(timeout=30)
    took = time.monotonic() - t
    assert rc == 0, a.errors()
    assert took < 15, f"SIGTERM took {took:.1f} s"
    a.wait_log(lambda o: o.get("msg") == "agent stopped", 2, "the stop line")
    no_traceback(a)

    records = history(hub, cfg, "emea-1")
    check_consistent(records, cfg, set())
    errors = events_of(records, EventType.VALIDATION_ERROR)
    assert not errors, f"the signal became a validation error: {[r.evidence for r in errors]}"
    done = decided(cfg)
    assert all(done[v]["outcome"] == "promoted" for v in done), done
    pending = [v for v in versions if v not in done]
    print(f"SIGTERM: exited after {took:.2f} s; decided {sorted(done)}, pending {pending}")
    assert pending, "SIGTERM did not stop governance before every version was done"

    once = run_warden("agent", "run", "--once", "--config", str(cfg), "--timeout", "60",
                      timeout=120)
    assert "all records acknowledged and proved" in once.stderr, once.stderr[-2000:]
    records = history(hub, cfg, "emea-1")
    check_consistent(records, cfg, set())
    assert not events_of(records, EventType.VALIDATION_ERROR)
    assert set(decided(cfg)) == set(versions)
    assert {r.subject.version for r in events_of(records, EventType.PROMOTE)} == set(versions)
    assert stage_of(cfg, "staging") == versions[-1]


# -- hub refusals ----------------------------------------------------------------------------


def test_a_node_the_hub_does_not_know_keeps_running_and_stops_cleanly(
    tmp_path: Path, started_hub: tuple[HubProcess, Trust], agents: Agents
) -> None:
    hub, trust = started_hub
    d = tmp_path / "nodes" / "ghost-1"  # `warden agent init` only: never enrolled
    run_warden("agent", "init", "--node-id", "ghost-1", "--hub", hub.address, "--ca",
               str(hub.dir / "tls" / "ca.crt"), "--root", str(trust.root), "--dir", str(d))
    cfg = d / "agent.yaml"
    cfg.write_text(cfg.read_text() + "".join(f"{k}: {v}\n" for k, v in FAST_INTERVALS.items()))
    a = agents.start(cfg)
    refusal = a.wait_log(
        lambda o: o.get("level") == "error" and "not enrolled" in json.dumps(o), 30,
        "an error line naming the hub's refusal")
    assert refusal.obj.get("logger", "").startswith("warden.agent"), refusal.obj

    # It keeps running: status.json is rewritten at the end of a pass; two rewrites after
    # the refusal mean passes went on (each one meeting the same refusal).
    status = cfg.parent / "status.json"
    wait_status_rewrites(status, 2, 20, "status.json rewritten twice after the refusal")
    assert a.proc.poll() is None, "the daemon exited on a hub refusal"
    assert json.loads(status.read_text())["node_id"] == "ghost-1"
    assert a.terminate() == 0
    no_traceback(a)


# -- a bundle the engine cannot build --------------------------------------------------------


def test_a_signed_bundle_the_engine_cannot_build_is_rejected_and_a_later_good_one_governs(
    tmp_path: Path, started_hub: tuple[HubProcess, Trust], releases: dict[str, Path], agents: Agents
) -> None:
    hub, trust = started_hub
    cfg = init_node(tmp_path / "nodes", "emea-1", hub, trust, data=releases["data"])
    drop(releases["fair"], cfg, "1.0.0")  # pending: the bundle is tried as soon as it lands
    a = agents.start(cfg)
    a.wait_log(lambda o: o.get("msg") == "agent started", 30, "the start")

    def rejected(version: int) -> AuditRecord | None:
        for r in ledger_records(hub, cfg, "emea-1"):
            if (r.event is EventType.POLICY_REJECTED and r.subject.model == "policy:standard"
                    and r.subject.version == str(version)):
                return r
        return None

    publish(hub, bundle(trust, 1, broken_rego=True))
    r1 = wait_until(while_running(a, lambda: rejected(1)), FIRST_DECISION_S,
                    "policy_rejected for v1 (no compile)")
    assert r1.evidence["kind"] == "bundle" and r1.evidence["reason"], r1.evidence
    assert "decision.rego" in r1.evidence["message"], r1.evidence
    assert a.proc.poll() is None, "the daemon exited on a bundle it cannot build"

    # Fail closed across a restart: the held bundle is not enforced again, nor re-recorded.
    assert a.terminate() == 0
    no_traceback(a)
    a = agents.start(cfg)
    a.wait_log(lambda o: str(o.get("msg")).startswith("model versions wait"), 30,
               "the version waiting for a policy it can enforce")

    publish(hub, bundle(trust, 2, entrypoint="data.warden.nowhere"))
    r2 = wait_until(while_running(a, lambda: rejected(2)), 30,
                    "policy_rejected for v2 (undefined entrypoint)")
    assert "entrypoint" in r2.evidence["message"], r2.evidence
    assert a.proc.poll() is None
    assert stage_of(cfg, "staging") is None
    records = history(hub, cfg, "emea-1")
    assert not events_of(records, EventType.PROMOTE), "promoted under an unusable bundle"
    assert not events_of(records, EventType.VALIDATION_ERROR)
    assert len([r for r in events_of(records, EventType.POLICY_REJECTED, "policy:standard")
                if r.subject.version == "1"]) == 1, "v1's rejection recorded again"

    publish(hub, standard_bundle(trust, 3))
    a.wait_log(promoted_line("1.0.0"), FIRST_DECISION_S, "1.0.0 promoted under v3")
    assert stage_of(cfg, "staging") == "1.0.0"
    assert a.terminate() == 0
    no_traceback(a)
    records = history(hub, cfg, "emea-1")
    [promote] = events_of(records, EventType.PROMOTE)
    assert promote.policy is not None and promote.policy.version == 3
    assert not events_of(records, EventType.VALIDATION_ERROR)


# -- a full outbox ---------------------------------------------------------------------------


def test_a_full_outbox_stops_governance_not_the_daemon_and_it_resumes_once_pruned(
    tmp_path: Path, started_hub: tuple[HubProcess, Trust], releases: dict[str, Path], agents: Agents
) -> None:
    hub, trust = started_hub
    cfg = init_node(tmp_path / "nodes", "emea-1", hub, trust, data=releases["data"],
                    settings={**FAST_INTERVALS, "outbox_max_bytes": 65536})
    publish(hub, standard_bundle(trust, 1))
    a = agents.start(cfg)
    a.wait_log(is_policy_applied(1), 30, "policy v1 applied")

    def drained() -> bool:
        s = agent.outbox.read_status(outbox_path(cfg))
        return s.depth == 0 and s.unproved == 0

    wait_until(drained, 30, "the policy record pushed and proved")

    # The hub goes away; records of the versions governed meanwhile fill the 64 KiB outbox
    # (a decision record with its evidence is ~8 KiB).
    hub.kill()
    versions = [f"3.0.{i}" for i in range(8)]
    for v in versions:
        drop(releases["fair"], cfg, v)
    full = a.wait_log(lambda o: o.get("level") == "error" and "full" in json.dumps(o).lower(),
                      FIRST_DECISION_S, "the outbox-full error")
    assert "storage" in str(full.obj.get("msg")) or "outbox" in json.dumps(full.obj), full.obj
    assert a.proc.poll() is None, "the daemon exited on a full outbox"
    stuck = dict(decided(cfg))
    print(f"governed before the outbox was full: {sorted(stuck)}")
    assert len(stuck) < len(versions)
    # Nothing unrecorded: each decided version's record is in the outbox, the pointer is one
    # of them, and what is not decided has no record and no stage.
    box = outbox_records(cfg)
    check_consistent(box, cfg, set())
    recorded = {r.subject.version for r in events_of(box, EventType.PROMOTE)}
    assert recorded == set(stuck)
    assert stage_of(cfg, "staging") in ({None} | set(stuck))

    hub.start()  # same port: the records drain, are proved and pruned; room returns
    wait_until(while_running(a, lambda: set(decided(cfg)) == set(versions)), 90,
               "every version governed once the outbox had room again")
    wait_until(while_running(a, drained), 60, "the outbox drained")
    assert a.proc.poll() is None
    assert stage_of(cfg, "staging") == versions[-1]
    records = history(hub, cfg, "emea-1")
    check_consistent(records, cfg, set())
    assert {r.subject.version for r in events_of(records, EventType.PROMOTE)} == set(versions)
    errors = events_of(records, EventType.VALIDATION_ERROR)
    assert not errors, "a full outbox is not the model version's fault"
    assert a.terminate() == 0
    no_traceback(a)
