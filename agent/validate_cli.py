"""``warden agent validate``: the daemon's validation of one model version, by hand, no hub.

A registry version directory (``models/<name>/<version>`` with its manifest and ``READY``)
+ a signed bundle + the pinned root + the node's validation data → checks → policy input →
decision, exactly as :func:`agent.validation.validate_version` takes it in the daemon
(nothing is recorded and no stage pointer moves). Exit 0 when allowed, 1 when denied, 2 when
no decision could be made (bad manifest, artefact that does not load, data without the label
column, a bundle that does not verify, ...), with one ``error:`` line and no traceback.

Two ways to name the version and its settings:

* ``--model-dir DIR --data D --label L [--sensitive C ...] ...`` — everything on the command
  line; the target stage is ``--stage`` or the manifest's ``model.target_stage``;
* ``--config agent.yaml --model NAME --version V`` — the node's own settings for the model
  (data, label, sensitive, stages, ...) and its registry; ``--bundle`` and ``--root`` default
  to the node's last good bundle and pinned root. A target stage the node may not promote to
  is a denial (exit 1, violation ``agent.stage_not_allowed``), as in the daemon.

``--input-out FILE`` writes the exact policy input evaluated (RFC 8785 canonical JSON, no
trailing newline), so its SHA-256 is the printed input sha256 and ``warden policy eval
--bundle B --input FILE`` replays the decision.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from trust.cli.argtypes import add_limit_options, evaluation_limits, positive_int, whole_number
from trust.cli.main import add_command
from trust.cli.options import add_root_option
from trust.errors import EXIT_USER_ERROR, UsageError, WardenError

__all__ = ["register_validate_command"]

_FLAG_ONLY = ("data", "label", "sensitive", "reference", "pos_label", "min_group_size", "pred",
              "trust_pickle")


def _model_from_flags(args: argparse.Namespace, name: str, stage: str) -> Any:
    from agent.config import ModelConfig

    for flag in ("data", "label"):
        if getattr(args, flag) is None:
            raise UsageError(f"--{flag} is required with --model-dir")
    sensitive = tuple(args.sensitive or ())
    if args.label in sensitive:
        raise UsageError(f"--sensitive names the label column {args.label!r}")
    return ModelConfig(
        name=name,
        data=Path(args.data).absolute(),
        label=args.label,
        sensitive=sensitive,
        stages=(stage,),
        pos_label=args.pos_label,
        min_group_size=args.min_group_size or 0,
        reference=None if args.reference is None else Path(args.reference).absolute(),
        pred=args.pred or "prediction",
        trust_pickle=args.trust_pickle,
    )


def _resolve(args: argparse.Namespace) -> tuple[Any, Any, Path, Path]:
    """(ModelConfig, ModelVersion, bundle path, root path) from either form of the flags."""
    from agent.registry import DirectoryRegistry

    if args.config is not None:
        from agent.config import load_agent_config

        if args.model_dir is not None:
            raise UsageError("give either --model-dir or --config with --model/--version")
        if args.model is None or args.version is None:
            raise UsageError("--config needs --model NAME and --version V")
        given = [f"--{f.replace('_', '-')}" for f in _FLAG_ONLY
                 if getattr(args, f) not in (None, False, [])]
        if given:
            raise UsageError(f"{given[0]}: with --config the model's settings come from "
                             f"{args.config}", hint="drop the flag, or use --model-dir")
        config = load_agent_config(args.config)
        model = config.model(args.model)
        if model is None:
            raise UsageError(f"{args.config}: no model {args.model!r} in models",
                             hint="known: " + (", ".join(m.name for m in config.models)
                                               or "none"))
        version = DirectoryRegistry(config.registry).read(args.model, args.version)
        bundle = Path(args.bundle) if args.bundle else config.bundle_path
        root = Path(args.root) if args.root else config.root
        return model, version, bundle, root
    if args.model_dir is None:
        raise UsageError("give --model-dir DIR (a registry version directory), or --config "
                         "agent.yaml with --model and --version")
    if args.model is not None or args.version is not None:
        raise UsageError("--model/--version go with --config; --model-dir names the version")
    if args.bundle is None or args.root is None:
        raise UsageError("--bundle and --root are required with --model-dir")
    d = Path(args.model_dir).absolute()
    version = DirectoryRegistry(d.parent.parent).read(d.parent.name, d.name)
    stage = args.stage or version.manifest.target_stage
    return _model_from_flags(args, version.name, stage), version, Path(args.bundle), \
        Path(args.root)


def _print(fmt: str, out: dict[str, Any], bundle_name: str, bundle_version: int) -> None:
    if fmt == "json":
        print(json.dumps(out, indent=2))
        return
    m = out["model"]
    verdict = "ALLOW" if out["allow"] else "DENY"
    print(f"{verdict}  {m['name']} v{m['version']} → {m['stage']}  "
          f"(policy {bundle_name} v{bundle_version}"
          + (f", decision {out['decision_id']})" if "decision_id" in out else ")"))
    print(f"  input sha256   {out.get('input_sha256') or '-'}")
    print(f"  bundle digest  {out['bundle']['digest']}")
    for v in out["violations"]:
        print(f"  ✗ [{v['severity']}] {v['rule']}: {v['message']}")
    for w in out.get("warnings", []):
        print(f"  ! {w}")


def _validate(args: argparse.Namespace) -> int:
    from agent.policy_input import ProductionStatus
    from agent.validation import StageNotAllowedError, validate_version
    from trust.approval import Approval
    from trust.canonical import loads_object
    from trust.cli._common import check_output_path, write_atomic
    from trust.policy.bundle import PolicyBundle, read_bundle_file
    from trust.policy.engine import PolicyEngine
    from trust.root import TrustRoot
    from trust.timeutil import parse_time, utcnow

    try:
        if args.input_out:
            check_output_path(args.input_out, flag="--input-out")
        now = parse_time(args.now, what="--now") if args.now else utcnow()
        model, version, bundle_path, root_path = _resolve(args)
        root = TrustRoot.load(root_path, now=now)
        bundle = PolicyBundle.from_envelope(
            read_bundle_file(bundle_path), root, last_version=args.last_version, now=now,
            what=str(bundle_path),
        )
        approvals = []
        for path in args.approval or []:
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                raise UsageError(f"{path}: cannot read approval ({exc.strerror})") from exc
            approvals.append(Approval.from_envelope(data, root, what=path))
        production = None
        if args.production:
            try:
                raw = Path(args.production).read_bytes()
            except OSError as exc:
                raise UsageError(f"{args.production}: cannot read production status "
                                 f"({exc.strerror})") from exc
            production = ProductionStatus.from_dict(
                loads_object(raw, what=args.production), what=args.production)
        model_obj = {"name": version.name, "version": version.version,
                     "stage": args.stage or version.manifest.target_stage,
                     "artifact_sha256": version.artefact_sha256}
        bundle_obj = {"name": bundle.name, "version": bundle.version, "digest": bundle.digest,
                      "signature_verified": True}
        with PolicyEngine(bundle, limits=evaluation_limits(args)) as engine, \
                tempfile.TemporaryDirectory(prefix="warden-validate-") as work:
            try:
                v = validate_version(model, version, engine, approvals=approvals,
                                     production=production, now=now, work_dir=Path(work),
                                     stage=args.stage)
            except StageNotAllowedError as exc:  # as the daemon: a block, not an error
                out: dict[str, Any] = {"allow": False, "model": model_obj,
                                       "bundle": bundle_obj, "input_sha256": None,
                                       "violations": [exc.violation()], "warnings": []}
                _print(args.format, out, bundle.name, bundle.version)
                return 1
        if args.input_out:
            write_atomic(args.input_out, v.input_bytes, flag="--input-out")
    except WardenError as exc:
        # A gate must tell "denied" (1) from "could not decide" (2); neither may pass.
        print(f"error: {exc.diagnostics()}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as exc:  # a defect in a check or library: still "could not decide"
        traceback.print_exc(file=sys.stderr)
        print(f"error: could not decide ({type(exc).__name__}: {exc})", file=sys.stderr)
        return EXIT_USER_ERROR
    out = {**v.decision.to_dict(), "model": {**model_obj, "stage": v.target_stage}}
    _print(args.format, out, bundle.name, bundle.version)
    return 0 if v.decision.allow else 1


def register_validate_command(
    group: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add ``validate`` to the ``warden agent`` group."""
    p = add_command(
        group,
        "validate",
        _validate,
        "validate one model version on this node's data under a verified bundle (no hub)",
        "warden agent validate --model-dir models/credit-risk/1.4.0 --bundle standard.bundle "
        "--root root.json --data validation.parquet --label default --sensitive sex",
    )
    p.add_argument("--model-dir", metavar="DIR",
                   help="registry version directory models/<name>/<version> (manifest, READY)")
    p.add_argument("--config", metavar="FILE",
                   help="agent.yaml: take the model's settings and registry from it")
    p.add_argument("--model", metavar="NAME", help="with --config: the model")
    p.add_argument("--version", metavar="VERSION", help="with --config: the version")
    p.add_argument("--bundle", metavar="FILE",
                   help="signed policy bundle (with --config: default the node's last good one)")
    add_root_option(p, required=False,
                    help="pinned trust root (with --config: default the node's)")
    p.add_argument("--last-version", type=positive_int, metavar="N",
                   help="last accepted bundle version (rollback)")
    p.add_argument("--data", metavar="FILE", help="the node's validation data (CSV/Parquet)")
    p.add_argument("--label", metavar="COL", help="label column of the validation data")
    p.add_argument("--sensitive", action="append", metavar="COL",
                   help="sensitive column for fairness checks; repeatable")
    p.add_argument("--reference", metavar="FILE", help="reference data for drift checks")
    p.add_argument("--pos-label", metavar="VALUE", help="positive class of a binary label")
    p.add_argument("--min-group-size", type=whole_number(0), metavar="N",
                   help="suppress fairness groups smaller than this")
    p.add_argument("--pred", metavar="COL",
                   help="prediction column of a predictions artefact (default: prediction)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow loading a .joblib/.pkl artefact (runs code: only your own)")
    p.add_argument("--approval", action="append", metavar="FILE",
                   help="signed approval envelope; repeatable")
    p.add_argument("--production", metavar="FILE", help="JSON production status (rollback rules)")
    p.add_argument("--stage", metavar="STAGE",
                   help="target stage (default: the manifest's model.target_stage)")
    p.add_argument("--now", metavar="TIME", help="validate as of this RFC 3339 time")
    p.add_argument("--input-out", metavar="FILE",
                   help="write the exact policy input (canonical JSON) here, for replay")
    p.add_argument("--format", choices=("text", "json"), default="text")
    add_limit_options(p)
