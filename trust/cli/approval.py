"""``warden approval``: sign and verify human approvals of a model version.

An approval is a DSSE envelope (:mod:`trust.approval`) signed by keys of an
``approver:<role>`` role in the trust root; agents count it only once it verifies against that
role's threshold, and only for the exact subject (``model:version``) it names.
"""

from __future__ import annotations

import argparse
import json

from trust.cli._common import check_output_path, load_signing_keys, write_atomic
from trust.cli.main import add_command, add_group
from trust.cli.options import add_out_option, add_root_option, add_signing_options
from trust.errors import UsageError

__all__ = ["register"]


def _create(args: argparse.Namespace) -> int:
    from trust import dsse
    from trust.approval import APPROVAL_PAYLOAD_TYPE, build_approval
    from trust.timeutil import format_time, parse_time, utcnow

    check_output_path(args.out)
    if args.decision not in ("approve", "reject"):
        raise UsageError(f"--decision must be approve or reject, got {args.decision!r}")
    when = parse_time(args.time, what="--time") if args.time else utcnow()
    payload = build_approval(
        role=args.role,
        subject=args.subject,
        decision=args.decision,
        time=format_time(when),
        reason=args.reason or "",
    )
    env = dsse.sign(APPROVAL_PAYLOAD_TYPE, payload, load_signing_keys(args.key, args))
    write_atomic(args.out, env.to_json() + b"\n", flag="--out")
    print(f"wrote {args.out}: {args.decision} {args.subject} as {args.role}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from trust.approval import Approval
    from trust.root import TrustRoot
    from trust.timeutil import format_time

    root = TrustRoot.load(args.root)
    try:
        data = Path(args.approval).read_bytes()
    except OSError as exc:
        raise UsageError(f"{args.approval}: cannot read ({exc.strerror})") from exc
    a = Approval.from_envelope(data, root, what=args.approval)
    print(
        json.dumps(
            {
                "role": a.role,
                "subject": a.subject,
                "decision": a.decision,
                "reason": a.reason,
                "time": format_time(a.time),
                "signers": sorted(a.signers),
                "digest": a.digest,
            },
            indent=2,
        )
    )
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``warden approval``."""
    group = add_group(
        subparsers, "approval", "sign and verify approvals of model versions", __doc__
    )
    create = add_command(
        group,
        "create",
        _create,
        "sign an approval (or rejection) of a model version as an approver role",
        "warden approval create --role risk_officer --subject credit-risk:7 --key risk.key "
        "--reason 'bias reviewed, ticket 42' --out risk.approval",
    )
    create.add_argument("--role", required=True, help="approver role name, without 'approver:'")
    create.add_argument("--subject", required=True, metavar="MODEL:VERSION")
    create.add_argument("--decision", default="approve", help="approve (default) or reject")
    create.add_argument("--reason", help="free text kept in the signed payload")
    create.add_argument("--time", metavar="TIME", help="RFC 3339 time (default: now)")
    add_signing_options(create)
    add_out_option(create)

    verify = add_command(
        group,
        "verify",
        _verify,
        "verify an approval against the trust root's approver role",
        "warden approval verify risk.approval --root root.json",
    )
    verify.add_argument("approval", metavar="FILE")
    add_root_option(verify, required=True)
