"""The agent daemon: idle memory, publish → applied latency, and the decision it takes.

One run, real processes (``tests/agent/daemon_world.py``): a ``warden hub serve`` process on
SQLite, a node made by ``warden agent init`` / ``warden agent enroll`` with one model
configured and no version of it, and ``warden agent run`` with its JSON log on a pipe.

* **Idle RSS**: ``VmRSS`` of the daemon (``/proc/PID/status``) once it has started and gone
  through several loop passes with nothing to do — before any policy, and again holding the
  standard policy; the policy worker child's RSS is shown separately if one runs (it starts
  with the first decision, so idle it should not).
* **Publish → applied**: N publications of the standard bundle (each a new version), timed
  from the return of the compliance client's ``publish`` call to the moment this process
  reads the daemon's ``policy … applied`` log line (after the agent verified the bundle and
  committed its ``policy_applied`` record). The peer is OPA's documented default bundle
  polling (``min_delay_seconds: 60``, ``max_delay_seconds: 120``): a bundle lands after a
  uniformly random 60–120 s wait, 90 s on average — a configuration figure, not measured here.
* **Decision**: ``bench/agent_decision.py``'s ``measure_decision`` (the standard bundle on the
  demo's evidence, with and without its input projection).

    .venv/bin/python bench/agent.py            # 30 publications, 1000 decisions
    .venv/bin/python bench/agent.py --quick    # 10 publications, 200 decisions

Goals: idle RSS ≤ 100 MB, publish → applied p99 ≤ 1 s, decision median ≤ 5 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
# Run as a script, sys.path[0] is bench/, where this very file would shadow the ``agent``
# package: the repository takes its place, and bench/ (for agent_decision) goes last.
sys.path[0] = str(REPO)
sys.path.append(str(BENCH))

from agent_decision import measure_decision  # noqa: E402

from tests.agent.daemon_world import (  # noqa: E402
    AgentProcess,
    children,
    init_node,
    is_policy_applied,
    make_hub,
    make_trust,
    rss_kib,
    standard_bundle,
    start_agent,
    wait_status_rewrites,
)

RSS_GOAL_MB = 100.0
APPLY_GOAL_S = 1.0
DECISION_GOAL_MS = 5.0
OPA_POLL_S = (60.0, 120.0)


def _mb(kib: int) -> float:
    return kib * 1024 / 1e6


def _idle(agent: AgentProcess, status: Path, passes: int = 3) -> None:
    """Wait until the daemon rewrote ``status.json`` ``passes`` times (it does so every
    couple of seconds of loop passes): it is past start-up and has had nothing to do."""
    wait_status_rewrites(status, passes, 30, "the daemon's status.json rewrites")
    if agent.proc.poll() is not None:
        raise SystemExit(f"the agent exited {agent.proc.returncode}")


def _percentile(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * q))]


def measure_daemon(publications: int) -> dict[str, object]:
    """Idle RSS (before a policy, holding one) and publish → applied latencies."""
    with tempfile.TemporaryDirectory(prefix="warden-bench-agent-") as tmp:
        d = Path(tmp)
        trust = make_trust(d / "trust")
        hub = make_hub(d, trust)
        hub.start()
        agent = None
        try:
            data = d / "validation.csv"
            data.write_text("repaid,sex,income\n1,F,10\n0,M,20\n")
            config = init_node(d / "nodes", "bench-1", hub, trust, data=data)
            agent = start_agent(config)
            agent.wait_log(lambda o: o.get("msg") == "agent started", 30, "the agent start")
            status = config.parent / "status.json"
            _idle(agent, status)
            rss_no_policy = rss_kib(agent.pid)
            with hub.client("compliance") as compliance:
                compliance.publish(standard_bundle(trust, 1))
                agent.wait_log(is_policy_applied(1), 10, "policy v1 applied")
                _idle(agent, status)
                rss_policy = rss_kib(agent.pid)
                workers = {pid: rss_kib(pid) for pid in children(agent.pid)}
                latencies = []
                for version in range(2, publications + 2):
                    envelope = standard_bundle(trust, version)
                    mark = agent.mark()
                    compliance.publish(envelope)
                    returned = time.monotonic()
                    line = agent.wait_log(is_policy_applied(version), 10,
                                          f"policy v{version} applied", since=mark)
                    latencies.append(line.at - returned)
            rss_after = rss_kib(agent.pid)
            code = agent.terminate()
            if code != 0:
                raise SystemExit(f"the agent exited {code} on SIGTERM")
        finally:
            if agent is not None:
                agent.kill()
            hub.kill()
    return {"rss_no_policy_kib": rss_no_policy, "rss_policy_kib": rss_policy,
            "rss_after_kib": rss_after, "workers_kib": workers, "latencies_s": latencies}


def main() -> int:
    """Run both measurements and print them against the goals."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 publications, 200 decisions")
    ap.add_argument("--publications", type=int, help="bundle versions published (default 30)")
    ap.add_argument("--decisions", type=int, help="decisions per side (default 1000)")
    args = ap.parse_args()
    n = args.publications or (10 if args.quick else 30)
    runs = args.decisions or (200 if args.quick else 1000)

    daemon = measure_daemon(n)
    lat = daemon["latencies_s"]
    assert isinstance(lat, list)
    p50, p99 = statistics.median(lat), _percentile(lat, 0.99)
    idle_mb = _mb(daemon["rss_policy_kib"])  # type: ignore[arg-type]
    workers = daemon["workers_kib"]
    assert isinstance(workers, dict)
    print("agent daemon benchmark: warden agent run, one node, a warden hub serve process")
    print(f"  idle RSS, no policy yet:          {_mb(daemon['rss_no_policy_kib']):7.1f} MB")  # type: ignore[arg-type]
    print(f"  idle RSS, holding standard v1:    {idle_mb:7.1f} MB")
    print("  policy worker child:              " + (
        ", ".join(f"pid {p} {_mb(k):.1f} MB" for p, k in workers.items()) if workers
        else "none (starts with the first decision)"))
    print(f"  RSS after {n} publications:      {_mb(daemon['rss_after_kib']):7.1f} MB")  # type: ignore[arg-type]
    print(f"  publish → policy_applied over {n} versions: p50 {p50 * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms, max {max(lat) * 1000:.1f} ms")
    opa_mean = sum(OPA_POLL_S) / 2
    print(f"  peer: OPA default bundle polling {OPA_POLL_S[0]:g}–{OPA_POLL_S[1]:g} s "
          f"(mean {opa_mean:g} s, not measured): {opa_mean / p50:,.0f}x the Warden p50")

    r = measure_decision(runs)
    dec = r["projected"]
    print(f"  decision (bench/agent_decision.py, {runs} per side): median "
          f"{dec['median_ms']:.3f} ms, p99 {dec['p99_ms']:.3f} ms with the projection; "
          f"{r['unprojected']['median_ms']:.3f} ms without ({r['ratio']:.2f}x)")

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print(f"goal: idle RSS ≤ {RSS_GOAL_MB:g} MB — {idle_mb:.1f} MB: "
          f"{verdict(idle_mb <= RSS_GOAL_MB)}")
    print(f"goal: publish → applied p99 ≤ {APPLY_GOAL_S:g} s — {p99:.3f} s: "
          f"{verdict(p99 <= APPLY_GOAL_S)}")
    print(f"goal: decision median ≤ {DECISION_GOAL_MS:g} ms — {dec['median_ms']:.3f} ms: "
          f"{verdict(dec['median_ms'] <= DECISION_GOAL_MS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
