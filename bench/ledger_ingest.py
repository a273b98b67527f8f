"""Ledger ingest over loopback gRPC with TLS: records/s and batch latency, SQLite and PostgreSQL.

Several agent *processes* each enroll a node, pre-sign their records and connect (signing is
the agent's cost, not the hub's, and none of it overlaps the timed phase), then all push their
records in batches at once to ``warden hub serve`` processes over TLS with per-call node
signatures — the real path. Reported per configuration: records/s over the whole push,
p50/p99 batch latency, and the CPU time per record of the hub (its main process and its
signature-verifier processes), of the agents, and how busy the machine was (when the machine
is saturated, records/s is about cores / CPU per record). Beside it, measured in the same run,
the physical limit: raw ed25519 verifications per second on one core and on all cores (every
record costs the hub one verify, plus one per call for the node signature).

Configurations: SQLite with 1 and 2 hub processes (sharing the file), PostgreSQL with 1 and 2
(skipped with a message when ``initdb`` is absent). Each hub process runs the default
``verify_workers`` (one verifier process per core); with 2 hub processes on one machine the
bench gives each half the cores, as an operator would.

    .venv/bin/python bench/ledger_ingest.py            # full run
    .venv/bin/python bench/ledger_ingest.py --quick    # a short run
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from hub.config import load_config  # noqa: E402
from hub.state import create_enrollment_token  # noqa: E402
from hub.tls import init_hub  # noqa: E402
from protos.client import HubClient, NodeIdentity  # noqa: E402
from trust import keys  # noqa: E402
from trust.canonical import sha256_hex  # noqa: E402
from trust.record import GENESIS_PREV, Subject, build_record, sign_record  # noqa: E402
from trust.root import Role, RootMetadata  # noqa: E402
from trust.timeutil import utcnow  # noqa: E402

GOAL = 5000.0


def verify_rate(seconds: float) -> float:
    """ed25519 verifications per second on one core (cryptography / OpenSSL)."""
    key = keys.generate()
    msg = b"x" * 400  # about one audit record's PAE
    sig = key.sign(msg)
    pub = key.public
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            pub.verify(sig, msg)
        n += 200
    return n / (time.perf_counter() - start)


def _verify_worker(seconds: float, q: mp.Queue) -> None:  # type: ignore[type-arg]
    q.put(verify_rate(seconds))


def verify_rate_all_cores(seconds: float) -> float:
    """Summed verify rate with one process per core."""
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    n = os.cpu_count() or 1
    procs = [mp.Process(target=_verify_worker, args=(seconds, q)) for _ in range(n)]
    for p in procs:
        p.start()
    total = sum(q.get() for _ in procs)
    for p in procs:
        p.join()
    return total


def _sign_records(node_id: str, key: keys.SigningKey, n: int) -> list[bytes]:
    out = []
    prev = GENESIS_PREV
    now = utcnow()
    for seq in range(1, n + 1):
        payload = build_record(
            node_id=node_id, seq=seq, prev=prev, time=now, event="validation",
            subject=Subject("credit-model", str(seq), sha256_hex(b"artifact")),
            evidence={"accuracy": 0.91, "auc": 0.88, "rows": 10_000,
                      "groups": {"a": {"tpr": 0.81}, "b": {"tpr": 0.79}}},
        )
        env = sign_record(payload, key)
        out.append(env)
        prev = sha256_hex(env)
    return out


def _agent(node_id: str, seed: bytes, token: str, targets: list[str], ca: bytes, n: int,
           batch: int, go: Any, q: mp.Queue) -> None:  # type: ignore[type-arg]
    key = keys.SigningKey.from_seed(seed)
    records = _sign_records(node_id, key, n)
    with HubClient(targets[0], ca_cert=ca) as anon:
        anon.enroll(node_id, key, token)
    clients = [HubClient(t, ca_cert=ca, node=NodeIdentity(node_id, key), timeout=60)
               for t in targets]
    for c in clients:
        c.wait_ready()
    q.put(("ready", node_id))
    go.wait()  # every agent has signed its records and connected: push together
    latencies = []
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        c = clients[(i // batch) % len(clients)]
        b0 = time.perf_counter()
        c.append(records[i : i + batch])
        latencies.append(time.perf_counter() - b0)
    elapsed = time.perf_counter() - t0
    for c in clients:
        c.close()
    q.put(("done", node_id, n, elapsed, latencies, t0, time.perf_counter()))


def _world(tmp: Path, database: str | None) -> tuple[Path, bytes]:
    root_key, hub_key, pol = keys.generate(), keys.generate(), keys.generate()
    meta = RootMetadata(
        version=1, expires=utcnow() + timedelta(days=30),
        keys={k.key_id: k.public for k in (root_key, hub_key, pol)},
        roles={"root": Role((root_key.key_id,), 1), "policy": Role((pol.key_id,), 1),
               "hub": Role((hub_key.key_id,), 1)},
    )
    (tmp / "root.json").write_bytes(meta.envelope([root_key]).to_json())
    keys.save_private(hub_key, tmp / "hub-signer.key")
    res = init_hub(tmp / "hub", origin="bench.warden/hub", listen="127.0.0.1:0",
                   hub_key=tmp / "hub-signer.key", trust_root=tmp / "root.json",
                   database=database)
    return res.config, res.ca_cert.read_bytes()


def _serve(config: Path, database: str | None, tmp: Path, i: int,
           hubs: int = 1) -> tuple[subprocess.Popen, int]:  # type: ignore[type-arg]
    port_file = tmp / f"port{i}"
    env = dict(os.environ)
    if hubs > 1:  # hub processes on one machine share its cores
        env["WARDEN_HUB_VERIFY_WORKERS"] = str(max(1, (os.cpu_count() or 1) // hubs))
    args = [sys.executable, "-m", "trust.cli.main", "hub", "serve", "--config", str(config),
            "--listen", "127.0.0.1:0", "--port-file", str(port_file), "--log-level", "warning"]
    if database:
        args += ["--database", database]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, env=env,
                            stderr=open(tmp / f"hub{i}.log", "w"))  # noqa: SIM115
    deadline = time.time() + 60
    while not port_file.exists():
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"hub failed to start: {(tmp / f'hub{i}.log').read_text()}")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


def run_config(label: str, database: str | None, hubs: int, agents: int, per_agent: int,
               batch: int) -> dict[str, float]:
    """One measured run; returns records/s and latency percentiles (ms)."""
    tmp = Path(tempfile.mkdtemp(prefix="warden-bench-"))
    try:
        config, ca = _world(tmp, database)
        procs = [_serve(config, database, tmp, i, hubs) for i in range(hubs)]
        targets = [f"127.0.0.1:{port}" for _, port in procs]
        cfg = load_config(config, env={}, overrides={"database": database})
        q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        workers = []
        # Agents sign their records and connect first; all start pushing once all are ready,
        # so no signing overlaps the timed phase.
        go = mp.Event()
        for a in range(agents):
            node_id = f"bench-{a}"
            token = create_enrollment_token(cfg, node_id, "1h")[0]
            ts = targets[a % len(targets):] + targets[: a % len(targets)]
            p = mp.Process(target=_agent, args=(node_id, os.urandom(32), token, ts, ca,
                                                per_agent, batch, go, q))
            p.start()
            workers.append(p)
        for _ in range(agents):
            if q.get(timeout=600)[0] != "ready":
                raise SystemExit("an agent failed")
        pids = [proc.pid for proc, _ in procs]
        agent_pids = [p.pid for p in workers if p.pid is not None]
        cpu0, agents0, busy0 = _tree_cpu(pids), _tree_cpu(agent_pids), _machine_busy()
        go.set()
        results = [q.get(timeout=600) for _ in range(agents)]
        hub_cpu = _tree_cpu(pids) - cpu0
        agent_cpu = _tree_cpu(agent_pids) - agents0
        busy = _machine_busy() - busy0
        for p in workers:
            p.join()
        first = min(r[5] for r in results)
        last = max(r[6] for r in results)
        total = sum(r[2] for r in results)
        lat = sorted(x for r in results for x in r[4])
        for proc, _ in procs:
            proc.terminate()
            proc.wait(timeout=30)
        return {
            "records_per_s": total / (last - first),
            "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
            "records": total,
            "hub_cpu_us": hub_cpu / total * 1e6 if hub_cpu >= 0 else float("nan"),
            "agent_cpu_us": agent_cpu / total * 1e6 if agent_cpu >= 0 else float("nan"),
            "busy_cores": busy / (last - first) if busy >= 0 else float("nan"),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _tree_cpu(pids: list[int]) -> float:
    """CPU seconds used so far by the hub processes and their children (-1: no /proc)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    try:
        stats = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                stats[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    except OSError:
        return -1.0
    for pid, (ppid, ticks) in stats.items():
        if pid in pids or ppid in pids:
            total += ticks
    return total / tick


def _machine_busy() -> float:
    """Non-idle CPU seconds of the whole machine so far (-1 without /proc)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return -1.0
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _postgres() -> tuple[object, str] | None:
    if shutil.which("initdb") is None:
        return None
    spec = importlib.util.spec_from_file_location("warden_tests_pg", REPO / "tests" / "pg.py")
    if spec is None or spec.loader is None:
        return None
    pg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pg)
    server = pg.PostgresServer()
    return server, pg


def _cpu_line(r: dict[str, float]) -> None:
    print(f"    CPU per record: hub {r['hub_cpu_us']:.0f} µs (all its processes), agents "
          f"{r['agent_cpu_us']:.0f} µs; machine busy {r['busy_cores']:.2f} of "
          f"{os.cpu_count()} cores", flush=True)


def main() -> int:
    """Run the benchmark and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short run")
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--records", type=int, help="records per agent")
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    per_agent = args.records or (1000 if args.quick else 5000)
    secs = 0.5 if args.quick else 2.0

    v1 = verify_rate(secs)
    vall = verify_rate_all_cores(secs)
    print(f"ed25519 verify: {v1:,.0f}/s on one core, {vall:,.0f}/s on {os.cpu_count()} cores "
          "(each record costs the hub one verify)")
    print(f"agents: {args.agents} processes, batch {args.batch}, {per_agent} records each, "
          "TLS, per-call node signatures")
    rows = []
    for hubs in (1, 2):
        r = run_config("sqlite", None, hubs, args.agents, per_agent, args.batch)
        rows.append((f"SQLite, {hubs} hub process{'es' if hubs > 1 else ''}", r))
        print(f"  {rows[-1][0]:<32} {r['records_per_s']:>8,.0f} records/s   "
              f"p50 {r['p50_ms']:6.1f} ms   p99 {r['p99_ms']:6.1f} ms   "
              f"({r['records_per_s'] / v1:.2f}× one core's verify rate)", flush=True)
        _cpu_line(r)
    if not args.no_postgres:
        pg = _postgres()
        if pg is None:
            print("  PostgreSQL: skipped (initdb not found)")
        else:
            server, module = pg
            try:
                for hubs in (1, 2):
                    url = module.fresh_database(server)
                    r = run_config("postgres", url, hubs, args.agents, per_agent, args.batch)
                    rows.append((f"PostgreSQL, {hubs} hub process{'es' if hubs > 1 else ''}", r))
                    print(f"  {rows[-1][0]:<32} {r['records_per_s']:>8,.0f} records/s   "
                          f"p50 {r['p50_ms']:6.1f} ms   p99 {r['p99_ms']:6.1f} ms   "
                          f"({r['records_per_s'] / v1:.2f}× one core's verify rate)", flush=True)
                    _cpu_line(r)
            finally:
                server.stop()  # type: ignore[attr-defined]
    best_sqlite = max(r["records_per_s"] for label, r in rows if label.startswith("SQLite"))
    print(f"goal ≥ {GOAL:,.0f} records/s on SQLite: best {best_sqlite:,.0f} "
          f"({'met' if best_sqlite >= GOAL else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
