"""``warden agent init | enroll | run | status``: setting up and running a node's daemon.

* ``init --node-id ID --hub HOST:PORT --ca ca.crt --root root.json --dir NODE_DIR`` writes a
  commented ``agent.yaml``, a 0600 node key, the pinned root and CA; prints the key id.
* ``enroll --config agent.yaml --token-file T`` enrolls with the one-time token read from a
  file (never from the command line, where ``ps`` shows it).
* ``run --config agent.yaml [--once]`` runs the daemon (JSON logs on stderr) until SIGTERM;
  ``--once`` processes everything pending, pushes, waits for acknowledgement and inclusion
  proofs, and exits 0 — or 1 when records are left unacknowledged or unproved (cron, CI).
* ``status --config agent.yaml [--json]``: policy and root in force, models and stages, outbox
  depth, last hub contact, last verified checkpoint; read-only (works while the daemon runs).

Exit codes: 0 success, 1 ``--once`` left work undone or the hub misbehaved, 2 a user error
(bad config, a second agent on the same state directory, a missing file), with one clear
line — a JSON log line for ``run``, an ``error:`` line for the others.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from typing import Any

from trust.cli.argtypes import seconds
from trust.cli.main import add_command
from trust.errors import EXIT_USER_ERROR, WardenError

__all__ = ["register_node_commands"]


def _config(args: argparse.Namespace) -> Any:
    from agent.config import load_agent_config

    return load_agent_config(args.config, overrides=_overrides(args))


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {"log_level": getattr(args, "log_level", None)}


def _init(args: argparse.Namespace) -> int:
    from agent.node import init_node
    from trust.cli._common import read_passphrase

    result = init_node(args.dir, node_id=args.node_id, hub=args.hub, root=args.root,
                       ca=args.ca, insecure=args.insecure, passphrase=read_passphrase(args))
    print(f"node {args.node_id}: wrote {result.config} and {result.directory / 'node.key'}")
    print(f"key id {result.key_id}")
    print(f"next: warden agent enroll --config {result.config} --token-file TOKEN_FILE")
    return 0


def _enroll(args: argparse.Namespace) -> int:
    from agent.node import enroll_node, read_token

    config = _config(args)
    outcome = enroll_node(config, read_token(args.token_file))
    print(f"node {config.node_id}: enrolled (ledger entry {outcome.index}); hub log origin "
          f"{outcome.origin!r} pinned")
    return 0


def _run(args: argparse.Namespace) -> int:
    from trust.logs import setup_logging

    setup_logging(args.log_level or "info")
    log = logging.getLogger("warden.agent")
    # A SIGHUP while starting (a log rotation, say) must not kill the process by default.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        from agent.daemon import Agent, reloader

        config = _config(args)
        setup_logging(config.log_level)
        agent = Agent(config, reload=reloader(args.config, _overrides(args)))
        agent.open()
    except WardenError as exc:
        log.error("agent cannot start", extra={"fields": {"error": exc.diagnostics()}})
        return EXIT_USER_ERROR
    signal.signal(signal.SIGTERM, lambda *_: agent.request_stop())
    signal.signal(signal.SIGINT, lambda *_: agent.request_stop())
    signal.signal(signal.SIGHUP, lambda *_: agent.request_reload())
    try:
        if args.once:
            result = agent.run_once(args.timeout)
            level = logging.INFO if result.ok else logging.ERROR
            log.log(level, "run --once finished: " + result.message,
                    extra={"fields": {"pending": result.pending, "unproved": result.unproved}})
            return 0 if result.ok else 1
        return agent.run_forever()
    finally:
        agent.close()


def _status(args: argparse.Namespace) -> int:
    from agent.status import collect_status, render_status

    status = collect_status(_config(args))
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        sys.stdout.write(render_status(status))
    return 0


def register_node_commands(group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``init``, ``enroll``, ``run`` and ``status`` to the ``warden agent`` group."""
    init = add_command(
        group, "init", _init, "create a node directory: agent.yaml, node key, pinned root",
        "warden agent init --node-id emea-1 --hub hub.example.com:7443 --ca ca.crt "
        "--root root.json --dir /var/lib/warden",
    )
    init.add_argument("--node-id", required=True, metavar="ID")
    init.add_argument("--hub", required=True, metavar="HOST:PORT")
    init.add_argument("--ca", metavar="FILE", help="the hub's CA certificate (tls/ca.crt)")
    init.add_argument("--root", required=True, metavar="FILE", help="trust root to pin")
    init.add_argument("--dir", required=True, metavar="NODE_DIR")
    init.add_argument("--insecure", action="store_true",
                      help="plaintext gRPC (loopback hubs only: tests, demos)")
    init.add_argument("--passphrase-file", metavar="FILE",
                      help="encrypt node.key with this passphrase (or WARDEN_KEY_PASSPHRASE)")

    enroll = add_command(
        group, "enroll", _enroll, "enroll the node at the hub with a one-time token",
        "warden agent enroll --config /var/lib/warden/agent.yaml --token-file emea-1.token",
    )
    enroll.add_argument("--config", required=True, metavar="FILE")
    enroll.add_argument("--token-file", required=True, metavar="FILE",
                        help="file holding the token from 'warden hub token create'")

    run = add_command(
        group, "run", _run, "run the agent daemon (until SIGTERM; --once for cron and CI)",
        "warden agent run --config /var/lib/warden/agent.yaml",
    )
    run.add_argument("--config", required=True, metavar="FILE")
    run.add_argument("--once", action="store_true",
                     help="process everything pending, push, wait for acks and proofs, exit")
    run.add_argument("--timeout", type=seconds(), default=60.0, metavar="SECONDS",
                     help="with --once: how long to wait for the hub (default 60)")
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"))

    status = add_command(
        group, "status", _status, "show what the node enforces and what it still holds",
        "warden agent status --config /var/lib/warden/agent.yaml --json",
    )
    status.add_argument("--config", required=True, metavar="FILE")
    status.add_argument("--json", action="store_true", help="machine-readable output")
