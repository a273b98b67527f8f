"""``warden policy``: check, test, sign, cosign, verify, eval and show policy bundles.

``warden policy eval`` is a CI/CD gate like ``opa eval``: it prints the decision as JSON and
exits 0 when allowed, 1 when denied, 2 on any error (bad input, bad bundle, failed
verification, a policy error). Evaluating a signed ``.bundle`` file requires ``--root`` (the
bundle is verified first) unless ``--skip-signature`` is given explicitly; a source directory
is evaluated as is. In both unverified cases the bundle is an
:class:`~trust.policy.bundle.UnverifiedPolicyBundle` (file digests still checked), evaluated
only through ``PolicyEngine.for_unverified``; a warning goes to stderr, and the decision says
``"signature_verified": false``. ``policy show`` and ``policy test`` without ``--root`` (or on a
source directory) use the same unverified type and say so (``show``: ``"signature_verified":
false``; ``test``: a warning on stderr for a signed file).

``warden policy eval --query Q`` prints ``{"query", "defined", "result"}`` instead of a decision
and exits 0 when the result is defined and not ``false``, 1 when it is ``false`` or undefined
(``"defined": false``, ``"result": null``), 2 on any error. A single expression gives its value;
a statement query (``x := data.a.b``) gives its bindings as an object.

``warden policy cosign`` needs ``--root``: a key outside the root's ``policy`` role is refused,
as its signature would count for nothing (``--force`` adds it anyway, with a warning);
``warden policy sign --root`` checks its keys the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from trust.canonical import loads_object
from trust.cli._common import (
    check_output_path,
    check_signers,
    load_signing_keys_named,
    write_atomic,
)
from trust.cli.argtypes import add_limit_options, evaluation_limits, positive_int
from trust.cli.main import add_command, add_group
from trust.cli.options import add_out_option, add_root_option, add_signing_options
from trust.errors import EXIT_USER_ERROR, FormatError, PolicyError, UsageError, WardenError
from trust.keys import SigningKey
from trust.policy.bundle import (
    DEFAULT_MAX_BYTES,
    PolicyBundle,
    UnverifiedPolicyBundle,
    cosign,
    load_bundle_file,
    read_bundle_file,
    read_rego_dir,
    sign_source,
)
from trust.root import TrustRoot
from trust.timeutil import format_time

__all__ = ["register"]


def _verified_bundle(args: argparse.Namespace, path: Path) -> PolicyBundle:
    """The .bundle file ``path`` verified against ``--root``."""
    if path.is_dir():
        raise UsageError(f"{path}: a source directory is not signed; sign it, then verify")
    return PolicyBundle.from_envelope(
        read_bundle_file(path, max_bytes=args.max_bytes),
        TrustRoot.load(args.root),
        last_version=getattr(args, "last_version", None),
        max_bytes=args.max_bytes,
        what=str(path),
    )


def _load_bundle(
    args: argparse.Namespace, *, require_root: bool
) -> PolicyBundle | UnverifiedPolicyBundle:
    """A source directory (unsigned) or a .bundle file, verified when --root is given."""
    path = Path(args.bundle)
    if getattr(args, "root", None):
        return _verified_bundle(args, path)
    if path.is_dir():
        return UnverifiedPolicyBundle.from_source(path)
    if require_root:
        raise UsageError(
            f"{path}: refusing to use a signed bundle without checking its signatures",
            hint="pass --root root.json (or --skip-signature to evaluate it unverified)",
        )
    return UnverifiedPolicyBundle.from_bytes(
        read_bundle_file(path, max_bytes=args.max_bytes), max_bytes=args.max_bytes, what=str(path)
    )


def _warn_unverified(bundle: PolicyBundle | UnverifiedPolicyBundle, path: str) -> None:
    """Say on stderr that a signed bundle file is used with its signatures unchecked."""
    if isinstance(bundle, UnverifiedPolicyBundle) and bundle.envelope is not None:
        print(f"warning: signature of {path} NOT checked (file digests were)", file=sys.stderr)


# The compiler and test runner load regopy (rego-cpp); they are imported by the commands that
# need them so that `warden --help` and the other groups start fast.


def _check(args: argparse.Namespace) -> int:
    from trust.policy.check import check_directory

    report = check_directory(args.dir)
    print(
        f"ok: bundle {report.name} v{report.version}: {report.modules} module(s), "
        f"{report.tests} test(s), entrypoint {report.entrypoint}, "
        f"compiled in {report.compile_ms:.1f} ms"
    )
    if report.projection is not None:
        print(
            f"input projection: {len(report.projection)} path(s), covering every input "
            "reference of the policy"
        )
    return 0


def _test(args: argparse.Namespace) -> int:
    from trust.policy.testing import Outcome, run_tests

    path = Path(args.bundle)
    if path.is_dir() and not (path / "bundle.yaml").exists():
        files = read_rego_dir(path)
        data: dict[str, Any] = {}
    else:
        bundle = _load_bundle(args, require_root=False)
        _warn_unverified(bundle, args.bundle)
        files, data = dict(bundle.files), dict(bundle.data)
    results = run_tests(files, data, limits=evaluation_limits(args))
    if not results:
        raise PolicyError(f"{path}: no test_* rules found in *_test.rego files")
    failed = [r for r in results if r.outcome is not Outcome.PASS]
    for r in results:
        if args.verbose or r.outcome is not Outcome.PASS:
            print(f"{r.file}: {r.line()}")
    total_ms = sum(r.duration_ms for r in results)
    print("-" * 60)
    print(f"PASS: {len(results) - len(failed)}/{len(results)} ({total_ms:.1f} ms)")
    if failed:
        print(f"FAIL: {len(failed)}/{len(results)}")
        return 1
    return 0


def _check_policy_signers(
    signers: list[tuple[str, SigningKey]], args: argparse.Namespace, *, required: bool
) -> None:
    """Refuse keys outside the trust root's ``policy`` role: their signatures count for nothing.

    Without ``--root`` the role is unknown: refused when ``required`` (unless ``--force``).
    """
    if args.root:
        root = TrustRoot.load(args.root)
        check_signers(
            signers,
            root.role("policy").keyids,
            f"the 'policy' role of trust root v{root.version} ({args.root})",
            force=args.force,
        )
    elif required:
        if not args.force:
            named = ", ".join(path for path, _ in signers)
            raise UsageError(
                f"cannot tell whether {named} is in the trust root's 'policy' role without the "
                "root",
                hint="pass --root root.json (or --force to sign without checking)",
            )
        print(
            "warning: signing keys NOT checked against the trust root's 'policy' role "
            "(--force without --root)",
            file=sys.stderr,
        )


def _sign(args: argparse.Namespace) -> int:
    from trust.policy.check import check_directory

    check_output_path(args.out)
    signers = load_signing_keys_named(args.key, args)
    _check_policy_signers(signers, args, required=False)
    check_directory(args.dir)  # never sign a bundle that does not compile
    env = sign_source(args.dir, [k for _, k in signers], max_bytes=args.max_bytes)
    write_atomic(args.out, env.to_json(), flag="--out")
    # Just signed here, so only its shape is re-read for the summary.
    bundle = UnverifiedPolicyBundle.from_bytes(
        env.to_json(), max_bytes=args.max_bytes, what=args.out
    )
    print(
        f"signed {bundle.name} v{bundle.version} ({len(bundle.files)} files) by "
        f"{len(env.signatures)} key(s) -> {args.out}"
    )
    print(f"digest:  {bundle.digest}")
    print(f"expires: {format_time(bundle.manifest.expires)}")
    return 0


def _cosign(args: argparse.Namespace) -> int:
    out = args.out or args.bundle
    flag = "--out" if args.out else "BUNDLE"
    check_output_path(out, flag=flag)
    env = load_bundle_file(args.bundle, max_bytes=args.max_bytes)
    signers = load_signing_keys_named(args.key, args)
    _check_policy_signers(signers, args, required=True)
    new = env
    for _, key in signers:
        new = cosign(new, key, what=args.bundle)
    write_atomic(out, new.to_json(), flag=flag)
    added = len(new.signatures) - len(env.signatures)
    print(f"{args.bundle}: {added} signature(s) added, {len(new.signatures)} in total -> {out}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    bundle = _verified_bundle(args, Path(args.bundle))
    root = TrustRoot.load(args.root)
    role = root.role("policy")
    print(
        f"verified: {bundle.name} v{bundle.version}, signed by {len(bundle.signers)} of "
        f"{len(role.keyids)} policy keys (threshold {role.threshold})"
    )
    print(f"digest:  {bundle.digest}")
    print(f"expires: {format_time(bundle.manifest.expires)}")
    for kid in sorted(bundle.signers):
        print(f"signer:  {kid}")
    return 0


def _read_input(path: str) -> Any:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise FormatError(f"{path}: cannot read ({exc.strerror})") from exc
    return loads_object(data, what=path)


def _eval(args: argparse.Namespace) -> int:
    from trust.policy.engine import PolicyEngine

    # Every failure here exits 2, whatever its kind: a gate must tell "denied" (1) from
    # "could not decide" (2), and neither may pass.
    try:
        bundle = _load_bundle(args, require_root=not args.skip_signature)
        if isinstance(bundle, UnverifiedPolicyBundle):
            if bundle.envelope is None:  # a source directory: nothing was ever signed
                print(f"warning: {args.bundle} is an unsigned bundle source; evaluated "
                      "unverified", file=sys.stderr)
            else:
                _warn_unverified(bundle, args.bundle)
        input_doc = _read_input(args.input)
        limits = evaluation_limits(args)
        engine = (
            PolicyEngine(bundle, limits=limits)
            if isinstance(bundle, PolicyBundle)
            else PolicyEngine.for_unverified(bundle, limits=limits)
        )
        if args.query:
            missing = object()
            value = engine.query(args.query, input_doc, undefined=missing)
            defined = value is not missing
            print(
                json.dumps(
                    {"query": args.query, "defined": defined, "result": value if defined else None},
                    indent=2,
                    sort_keys=True,
                )
            )
            return 0 if defined and value is not False else 1
        decision = engine.evaluate(input_doc)
    except WardenError as exc:
        print(f"error: {exc.diagnostics()}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(json.dumps(decision.to_dict(), indent=2))
    return 0 if decision.allow else 1


def _show(args: argparse.Namespace) -> int:
    bundle = _load_bundle(args, require_root=False)
    info: dict[str, Any] = {
        "manifest": bundle.manifest.to_dict(),
        "digest": bundle.digest,
        "data": dict(bundle.data),
        "files": {p: len(t.encode("utf-8")) for p, t in sorted(bundle.files.items())},
        "signature_verified": isinstance(bundle, PolicyBundle),
    }
    if bundle.envelope is not None:
        info["signatures"] = list(bundle.envelope.signer_ids)
    if isinstance(bundle, PolicyBundle):
        info["verified_signers"] = sorted(bundle.signers)
    print(json.dumps(info, indent=2))
    return 0


_OFFICER_KEY_HELP = "officer private key (repeat)"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-bytes",
        type=positive_int,
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help=f"refuse bundles larger than N bytes (default {DEFAULT_MAX_BYTES})",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``warden policy``."""
    group = add_group(
        subparsers,
        "policy",
        "write, sign and evaluate Rego policy bundles",
        "Policy bundles: a directory with bundle.yaml and Rego modules, signed k-of-n by the "
        "policy officers named in the trust root, evaluated the same way everywhere.",
    )
    p = add_command(
        group,
        "check",
        _check,
        "parse, compile and type-check a bundle directory",
        "warden policy check policies/standard",
    )
    p.add_argument("dir", help="bundle source directory (with bundle.yaml)")

    p = add_command(
        group,
        "test",
        _test,
        "run the test_* rules of *_test.rego files, like 'opa test'",
        "warden policy test policies/standard -v",
    )
    p.add_argument("bundle", help="bundle directory, .bundle file, or a plain .rego directory")
    p.add_argument("-v", "--verbose", action="store_true", help="list passing tests too")
    _common(p)
    add_limit_options(p)

    p = add_command(
        group,
        "sign",
        _sign,
        "build a signed bundle from a directory",
        "warden policy sign policies/standard --key alice.key --out standard.bundle",
    )
    p.add_argument("dir", help="bundle source directory")
    add_signing_options(p, key_help=_OFFICER_KEY_HELP, force=True)
    add_out_option(p, help="output .bundle file")
    add_root_option(
        p, required=False, help="trusted root.json: refuse keys outside its policy role"
    )
    _common(p)

    p = add_command(
        group,
        "cosign",
        _cosign,
        "add signatures to a bundle without changing its payload",
        "warden policy cosign standard.bundle --key bob.key --root root.json",
    )
    p.add_argument("bundle", help=".bundle file")
    add_signing_options(p, key_help=_OFFICER_KEY_HELP, force=True)
    add_out_option(p, required=False, help="write here instead of updating the bundle in place")
    # Required unless --force, so the command checks it (argparse cannot): its error says why
    # a cosignature needs the root.
    add_root_option(
        p, required=False, help="trusted root.json: the key must be in its policy role (required)"
    )
    _common(p)

    p = add_command(
        group,
        "verify",
        _verify,
        "verify a bundle: policy-role threshold, expiry, rollback, file digests, size",
        "warden policy verify standard.bundle --root root.json --last-version 3",
    )
    p.add_argument("bundle", help=".bundle file")
    add_root_option(p, required=True, help="trusted root.json")
    p.add_argument("--last-version", type=positive_int, metavar="N", help="last accepted version")
    _common(p)

    p = add_command(
        group,
        "eval",
        _eval,
        "evaluate a bundle on an input; exit 0 allow, 1 deny, 2 error (a CI/CD gate)",
        "warden policy eval standard.bundle --root root.json --input input.json",
    )
    p.add_argument("bundle", help=".bundle file or bundle source directory")
    p.add_argument("--input", required=True, help="input JSON object ('-' for stdin)")
    p.add_argument(
        "--query",
        help="evaluate this Rego query instead of the entrypoint; exit 0 when its result is "
        "defined and not false, 1 when false or undefined, 2 on error",
    )
    add_root_option(
        p, required=False, help="trusted root.json: verify the bundle before evaluating"
    )
    p.add_argument("--last-version", type=positive_int, metavar="N", help="last accepted version")
    p.add_argument(
        "--skip-signature",
        action="store_true",
        help="evaluate a signed bundle without --root (digests still checked; unsafe)",
    )
    _common(p)
    add_limit_options(p)

    p = add_command(
        group,
        "show",
        _show,
        "print a bundle's manifest, data, files and signers",
        "warden policy show standard.bundle --root root.json",
    )
    p.add_argument("bundle", help=".bundle file or bundle source directory")
    add_root_option(p, required=False, help="trusted root.json: verify and list verified signers")
    _common(p)
