"""``warden agent``: the regional agent — set it up, run it, inspect it, or take one step by hand.

``init``, ``enroll``, ``run`` and ``status`` (the daemon) live in :mod:`agent.node_cli`;
``validate`` (one version, no hub) in :mod:`agent.validate_cli`.

``decide`` is the agent's decision step on its own: verify the policy bundle against the pinned
trust root (threshold, expiry, rollback, digests), verify the approvals, build the policy input
from the checks' evidence, evaluate, and print the decision. Exit 0 when allowed, 1 when
denied, 2 when no decision could be made — a CI/CD gate, like ``warden policy eval``.

The evidence must be about the model version decided on: its lineage (from the manifest
given to ``warden check run``) must name the same ``--model`` and ``--version``, else exit 2;
evidence that names no model is used only with ``--allow-unnamed-evidence``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from trust.cli.argtypes import add_limit_options, evaluation_limits, positive_int
from trust.cli.main import add_command, add_group
from trust.cli.options import add_root_option
from trust.errors import EXIT_USER_ERROR, UsageError, WardenError

__all__ = ["register"]


def _read_json(path: str, *, what: str) -> dict[str, Any]:
    from trust.canonical import loads_object

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read {what} ({exc.strerror})") from exc
    return loads_object(data, what=path)


def _decide(args: argparse.Namespace) -> int:
    # Heavy imports (regopy, jsonschema) only when the command runs.
    from agent.checks.evidence import validate_evidence
    from agent.policy_input import ModelInfo, ProductionStatus, build_policy_input
    from trust.approval import Approval
    from trust.canonical import canonical_json
    from trust.cli._common import check_output_path, write_atomic
    from trust.policy.bundle import PolicyBundle, read_bundle_file
    from trust.policy.engine import PolicyEngine
    from trust.root import TrustRoot
    from trust.timeutil import parse_time, utcnow

    try:
        if args.input_out:
            check_output_path(args.input_out, flag="--input-out")
        now = parse_time(args.now, what="--now") if args.now else utcnow()
        root = TrustRoot.load(args.root, now=now)
        bundle = PolicyBundle.from_envelope(
            read_bundle_file(args.bundle), root, last_version=args.last_version, now=now
        )
        evidence = _read_json(args.evidence, what="evidence")
        validate_evidence(evidence)
        approvals = []
        for path in args.approval or []:
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                raise UsageError(f"{path}: cannot read approval ({exc.strerror})") from exc
            approvals.append(Approval.from_envelope(data, root, what=path))
        production = (
            ProductionStatus.from_dict(
                _read_json(args.production, what="production status"), what=args.production
            )
            if args.production
            else None
        )
        if args.n_features is not None and args.n_features < 0:
            raise UsageError(f"--n-features must be ≥ 0, got {args.n_features}")
        model = ModelInfo(
            name=args.model,
            version=args.version,
            stage=args.stage,
            n_features=args.n_features,
            artifact_sha256=_artifact_digest(args, evidence),
        )
        policy_input = build_policy_input(
            evidence,
            model,
            now=now,
            approvals=approvals,
            production=production,
            evidence_source=args.evidence,
            allow_unnamed_evidence=args.allow_unnamed_evidence,
        )
        if args.input_out:
            write_atomic(args.input_out, canonical_json(policy_input) + b"\n",
                         flag="--input-out")
        with PolicyEngine(bundle, limits=evaluation_limits(args)) as engine:
            decision = engine.evaluate(policy_input)
    except WardenError as exc:
        # A gate must tell "denied" (1) from "could not decide" (2); neither may pass.
        print(f"error: {exc.diagnostics()}", file=sys.stderr)
        return EXIT_USER_ERROR
    if args.format == "json":
        print(json.dumps(decision.to_dict(), indent=2))
    else:
        verdict = "ALLOW" if decision.allow else "DENY"
        print(
            f"{verdict}  {model.name} v{model.version} → {model.stage}  "
            f"(policy {bundle.manifest.name} v{bundle.manifest.version}, "
            f"decision {decision.decision_id})"
        )
        for v in decision.violations:
            print(f"  ✗ [{v.severity}] {v.rule}: {v.message}")
        for w in decision.warnings:
            print(f"  ! {w}")
    return 0 if decision.allow else 1


def _artifact_digest(args: argparse.Namespace, evidence: dict[str, Any]) -> str | None:
    if args.artifact_sha256:
        digest = str(args.artifact_sha256).lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise UsageError(
                f"--artifact-sha256 {args.artifact_sha256!r} is not a SHA-256 hex digest"
            )
        return digest
    lineage = evidence.get("lineage")
    if isinstance(lineage, dict) and isinstance(lineage.get("model_sha256"), str):
        return str(lineage["model_sha256"])
    return None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``warden agent``."""
    from agent.node_cli import register_node_commands

    group = add_group(subparsers, "agent", "the regional agent: set up, run, inspect, decide",
                      __doc__)
    register_node_commands(group)
    from agent.validate_cli import register_validate_command

    register_validate_command(group)
    decide = add_command(
        group,
        "decide",
        _decide,
        "decide on a model version from its evidence under a verified policy bundle",
        "warden agent decide --evidence emea.json --bundle standard-v2.bundle --root root.json "
        "--model credit-risk --version 7 --stage production --approval risk.approval",
    )
    decide.add_argument("--evidence", required=True, metavar="FILE", help="from 'warden check run'")
    decide.add_argument("--bundle", required=True, metavar="FILE", help="signed policy bundle")
    add_root_option(decide, required=True, help="pinned trust root")
    decide.add_argument(
        "--last-version", type=positive_int, metavar="N",
        help="last accepted bundle version (rollback)"
    )
    decide.add_argument("--model", required=True, metavar="NAME")
    decide.add_argument("--version", required=True, metavar="VERSION")
    decide.add_argument("--stage", required=True, metavar="STAGE", help="e.g. staging, production")
    decide.add_argument("--n-features", type=int, metavar="N")
    decide.add_argument("--artifact-sha256", metavar="HEX", help="default: evidence lineage")
    decide.add_argument(
        "--approval", action="append", metavar="FILE", help="signed approval envelope; repeatable"
    )
    decide.add_argument(
        "--production", metavar="FILE", help="JSON production status (rollback rules)"
    )
    decide.add_argument("--now", metavar="TIME", help="decide as of this RFC 3339 time")
    decide.add_argument("--input-out", metavar="FILE", help="also write the policy input here")
    decide.add_argument(
        "--allow-unnamed-evidence",
        action="store_true",
        help="decide even though the evidence's lineage names no model or version (no "
        "--manifest at check time); you vouch it is about --model/--version. Evidence naming "
        "another model or version is refused regardless",
    )
    decide.add_argument("--format", choices=("text", "json"), default="text")
    add_limit_options(decide)
