"""``warden agent status``: what a node enforces and what it still holds, read-only.

Reads, without taking the outbox lock (so it works beside a running daemon): the pinned root,
the last good bundle (re-verified against that root; an expired one is shown as expired), the
registry's models and stage pointers, the outbox head and depth, the daemon's ``status.json``
(last hub contact) and the witness state (pinned origin, last verified checkpoint, halt).
Nothing here is trusted for a decision: it is a report. A part that cannot be read is shown
with its error instead of failing the whole report.
"""

from __future__ import annotations

from typing import Any

from agent.config import AgentConfig
from trust.errors import WardenError
from trust.timeutil import format_time, utcnow

__all__ = ["collect_status", "render_status"]


def _guard(fn: Any) -> Any:
    try:
        return fn()
    except WardenError as exc:
        return {"error": exc.message}


def _policy(config: AgentConfig) -> dict[str, Any]:
    import logging

    from agent.policy_state import PolicyState

    state = PolicyState.load(config, now=utcnow(), log=logging.getLogger("warden.agent.status"))
    root, bundle = state.root, state.bundle
    out: dict[str, Any] = {"root_version": root.version,
                           "root_expires": format_time(root.expires)}
    if bundle is None:
        out["policy"] = None
        return out
    expires = bundle.manifest.expires
    out["policy"] = {"name": bundle.name, "version": bundle.version,
                     "expires": format_time(expires), "expired": expires <= utcnow()}
    return out


def _models(config: AgentConfig) -> list[dict[str, Any]]:
    from agent.registry import DirectoryRegistry

    registry = DirectoryRegistry(config.registry)
    return [{"name": m.name, "versions": list(registry.versions(m.name)),
             "stages": registry.stages(m.name)} for m in config.models]


def _outbox(config: AgentConfig) -> dict[str, Any]:
    from agent.outbox import read_status

    if not config.outbox_path.exists():
        return {"depth": 0, "unproved": 0, "head_seq": 0}
    s = read_status(config.outbox_path)
    return {"depth": s.depth, "unproved": s.unproved, "head_seq": s.head.seq,
            "acknowledged_seq": s.acknowledged_seq}


def _witness(config: AgentConfig) -> dict[str, Any]:
    from agent.witness import Witness

    w = Witness.load(config.witness_path, origin=config.hub_origin)
    last = w.last
    return {"origin": w.origin, "halted": w.halted, "halt_reason": w.halt_reason,
            "last_checkpoint": None if last is None else {"size": last.size,
                                                          "root_hash": last.root_hash.hex()}}


def collect_status(config: AgentConfig) -> dict[str, Any]:
    """The whole report as a JSON-ready dict (see the module docstring)."""
    from agent.daemon import read_status_file

    daemon = read_status_file(config.state_dir) or {}
    return {
        "node_id": config.node_id,
        "hub": config.hub,
        "policy": _guard(lambda: _policy(config)),
        "models": _guard(lambda: _models(config)),
        "outbox": _guard(lambda: _outbox(config)),
        "witness": _guard(lambda: _witness(config)),
        "last_hub_contact": daemon.get("last_hub_contact"),
        "daemon_updated": daemon.get("updated"),
    }


def render_status(s: dict[str, Any]) -> str:
    """The report as text for a terminal."""
    lines = [f"node {s['node_id']} → hub {s['hub']}"]
    pol = s["policy"]
    if "error" in pol:
        lines.append(f"  policy: cannot read ({pol['error']})")
    else:
        p = pol["policy"]
        state = "none received yet" if p is None else (
            f"{p['name']} v{p['version']} (expires {p['expires']}"
            + (", EXPIRED: no promotion)" if p["expired"] else ")"))
        lines.append(f"  policy: {state}")
        lines.append(f"  trust root: v{pol['root_version']} (expires {pol['root_expires']})")
    models = s["models"]
    if isinstance(models, dict):
        lines.append(f"  models: cannot read ({models['error']})")
    else:
        for m in models:
            stages = ", ".join(f"{k}={v}" for k, v in sorted(m["stages"].items())) or "none"
            lines.append(f"  model {m['name']}: {len(m['versions'])} version(s); "
                         f"stages: {stages}")
    ob = s["outbox"]
    lines.append("  outbox: " + (f"cannot read ({ob['error']})" if "error" in ob else
                                 f"{ob['depth']} to push, {ob['unproved']} to prove, "
                                 f"last seq {ob['head_seq']}"))
    lines.append(f"  last hub contact: {s['last_hub_contact'] or 'never'}")
    w = s["witness"]
    if "error" in w:
        lines.append(f"  witness: cannot read ({w['error']})")
    else:
        cp = w["last_checkpoint"]
        seen = "none" if cp is None else f"size {cp['size']} of {w['origin']}"
        lines.append(f"  last verified checkpoint: {seen}")
        if w["halted"]:
            lines.append(f"  HUB MISBEHAVIOUR: {w['halt_reason']} (pruning stopped)")
    return "\n".join(lines) + "\n"
