"""Bad input to the trust CLI (``key``, ``root``, ``policy``, ``approval``): issue 8, items 5, 16,
19, 20 and 21 (trust parts), as one table.

Every row is refused with exit 2 and one ``error:`` line naming the flag, file, key or value —
never a traceback — and leaves the working directory exactly as it was: no output file, no
half-written file, no temporary file, no signature added to a bundle or root in place.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from trust import keys
from trust.policy.bundle import sign_source
from trust.root import APPROVER_PREFIX, Role, RootMetadata
from trust.timeutil import utcnow

from ._table import Case, assert_refused, run_warden

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "policies" / "examples" / "model_governance"

NAMES = ("r1", "r2", "o1", "o2", "o3", "hub", "risk")


# Environment variables set for a row, by its id.
ENV: dict[str, dict[str, str]] = {
    "passphrase-env-set-but-empty-key-generate": {"WARDEN_KEY_PASSPHRASE": ""},
    "passphrase-env-set-but-empty-root-sign": {"WARDEN_KEY_PASSPHRASE": ""},
}

POLICY_SIGN = ("policy", "sign", "{example}", "--key", "o1.key")
INIT = (
    "root", "init", "--root-key", "r1.key", "--root-key", "r2.key",
    "--policy-key", "o1.key", "--policy-key", "o2.key", "--hub-key", "hub.key",
)  # fmt: skip
ROTATE = ("root", "rotate", "root.json", "--root-key", "r2.key")
APPROVAL = ("approval", "create", "--role", "risk", "--subject", "credit-risk:7", "--key",
            "risk.key")  # fmt: skip
DIRECTORY = r"--out '?\.'?: (not a file name|is a directory)"

CASES = [
    # --- item 16: an output path that cannot be a file ---------------------------------------
    Case("out-dot-policy-sign", (*POLICY_SIGN, "--out", "."), DIRECTORY),
    Case("out-dot-policy-cosign",
         ("policy", "cosign", "b.bundle", "--key", "o2.key", "--root", "root.json", "--out", "."),
         DIRECTORY),
    Case("out-dot-approval-create", (*APPROVAL, "--out", "."), DIRECTORY),
    Case("out-dot-root-init", (*INIT, "--out", "."), DIRECTORY),
    Case("out-dot-root-rotate", (*ROTATE, "--out", "."), DIRECTORY),
    Case("out-dot-root-sign", ("root", "sign", "root.json", "--key", "r1.key", "--out", "."),
         DIRECTORY),
    Case("out-dot-key-generate", ("key", "generate", "--out", "."), DIRECTORY),
    Case("out-dotdot-policy-sign", (*POLICY_SIGN, "--out", ".."),
         r"--out '?\.\.'?: (not a file name|is a directory)"),
    Case("out-existing-directory-policy-sign", (*POLICY_SIGN, "--out", "sub"),
         r"--out sub: is a directory"),
    Case("out-trailing-slash-root-init", (*INIT, "--out", "new/"),
         r"--out 'new/': not a file name"),
    Case("out-missing-parent-approval-create", (*APPROVAL, "--out", "nowhere/a.approval"),
         r"--out nowhere/a\.approval: directory nowhere does not exist"),
    Case("public-out-dot-key-generate", ("key", "generate", "--out", "n.key", "--public-out", "."),
         r"--public-out '?\.'?: (not a file name|is a directory)"),
    # --- item 19: signatures that would count for nothing ------------------------------------
    Case("root-sign-with-a-policy-key", ("root", "sign", "root.json", "--key", "o1.key"),
         r"o1\.key: key {o1} is not in the 'root' role of root v1"),
    Case("root-init-signed-by-a-policy-key", (*INIT, "--out", "x.json", "--sign", "o1.key"),
         r"key {o1} is not in the 'root' role of root v1"),
    Case("root-rotate-signed-by-an-outsider", (*ROTATE, "--out", "x.json", "--sign", "hub.key"),
         r"key {hub} is not in the 'root' role of root v2 or of root v1"),
    Case("root-sign-previous-not-the-predecessor",
         ("root", "sign", "root.json", "--key", "r1.key", "--previous", "root.json"),
         r"--previous root\.json: root version 1 does not precede"),
    Case("policy-cosign-with-a-root-key",
         ("policy", "cosign", "b.bundle", "--key", "r1.key", "--root", "root.json"),
         r"r1\.key: key {r1} is not in the 'policy' role of trust root v1"),
    Case("policy-cosign-with-an-approver-key",
         ("policy", "cosign", "b.bundle", "--key", "risk.key", "--root", "root.json",
          "--out", "c.bundle"),
         r"key {risk} is not in the 'policy' role"),
    Case("policy-cosign-without-a-root", ("policy", "cosign", "b.bundle", "--key", "o2.key"),
         r"whether o2\.key is in the trust root's 'policy' role without the root"),
    Case("policy-sign-with-a-root-key-and-root",
         ("policy", "sign", "{example}", "--key", "r1.key", "--root", "root.json",
          "--out", "x.bundle"),
         r"key {r1} is not in the 'policy' role"),
    # --- item 20: values accepted but wrong --------------------------------------------------
    Case("root-init-expires-0s", (*INIT, "--out", "x.json", "--expires", "0s"),
         r"--expires: '0s' would expire at once"),
    Case("root-rotate-expires-0d", (*ROTATE, "--out", "x.json", "--expires", "0d"),
         r"--expires: '0d' would expire at once"),
    Case("policy-verify-last-version-negative",
         ("policy", "verify", "b.bundle", "--root", "root.json", "--last-version", "-1"),
         r"--last-version: -1 is out of range: it must be ≥ 1"),
    Case("policy-eval-last-version-zero",
         ("policy", "eval", "b.bundle", "--root", "root.json", "--input", "in.json",
          "--last-version", "0"),
         r"--last-version: 0 is out of range: it must be ≥ 1"),
    Case("policy-verify-max-bytes-negative",
         ("policy", "verify", "b.bundle", "--root", "root.json", "--max-bytes", "-5"),
         r"--max-bytes: -5 is out of range: it must be ≥ 1"),
    Case("policy-show-max-bytes-not-a-number", ("policy", "show", "b.bundle", "--max-bytes", "x"),
         r"--max-bytes: 'x' is not a whole number"),
    Case("policy-sign-bundle-expires-0s", ("policy", "sign", "zero", "--key", "o1.key",
                                           "--out", "z.bundle"),
         r"zero/bundle\.yaml: field 'expires' '0s' would expire at once"),
    # --- item 5: a key given twice in bundle.yaml --------------------------------------------
    Case("policy-check-duplicate-min_accuracy", ("policy", "check", "dup"),
         r"dup/bundle\.yaml: found duplicate key 'min_accuracy' \(line 8\)"),
    Case("policy-sign-duplicate-min_accuracy",
         ("policy", "sign", "dup", "--key", "o1.key", "--out", "dup.bundle"),
         r"dup/bundle\.yaml: found duplicate key 'min_accuracy'"),
    Case("policy-sign-duplicate-version",
         ("policy", "sign", "dupversion", "--key", "o1.key", "--out", "dup.bundle"),
         r"dupversion/bundle\.yaml: found duplicate key 'version'"),
    Case("policy-show-duplicate-name", ("policy", "show", "dupname"),
         r"dupname/bundle\.yaml: found duplicate key 'name'"),
    Case("policy-eval-duplicate-min_accuracy", ("policy", "eval", "dup", "--input", "in.json"),
         r"dup/bundle\.yaml: found duplicate key 'min_accuracy'"),
    # --- item 21: a passphrase that is set but empty -----------------------------------------
    Case("passphrase-env-set-but-empty-key-generate", ("key", "generate", "--out", "n.key"),
         r"\$WARDEN_KEY_PASSPHRASE is set but empty"),
    Case("passphrase-env-set-but-empty-root-sign",
         ("root", "sign", "root.json", "--key", "r1.key"),
         r"\$WARDEN_KEY_PASSPHRASE is set but empty"),
    Case("passphrase-file-empty-key-generate",
         ("key", "generate", "--out", "n.key", "--passphrase-file", "empty.txt"),
         r"--passphrase-file empty\.txt: the file is empty"),
    Case("passphrase-file-newline-only-root-sign",
         ("root", "sign", "root.json", "--key", "r1.key", "--passphrase-file", "newline.txt"),
         r"--passphrase-file newline\.txt: the file is empty"),
]

DUPLICATE_MANIFEST = (
    "name: dup\nversion: 1\nexpires: 30d\nentrypoint: data.model_governance.allow\n"
    "decision: allow_rule\ndata:\n  min_accuracy: 0.88\n  min_accuracy: 0.10\n"
)


def _seed_key(name: str) -> keys.SigningKey:
    return keys.SigningKey.from_seed(hashlib.sha256(f"trust-table-{name}".encode()).digest())


def _bundle_dir(path: Path, manifest: str) -> None:
    path.mkdir()
    (path / "bundle.yaml").write_text(manifest)
    (path / "policy.rego").write_text((EXAMPLE / "policy.rego").read_text())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Keys, a valid root (v1, root role r1+r2), a bundle signed by o1, and bad bundle dirs."""
    d = tmp_path_factory.mktemp("trust-table")
    ks = {n: _seed_key(n) for n in NAMES}
    for n, k in ks.items():
        keys.save_private(k, d / f"{n}.key")
    ids = {n: k.key_id for n, k in ks.items()}
    meta = RootMetadata(
        version=1,
        expires=utcnow() + timedelta(days=365),  # the CLI checks against the real clock
        keys={k.key_id: k.public for k in ks.values()},
        roles={
            "root": Role((ids["r1"], ids["r2"]), 2),
            "policy": Role((ids["o1"], ids["o2"], ids["o3"]), 2),
            "hub": Role((ids["hub"],), 1),
            APPROVER_PREFIX + "risk": Role((ids["risk"],), 1),
        },
    )
    (d / "root.json").write_bytes(meta.envelope([ks["r1"], ks["r2"]]).to_json() + b"\n")
    (d / "b.bundle").write_bytes(sign_source(EXAMPLE, [ks["o1"]]).to_json())
    (d / "in.json").write_text('{"model": {"accuracy": 0.9, "bias": 0.05}}')
    (d / "sub").mkdir()
    (d / "empty.txt").write_bytes(b"")
    (d / "newline.txt").write_bytes(b"\n")
    _bundle_dir(d / "dup", DUPLICATE_MANIFEST)
    single = DUPLICATE_MANIFEST.replace("  min_accuracy: 0.10\n", "")
    _bundle_dir(d / "dupversion", single.replace("data:", "version: 2\ndata:"))
    _bundle_dir(d / "dupname", "name: a\n" + single)
    _bundle_dir(d / "zero", single.replace("30d", "0s"))
    return d, {**ids, "example": str(EXAMPLE)}


def _snapshot(d: Path) -> dict[str, bytes | None]:
    return {
        p.relative_to(d).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in sorted(d.rglob("*"))
    }


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_trust_cli_refuses(
    case: Case,
    workdir: tuple[Path, dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    d, names = workdir
    monkeypatch.chdir(d)
    monkeypatch.delenv("WARDEN_KEY_PASSPHRASE", raising=False)
    for key, value in ENV.get(case.id, {}).items():
        monkeypatch.setenv(key, value)
    before = _snapshot(d)
    argv = [arg.format(**names) for arg in case.argv]
    code, _, err = run_warden(argv, capsys)
    expect = case.expect.format(**names)
    assert_refused(Case(case.id, case.argv, expect, case.code), code, err)
    assert _snapshot(d) == before, "a refused command changed the working directory"


def test_every_env_row_is_in_the_table() -> None:
    assert set(ENV) <= {c.id for c in CASES}
