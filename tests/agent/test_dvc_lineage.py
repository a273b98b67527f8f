"""DVC lineage: hashes recomputed as DVC does, checked against files the real ``dvc`` made.

The oracle is DVC itself: ``dvc add`` / ``dvc repro`` write the ``.dvc`` files and the
``dvc.lock`` whose hashes :mod:`agent.checks.dvc` must reproduce (files, directories with
nested and empty sub-directories, empty files, unicode and JSON-escaped names, symbolic links,
DVC's own ignores, a 3 MiB file read in blocks), and ``dvc data status`` says whether DVC
agrees a hand-written pointer matches its data (legacy DVC 2 ``md5-dos2unix`` entries, a
hand-edited md5). Then the evidence and the policy: a mismatch names the file and both
hashes, a missing file or pointer is ``lineage.dvc_missing``, a garbled pointer is a
FormatError naming it, and end to end through :func:`agent.validation.validate_version` with
the signed standard bundle a mismatch is the ``lineage.dvc_mismatch`` violation of the
decision. Tests that need the ``dvc`` CLI (dev extra) skip, saying so, when it is absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.checks import dvc
from agent.checks.evidence import validate_evidence
from agent.checks.run import CheckSpec, run_checks
from tests.agent import _world
from trust.errors import FormatError

_BIN = Path(sys.executable).with_name("dvc")
DVC = str(_BIN) if _BIN.is_file() else shutil.which("dvc")
needs_dvc = pytest.mark.skipif(
    DVC is None, reason="the dvc CLI is not installed (it comes with the dev extra: "
                        "pip install -e '.[dev]'); these tests use it as the oracle")
NOW = _world.NOW
NAME = "credit-risk"
BIG = 3 * (1 << 20) + 12345  # spans four 1 MiB blocks


def run_dvc(repo: Path, *args: str) -> str:
    assert DVC is not None
    # DVC's site cache (its per-repo state) beside the repository, not under ~/.cache.
    site = repo.with_name(repo.name + ".site")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(site)}
    done = subprocess.run([DVC, *args], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def dvc_agrees(repo: Path) -> bool:
    """Whether ``dvc data status`` finds every tracked file as its pointer records it."""
    status = json.loads(run_dvc(repo, "data", "status", "--json") or "{}")
    return "uncommitted" not in status


def recorded(pointer: Path) -> list[dict[str, Any]]:
    doc = yaml.safe_load(pointer.read_text())
    outs: list[dict[str, Any]] = doc["outs"]
    return outs


def write_tree(d: Path) -> None:
    """A directory with everything that shapes DVC's listing."""
    (d / "sub" / "deeper").mkdir(parents=True)
    (d / "empty-dir" / "also-empty").mkdir(parents=True)
    (d / "a" / "b").mkdir(parents=True)
    (d / "top.csv").write_bytes(b"x,y\r\n1,2\r\n")  # CRLF text: DVC 2 hashed it as LF
    (d / "sub" / "empty.txt").write_bytes(b"")
    (d / "sub" / "deeper" / "données é.csv").write_text("é\r\n", encoding="utf-8")
    (d / "sub" / "😀 \"quoted\" \\.txt").write_bytes(b"\x00\x01binary\r\n")
    # Sorting by relpath, not walk order: "a-b" < "a.b" < "a/b/..." in code points.
    (d / "a-b").write_text("dash\n")
    (d / "a.b").write_text("dot\n")
    (d / "a" / "b" / "c").write_text("slash\n")
    # DVC's default ignores: a .git directory and file, .hg and .dvc directories.
    (d / ".git").mkdir()
    (d / ".git" / "HEAD").write_text("ref\n")
    (d / "sub" / ".git").write_text("gitdir: elsewhere\n")
    (d / ".hg").mkdir()
    (d / ".hg" / "x").write_text("hg\n")
    # Links: a link to a file is hashed through, a link to a directory is not followed.
    os.symlink("top.csv", d / "link-to-top")
    os.symlink("sub", d / "link-to-sub")


@dataclass(frozen=True)
class Repo:
    dir: Path
    files: tuple[str, ...]  # tracked files, each with its own .dvc
    tree: str  # a tracked directory


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """A DVC repository made by the real CLI: files and a directory added, a pipeline run."""
    if DVC is None:
        pytest.skip("the dvc CLI is not installed (dev extra); it makes the pointers")
    d = tmp_path_factory.mktemp("dvc-repo")
    run_dvc(d, "init", "--no-scm", "-q")
    (d / "data.csv").write_text("id,income\r\n1,20\r\n")
    (d / "empty.csv").write_bytes(b"")
    (d / "unicode ü.csv").write_text("ü\n", encoding="utf-8")
    (d / "big.bin").write_bytes(os.urandom(BIG))
    write_tree(d / "datadir")
    files = ("data.csv", "empty.csv", "unicode ü.csv", "big.bin")
    run_dvc(d, "add", "-q", "--no-commit", *files, "datadir")
    (d / "work").mkdir()
    (d / "dvc.yaml").write_text(
        "stages:\n"
        "  prepare:\n"
        "    cmd: mkdir -p prepared && cp data.csv prepared/train.csv\n"
        "    deps: [data.csv]\n"
        "    outs: [prepared]\n"
        "  train:\n"
        "    wdir: work\n"
        "    cmd: cat ../prepared/train.csv > model.txt\n"
        "    deps: [../prepared]\n"
        "    outs: [model.txt]\n"
    )
    run_dvc(d, "repro", "-q")
    return Repo(d, files, "datadir")


def copy_repo(repo: Repo, tmp_path: Path) -> Path:
    """A private copy of the repository (links kept as links) for a test that edits it."""
    dest = tmp_path / "repo"
    shutil.copytree(repo.dir, dest, symlinks=True)
    return dest


# --- the hashes are DVC's ----------------------------------------------------------------------


@needs_dvc
@pytest.mark.parametrize("name", ["data.csv", "empty.csv", "unicode ü.csv", "big.bin"])
def test_file_md5_equals_what_dvc_add_recorded(repo: Repo, name: str) -> None:
    (out,) = recorded(repo.dir / f"{name}.dvc")
    assert out["hash"] == "md5" and out["path"] == name
    assert dvc.md5_file(repo.dir / name) == out["md5"]
    ev = dvc.verify_pointer(repo.dir / f"{name}.dvc")
    assert ev == {"pointer": f"{name}.dvc", "verified": True, "outs": [
        {"path": name, "expected_md5": out["md5"], "actual_md5": out["md5"], "verified": True}]}


@needs_dvc
def test_directory_hash_equals_what_dvc_add_recorded(repo: Repo) -> None:
    (out,) = recorded(repo.dir / "datadir.dvc")
    assert out["md5"].endswith(".dir")
    # top, empty, données, 😀, a-b, a.b, a/b/c and the link to top; nothing ignored, no link
    # to a directory followed (else nfiles would differ and so would the hash).
    assert out["nfiles"] == 8
    assert dvc.md5_tree(repo.dir / "datadir") == out["md5"]
    ev = dvc.verify_pointer(repo.dir / "datadir.dvc")
    assert ev["verified"] is True and ev["outs"][0]["actual_md5"] == out["md5"]


@needs_dvc
def test_the_listing_is_byte_for_byte_dvcs(repo: Repo, tmp_path: Path) -> None:
    # With the cache committed, DVC stores the directory's listing as <md5>.dir: the bytes
    # this module hashes must be those bytes (separators, escapes, order).
    d = copy_repo(repo, tmp_path)
    run_dvc(d, "commit", "-q", "-f", "datadir.dvc")
    (out,) = recorded(d / "datadir.dvc")
    digest = out["md5"].removesuffix(".dir")
    listing = (d / ".dvc" / "cache" / "files" / "md5" / digest[:2] / f"{digest[2:]}.dir")
    raw = listing.read_bytes()
    assert hashlib.md5(raw).hexdigest() == digest
    relpaths = [e["relpath"] for e in json.loads(raw)]
    assert relpaths == sorted(relpaths) and "a-b" in relpaths and "a/b/c" in relpaths
    assert b"\\ud83d\\ude00" in raw  # JSON's ASCII escapes, as json.dumps writes them


@needs_dvc
def test_a_big_file_is_hashed_in_blocks_not_read_whole(repo: Repo) -> None:
    tracemalloc.start()
    try:
        actual = dvc.md5_file(repo.dir / "big.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert actual == recorded(repo.dir / "big.bin.dvc")[0]["md5"]
    assert peak < 2 * (1 << 20) + (1 << 19) < BIG  # about one 1 MiB block, not 3 MiB


@needs_dvc
def test_dvc_lock_entries_are_verified_with_the_stage_wdir(repo: Repo) -> None:
    lock = yaml.safe_load((repo.dir / "dvc.lock").read_text())
    ev = dvc.verify_pointer(repo.dir / "dvc.lock")
    assert ev["pointer"] == "dvc.lock" and ev["verified"] is True
    # deps and outs of both stages; prepared/ (prepare's out, train's dep ../prepared) once;
    # the train stage's paths are relative to its wdir, given in dvc.yaml.
    assert [o["path"] for o in ev["outs"]] == ["data.csv", "prepared", "work/model.txt"]
    assert ev["outs"][1]["expected_md5"] == lock["stages"]["prepare"]["outs"][0]["md5"]
    assert ev["outs"][1]["actual_md5"].endswith(".dir")
    # Naming a training-data path checks only the entries for it (a file inside a tracked
    # directory selects the directory).
    only = dvc.verify_pointer(repo.dir / "dvc.lock", only=repo.dir / "prepared" / "train.csv")
    assert [o["path"] for o in only["outs"]] == ["prepared"] and only["verified"] is True
    none = dvc.verify_pointer(repo.dir / "dvc.lock", only=repo.dir / "other.csv")
    assert none["verified"] is False
    assert none["outs"] == [{"path": "other.csv", "expected_md5": None, "actual_md5": None,
                             "verified": False, "error": "not_in_pointer",
                             "reason": "dvc.lock has no entry for other.csv"}]


@needs_dvc
def test_legacy_dvc2_entries_use_dos2unix_as_dvc_does(repo: Repo, tmp_path: Path) -> None:
    # DVC 3 writes no legacy entries: write them by hand, as DVC 2 did (no `hash:` key), and
    # ask DVC whether it agrees they match the data.
    d = copy_repo(repo, tmp_path)
    text = b"id,income\r\n1,20\r\n"
    legacy = dvc.md5_file(d / "data.csv", legacy=True)
    assert legacy == hashlib.md5(text.replace(b"\r\n", b"\n")).hexdigest() != dvc.md5_file(
        d / "data.csv")
    (d / "data.csv.dvc").write_text(f"outs:\n- md5: {legacy}\n  size: 18\n  path: data.csv\n")
    tree = dvc.md5_tree(d / "datadir", legacy=True)
    assert tree != recorded(d / "datadir.dvc")[0]["md5"]  # a CRLF text file inside differs
    (d / "datadir.dvc").write_text(f"outs:\n- md5: {tree}\n  nfiles: 8\n  path: datadir\n")
    # big.bin is binary: dos2unix must leave it alone, block by block.
    big = dvc.md5_file(d / "big.bin", legacy=True)
    assert big == dvc.md5_file(d / "big.bin")
    (d / "big.bin.dvc").write_text(f"outs:\n- md5: {big}\n  path: big.bin\n")
    assert dvc_agrees(d)
    for name in ("data.csv.dvc", "datadir.dvc", "big.bin.dvc"):
        assert dvc.verify_pointer(d / name)["verified"] is True, name
    # And DVC disagrees with a wrong legacy hash, as this module does.
    wrong = hashlib.md5(b"x").hexdigest()
    (d / "data.csv.dvc").write_text(f"outs:\n- md5: {wrong}\n  path: data.csv\n")
    assert not dvc_agrees(d)
    assert dvc.verify_pointer(d / "data.csv.dvc")["verified"] is False


def test_legacy_text_detection_is_per_block_as_in_dvc3(tmp_path: Path) -> None:
    # The dev extra's dvc-data as the oracle (DVC 3's own md5-dos2unix).
    file_md5 = pytest.importorskip(
        "dvc_data.hashfile.hash", reason="dvc-data (dev extra) is not installed").file_md5

    p = tmp_path / "mixed"
    # First block binary, second text with CRLF, third a CRLF split across the boundary.
    block = 1 << 20
    data = b"\x00" * block + b"a\r\n" * (block // 3) + b"x" * (block - 3 * (block // 3) - 1)
    p.write_bytes(data + b"\r\nend\r\n")
    assert dvc.md5_file(p, legacy=True) == file_md5(str(p), name="md5-dos2unix")
    raw = hashlib.md5(p.read_bytes()).hexdigest()
    assert dvc.md5_file(p) == file_md5(str(p), name="md5") == raw


# --- what goes wrong -----------------------------------------------------------------------------


@needs_dvc
def test_a_hand_edited_md5_is_a_mismatch_naming_both_hashes(repo: Repo, tmp_path: Path) -> None:
    d = copy_repo(repo, tmp_path)
    pointer = d / "data.csv.dvc"
    real = recorded(pointer)[0]["md5"]
    wrong = hashlib.md5(b"other data").hexdigest()
    pointer.write_text(pointer.read_text().replace(real, wrong))
    assert not dvc_agrees(d)  # DVC sees the same disagreement
    ev = dvc.verify_pointer(pointer)
    assert ev == {"pointer": "data.csv.dvc", "verified": False, "outs": [
        {"path": "data.csv", "expected_md5": wrong, "actual_md5": real, "verified": False}]}


@needs_dvc
def test_data_changed_after_dvc_add_is_a_mismatch(repo: Repo, tmp_path: Path) -> None:
    d = copy_repo(repo, tmp_path)
    (d / "datadir" / "sub" / "deeper" / "new.csv").write_text("added later\n")
    ev = dvc.verify_pointer(d / "datadir.dvc")
    out = ev["outs"][0]
    assert ev["verified"] is False and out["verified"] is False
    assert out["expected_md5"] == recorded(d / "datadir.dvc")[0]["md5"] != out["actual_md5"]
    assert out["actual_md5"].endswith(".dir") and "error" not in out


@needs_dvc
def test_a_pointer_to_a_missing_file_is_missing(repo: Repo, tmp_path: Path) -> None:
    d = copy_repo(repo, tmp_path)
    (d / "data.csv").unlink()
    shutil.rmtree(d / "datadir")
    for name, path in (("data.csv.dvc", "data.csv"), ("datadir.dvc", "datadir")):
        ev = dvc.verify_pointer(d / name)
        assert ev["verified"] is False
        assert ev["outs"] == [{"path": path, "expected_md5": recorded(d / name)[0]["md5"],
                               "actual_md5": None, "verified": False, "error": "missing",
                               "reason": f"{path} does not exist"}]
    absent = dvc.verify_pointer(d / "nothing.csv.dvc")
    assert absent == {"pointer": "nothing.csv.dvc", "outs": [], "verified": False,
                      "error": "missing"}


def test_a_fifo_in_a_tracked_directory_is_refused_not_read(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "d" / "pipe")  # opening it for reading would block forever
    (tmp_path / "d.dvc").write_text(f"outs:\n- md5: {'a' * 32}.dir\n  hash: md5\n  path: d\n")
    (out,) = dvc.verify_pointer(tmp_path / "d.dvc")["outs"]
    assert out["error"] == "unreadable" and out["reason"] == "d/pipe: not a regular file"
    assert str(tmp_path) not in json.dumps(out)


def test_entries_that_cannot_be_verified_offline_are_unsupported(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("x\n")
    (tmp_path / ".dvcignore").write_text("# comment\n*.tmp\n")
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  s:\n    cmd: x\n    deps:\n"
        "    - path: s3://bucket/raw.csv\n      etag: abc\n"
        "    - path: remote.csv\n      checksum: abc\n"
        f"    outs:\n    - path: d\n      hash: md5\n      md5: {'b' * 32}.dir\n"
    )
    outs = dvc.verify_pointer(tmp_path / "dvc.lock")["outs"]
    assert [(o["error"], o["reason"]) for o in outs] == [
        ("unsupported", "external output s3://bucket/raw.csv is not verified"),
        ("unsupported", "remote.csv records no md5 (only checksum)"),
        ("unsupported", "d is under .dvcignore rules (.dvcignore), not reproduced here"),
    ]


BAD_POINTERS = {
    "garbled YAML": ("x.dvc", "outs: [\n", "x.dvc: not valid YAML"),
    "not a mapping": ("x.dvc", "- a\n", "x.dvc must be a mapping, got list"),
    "no outs": ("x.dvc", "deps: []\n", "x.dvc: outs must be a non-empty list"),
    "entry without path": ("x.dvc", f"outs:\n- md5: {'a' * 32}\n",
                           "x.dvc: outs[0].path must be a non-empty string"),
    "md5 not hex": ("x.dvc", "outs:\n- md5: xyz\n  path: a\n",
                    "x.dvc: outs[0].md5 must be 32 hex digits"),
    "unquoted numeric md5": ("x.dvc", f"outs:\n- md5: {'1' * 32}\n  path: a\n",
                             "x.dvc: outs[0].md5 must be 32 hex digits"),
    "unknown hash": ("x.dvc", f"outs:\n- md5: {'a' * 32}\n  hash: sha256\n  path: a\n",
                     "x.dvc: outs[0].hash is 'sha256'"),
    "repeated key": ("x.dvc", "outs: []\nouts: []\n", "x.dvc: found duplicate key 'outs'"),
    "lock schema 1": ("dvc.lock", "prepare:\n  cmd: x\n", "dvc.lock: schema is None"),
    "lock without entries": ("dvc.lock", "schema: '2.0'\nstages: {s: {cmd: x}}\n",
                             "dvc.lock: no stage records any deps or outs"),
    "lock entry not a mapping": ("dvc.lock", "schema: '2.0'\nstages:\n  s:\n    outs: [a]\n",
                                 "dvc.lock: stages.s.outs[0] must be a mapping"),
}


@pytest.mark.parametrize("case", list(BAD_POINTERS))
def test_a_garbled_pointer_is_a_format_error_naming_the_file(tmp_path: Path, case: str) -> None:
    name, text, message = BAD_POINTERS[case]
    (tmp_path / name).write_text(text)
    with pytest.raises(FormatError) as err:
        dvc.verify_pointer(tmp_path / name)
    assert message in err.value.message and str(tmp_path / name) in err.value.message


def test_a_templated_wdir_is_unsupported_not_guessed(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  fit:\n    foreach: [a, b]\n    do:\n      wdir: ${item}\n      cmd: x\n")
    (tmp_path / "dvc.lock").write_text(
        f"schema: '2.0'\nstages:\n  fit@a:\n    cmd: x\n    outs:\n"
        f"    - path: m.txt\n      hash: md5\n      md5: {'c' * 32}\n")
    (out,) = dvc.verify_pointer(tmp_path / "dvc.lock")["outs"]
    assert out["error"] == "unsupported" and "stage fit@a's wdir" in out["reason"]


# --- the evidence and the policy ---------------------------------------------------------------


def manifest(train_sha: str, **training: str) -> str:
    snapshot = (NOW - timedelta(days=5)).date().isoformat()
    extra = "".join(f", {k}: '{v}'" for k, v in training.items())
    return (
        f"model: {{name: {NAME}, version: '1', target_stage: staging}}\n"
        "artifact: {path: predictions.csv}\n"
        "code: {commit: 9f2c1e7}\n"
        "parameters: {C: 1.0}\n"
        f"training_data: {{source: internal_db, path: train.csv, sha256: '{train_sha}', "
        f"snapshot_date: {snapshot}{extra}}}\n"
        f"trained_at: {snapshot}T09:00:00Z\n"
    )


@needs_dvc
def test_run_checks_puts_the_dvc_verification_in_the_lineage(repo: Repo, tmp_path: Path) -> None:
    d = tmp_path / "version"
    d.mkdir()
    shutil.copy(repo.dir / "data.csv", d / "train.csv")
    (d / "train.csv.dvc").write_text(
        (repo.dir / "data.csv.dvc").read_text().replace("path: data.csv", "path: train.csv"))
    sha = hashlib.sha256((d / "train.csv").read_bytes()).hexdigest()
    (d / "manifest.yaml").write_text(manifest(sha, dvc="train.csv.dvc"))
    ev = run_checks(CheckSpec(manifest=d / "manifest.yaml", now=NOW))
    validate_evidence(ev)
    lin = ev["lineage"]
    assert lin["data_sha256_verified"] is True  # the SHA-256 check stands beside DVC's
    assert lin["dvc"]["verified"] is True and lin["dvc"]["pointer"] == "train.csv.dvc"
    assert str(tmp_path) not in json.dumps(lin)  # file names and digests only
    # training_data.source may itself name the pointer (no training_data.dvc).
    (d / "manifest.yaml").write_text(manifest(sha).replace("internal_db", "train.csv.dvc"))
    assert run_checks(CheckSpec(manifest=d / "manifest.yaml", now=NOW))["lineage"]["dvc"][
        "verified"] is True
    # No pointer named: no DVC verification, and a null, not an absent key.
    (d / "manifest.yaml").write_text(manifest(sha))
    assert run_checks(CheckSpec(manifest=d / "manifest.yaml", now=NOW))["lineage"]["dvc"] is None


def test_a_manifest_dvc_field_must_name_a_pointer(tmp_path: Path) -> None:
    from agent.checks.files import load_manifest

    (tmp_path / "m.yaml").write_text("training_data: {dvc: data.yaml}\n")
    with pytest.raises(FormatError, match="m.yaml: manifest field 'training_data.dvc' must "
                                          "name a .dvc file or a dvc.lock, got 'data.yaml'"):
        load_manifest(tmp_path / "m.yaml")


@dataclass(frozen=True)
class Governed:
    dir: Path
    data: Path
    engine: Any


@pytest.fixture(scope="module")
def governed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Governed]:
    """The node's validation data and the signed standard bundle's engine."""
    from trust.policy.bundle import PolicyBundle, read_bundle_file
    from trust.policy.engine import PolicyEngine
    from trust.root import TrustRoot

    d = tmp_path_factory.mktemp("dvc-governed")
    lines = ["id,income,sex,repaid"]
    for i in range(600):
        income = (i // 2) % 100
        lines.append(f"c{i},{income},{'F' if i % 2 else 'M'},{int(income >= 40)}")
    data = d / "validation.csv"
    data.write_text("\n".join(lines) + "\n")
    root = _world.write_root(d / "root.json")
    bundle_file = _world.write_standard_bundle(d / "standard.bundle")
    bundle = PolicyBundle.from_envelope(read_bundle_file(bundle_file),
                                        TrustRoot.load(root, now=NOW), now=NOW)
    with PolicyEngine(bundle) as engine:
        yield Governed(d, data, engine)


def publish(repo: Repo, gov: Governed, models: Path, version: str, *, md5: str | None = None,
            copy_data: bool = True) -> Path:
    """A version directory: predictions, card, training data + its .dvc (as `dvc add` wrote
    it, or with ``md5`` hand-edited in), the manifest naming both, READY last."""
    d = models / NAME / version
    d.mkdir(parents=True)
    labels = [line.rsplit(",", 1)[1] for line in gov.data.read_text().splitlines()[1:]]
    (d / "predictions.csv").write_text("prediction\n" + "\n".join(labels) + "\n")
    (d / "model_card.md").write_text(
        f"# {NAME}\n" + "".join(f"## {s}\nDescribed.\n" for s in _world.CARD_SECTIONS))
    text = (repo.dir / "data.csv.dvc").read_text().replace("path: data.csv", "path: train.csv")
    if md5 is not None:
        text = text.replace(recorded(repo.dir / "data.csv.dvc")[0]["md5"], md5)
    (d / "train.csv.dvc").write_text(text)
    raw = (repo.dir / "data.csv").read_bytes()
    if copy_data:
        (d / "train.csv").write_bytes(raw)
    (d / "manifest.yaml").write_text(
        manifest(hashlib.sha256(raw).hexdigest(), dvc="train.csv.dvc").replace(
            "version: '1'", f"version: '{version}'"))
    (d / "READY").touch()
    return d


@needs_dvc
def test_a_dvc_mismatch_blocks_the_version_through_the_standard_bundle(
    repo: Repo, governed: Governed, tmp_path: Path
) -> None:
    from agent.config import ModelConfig
    from agent.registry import DirectoryRegistry
    from agent.validation import validate_version

    models = tmp_path / "models"
    real = recorded(repo.dir / "data.csv.dvc")[0]["md5"]
    wrong = hashlib.md5(b"a different training set").hexdigest()
    publish(repo, governed, models, "1")
    publish(repo, governed, models, "2", md5=wrong)
    publish(repo, governed, models, "3", copy_data=False)
    registry = DirectoryRegistry(models)
    model = ModelConfig(name=NAME, data=governed.data, label="repaid", sensitive=("sex",))

    def decide(version: str) -> Any:
        return validate_version(model, registry.read(NAME, version), governed.engine, now=NOW,
                                work_dir=tmp_path / "work")

    # Predictions carry no scores, so ROC AUC is missing and denied in every case: the DVC
    # rules are what differs between the versions.
    good = decide("1")
    assert good.evidence["lineage"]["dvc"]["verified"] is True
    assert {v.rule for v in good.decision.violations} == {"performance.min_roc_auc"}
    assert good.policy_input["evidence"]["lineage"]["dvc"]["verified"] is True

    bad = decide("2")
    assert not bad.decision.allow
    dvc_rules = [v for v in bad.decision.violations if v.rule.startswith("lineage.")]
    assert [(v.rule, v.message) for v in dvc_rules] == [(
        "lineage.dvc_mismatch",
        f"training data train.csv (DVC pointer train.csv.dvc) hashes to md5 {real}, "
        f"the pointer records {wrong}",
    )]

    missing = decide("3")
    rules = {v.rule: v.message for v in missing.decision.violations}
    assert rules["lineage.dvc_missing"] == (
        "training data train.csv named by DVC pointer train.csv.dvc does not exist")
    assert "lineage.data_hash" in rules  # the SHA-256 check fails on its own, as before
