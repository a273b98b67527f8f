"""Which signatures the trust CLI adds: keys that count, and what ``--force`` and
``--previous`` allow.

``root sign`` with a key outside the root role and ``policy cosign`` with a key outside the
policy role are refused (rows of ``tests/bad_input/test_trust_table.py``); here: ``--force``
adds such a signature with a warning, ``--previous ROOT`` lets an old root's key sign a
rotation, and a policy key with ``--root`` cosigns (regressions of issue 8, item 19).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from tests.bad_input._table import run_warden
from trust import keys
from trust.policy.bundle import PolicyBundle, load_bundle_file, read_bundle_file, sign_source
from trust.root import Role, RootMetadata, TrustRoot, load_envelope, read_envelope_bytes
from trust.timeutil import utcnow

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "policies" / "examples" / "model_governance"

Run = Callable[..., tuple[int, str, str]]
Keys = dict[str, keys.SigningKey]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """``run(*argv)``: ``warden ARGV`` in-process -> (exit code, stdout, stderr)."""
    return lambda *argv: run_warden(argv, capsys)


def _key(name: str) -> keys.SigningKey:
    return keys.SigningKey.from_seed(hashlib.sha256(f"corrections-{name}".encode()).digest())


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Keys:
    """r1, r2 (root v1), r3 (root v2 only), o1..o3 (policy), hub; root.json v1; b.bundle."""
    monkeypatch.chdir(tmp_path)
    ks = {n: _key(n) for n in ("r1", "r2", "r3", "o1", "o2", "o3", "hub")}
    for n, k in ks.items():
        keys.save_private(k, tmp_path / f"{n}.key")
    meta = RootMetadata(
        version=1,
        expires=utcnow() + timedelta(days=30),
        keys={k.key_id: k.public for k in ks.values()},
        roles={
            "root": Role((ks["r1"].key_id, ks["r2"].key_id), 2),
            "policy": Role(tuple(ks[n].key_id for n in ("o1", "o2", "o3")), 2),
            "hub": Role((ks["hub"].key_id,), 1),
        },
    )
    (tmp_path / "root.json").write_bytes(meta.envelope([ks["r1"], ks["r2"]]).to_json())
    (tmp_path / "b.bundle").write_bytes(sign_source(EXAMPLE, [ks["o1"]]).to_json())
    return ks


def test_root_sign_force_adds_an_outsider_signature_with_a_warning(run: Run, world: Keys) -> None:
    code, _, err = run("root", "sign", "root.json", "--key", "o1.key", "--force")
    assert code == 0, err
    assert re.search(rf"^warning: .*{world['o1'].key_id} is not in the 'root' role", err, re.M)
    assert world["o1"].key_id in load_envelope("root.json").signer_ids


def test_old_root_key_signs_a_rotation_only_with_previous(run: Run, world: Keys) -> None:
    code, _, err = run("root", "rotate", "root.json", "--root-key", "r2.key", "--root-key",
                       "r3.key", "--out", "root-v2.json", "--sign", "r1.key", "--sign", "r3.key")
    assert code == 0, err  # rotate knows the old root: r1 (v1 only) may sign
    code, _, err = run("root", "sign", "root-v2.json", "--key", "r1.key")
    assert code == 2 and "--previous" in err, err  # r1 is not a v2 root key
    code, _, err = run("root", "sign", "root-v2.json", "--key", "r2.key", "--previous",
                       "root.json")
    assert code == 0, err
    v1 = TrustRoot.load("root.json")
    assert v1.rotate(read_envelope_bytes("root-v2.json")).version == 2


def test_policy_cosign_with_a_policy_key_and_root(run: Run, world: Keys) -> None:
    code, out, err = run("policy", "cosign", "b.bundle", "--key", "o2.key", "--root", "root.json")
    assert code == 0 and "1 signature(s) added, 2 in total" in out, err
    bundle = PolicyBundle.from_envelope(read_bundle_file("b.bundle"), TrustRoot.load("root.json"))
    assert bundle.signers == {world["o1"].key_id, world["o2"].key_id}


def test_policy_cosign_force_with_an_outsider_key_warns(run: Run, world: Keys) -> None:
    code, _, err = run("policy", "cosign", "b.bundle", "--key", "r1.key", "--root", "root.json",
                       "--force")
    assert code == 0, err
    assert re.search(rf"^warning: .*{world['r1'].key_id} is not in the 'policy' role", err, re.M)
    code, _, err = run("policy", "cosign", "b.bundle", "--key", "o3.key", "--force")
    assert code == 0 and "NOT checked" in err, err
    assert set(load_bundle_file("b.bundle").signer_ids) == {
        world[n].key_id for n in ("o1", "r1", "o3")
    }
