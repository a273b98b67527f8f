"""The directory registry on real directories: which versions are complete (READY), every
way a manifest or artefact can be wrong, the artefact digest, stage pointers that survive a
crash mid-write, and names that would escape the tree."""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.registry import (
    ARTEFACT_SUFFIXES,
    ArtefactKind,
    DirectoryRegistry,
    check_name,
)
from trust.errors import (
    DataError,
    DigestMismatchError,
    FormatError,
    NotFoundError,
    StorageFullError,
)

REPO = Path(__file__).resolve().parents[2]
ARTEFACT = b"\x08\x07onnx-model-bytes"
ARTEFACT_SHA = hashlib.sha256(ARTEFACT).hexdigest()
DATA_SHA = "ab" * 32

GOOD = f"""\
model:
  name: credit-risk
  version: "1.4.0"
  owner: risk-team
  framework: sklearn
  intended_use: retail credit scoring
  target_stage: production
  features: [age, income]
artifact: {{path: model.onnx, sha256: "{ARTEFACT_SHA}"}}
training_data: {{source: "s3://bucket/train.parquet", sha256: "{DATA_SHA}"}}
code: {{commit: "9f2c1e7"}}
parameters: {{max_depth: 6}}
trained_at: 2026-11-22T09:00:00Z
"""


def publish(
    root: Path,
    name: str = "credit-risk",
    version: str = "1.4.0",
    *,
    manifest: str | None = GOOD,
    artefact: tuple[str, bytes] | None = ("model.onnx", ARTEFACT),
    ready: bool = True,
) -> Path:
    """Write a version directory as a publisher would: files first, READY last."""
    d = root / name / version
    d.mkdir(parents=True)
    if artefact is not None:
        (d / artefact[0]).write_bytes(artefact[1])
    if manifest is not None:
        (d / "manifest.yaml").write_text(manifest)
    if ready:
        (d / "READY").touch()
    return d


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "models"
    r.mkdir()
    return r


# --- listing and completeness ----------------------------------------------------------------


def test_only_versions_with_ready_are_listed(root: Path) -> None:
    publish(root, version="1.4.0")
    publish(root, version="1.5.0", ready=False)  # still being copied
    publish(root, version="1.3.0")
    publish(root, "fraud", "2")
    reg = DirectoryRegistry(root)
    assert reg.models() == ("credit-risk", "fraud")
    assert reg.versions("credit-risk") == ("1.3.0", "1.4.0")
    with pytest.raises(NotFoundError, match="no such complete version"):
        reg.read("credit-risk", "1.5.0")
    (root / "credit-risk" / "1.5.0" / "READY").touch()  # the publisher finishes
    assert reg.versions("credit-risk") == ("1.3.0", "1.4.0", "1.5.0")


def test_listing_skips_unsafe_entries_stages_and_files(root: Path) -> None:
    publish(root, version="1")
    reg = DirectoryRegistry(root)
    reg.set_stage("credit-risk", "production", "1")
    (root / ".hidden").mkdir()
    (root / "a file.txt").write_text("x")
    (root / "notes.txt").write_text("a file, not a model directory")
    (root / "credit-risk" / ".partial").mkdir()
    (root / "credit-risk" / ".partial" / "READY").touch()
    (root / "credit-risk" / "stray").write_text("a file, not a version")
    assert reg.models() == ("credit-risk",)
    assert reg.versions("credit-risk") == ("1",)  # 'stages' is never a version


def test_unknown_model_and_missing_root(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="models: no such directory"):
        DirectoryRegistry(tmp_path / "models").models()
    (tmp_path / "models").mkdir()
    with pytest.raises(NotFoundError, match="no such model"):
        DirectoryRegistry(tmp_path / "models").versions("credit-risk")


# --- reading a version -----------------------------------------------------------------------


def test_read_returns_the_checked_manifest(root: Path) -> None:
    d = publish(root)
    v = DirectoryRegistry(root).read("credit-risk", "1.4.0")
    m = v.manifest
    assert (v.name, v.version, v.directory) == ("credit-risk", "1.4.0", d)
    assert v.artefact_path == d / "model.onnx" and v.manifest_path == d / "manifest.yaml"
    assert v.artefact_sha256 == ARTEFACT_SHA == m.artefact_sha256
    assert m.artefact_kind is ArtefactKind.ONNX
    assert (m.owner, m.framework, m.intended_use) == ("risk-team", "sklearn",
                                                      "retail credit scoring")
    assert m.target_stage == "production" and m.features == ("age", "income")
    assert m.training_data_uri == "s3://bucket/train.parquet"
    assert m.training_data_sha256 == DATA_SHA and m.code_commit == "9f2c1e7"
    assert m.trained_at == dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
    assert dict(m.parameters) == {"max_depth": 6}
    with pytest.raises(TypeError):
        m.parameters["max_depth"] = 7  # type: ignore[index]


def test_minimal_manifest_and_predictions_artefact(root: Path) -> None:
    minimal = "model: {target_stage: staging}\nartifact: {path: preds.csv}\n"
    publish(root, manifest=minimal, artefact=("preds.csv", b"y_pred\n1\n"))
    v = DirectoryRegistry(root).read("credit-risk", "1.4.0")
    assert v.manifest.artefact_kind is ArtefactKind.PREDICTIONS
    assert v.manifest.artefact_sha256 is None  # nothing declared: computed, not compared
    assert v.artefact_sha256 == hashlib.sha256(b"y_pred\n1\n").hexdigest()
    assert (v.manifest.owner, v.manifest.features, v.manifest.trained_at) == (None, None, None)


def _swap(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


BAD_MANIFESTS = {
    "garbled yaml": ("model: [unclosed\n", FormatError, ""),
    "not a mapping": ("- a list\n", FormatError, "must be a mapping"),
    "repeated key": (GOOD + "trained_at: 2026-11-23T00:00:00Z\n", FormatError, "trained_at"),
    "unknown top-level key": (GOOD + "stage: production\n", FormatError, "unknown manifest key"),
    "unknown model key": (_swap("owner:", "ownr:"), FormatError, "'model.ownr'"),
    "unquoted version": (_swap('"1.4.0"', "1.4"), FormatError, "model.version"),
    "bad digest": (_swap(f'"{ARTEFACT_SHA}"', '"abc"'), FormatError, "artifact.sha256"),
    "bad trained_at": (_swap("2026-11-22T09:00:00Z", "yesterday"), FormatError, "trained_at"),
    "no target stage": (_swap("  target_stage: production\n", ""), FormatError,
                        "model.target_stage' is missing"),
    "unsafe target stage": (_swap("target_stage: production", "target_stage: ../prod"),
                            FormatError, "not a safe name"),
    "no artefact path": (_swap("path: model.onnx, ", ""), FormatError,
                         "'artifact.path' is missing"),
    "artefact outside": (_swap("path: model.onnx", "path: ../model.onnx"), FormatError,
                         "inside the version directory"),
    "artefact absolute": (_swap("path: model.onnx", "path: /etc/passwd"), FormatError,
                          "inside the version directory"),
    "unknown artefact kind": (_swap("path: model.onnx", "path: model.bin"), FormatError,
                              "unknown kind"),
    "name mismatch": (_swap("name: credit-risk", "name: fraud"), FormatError,
                      "model.name is 'fraud'"),
    "version mismatch": (_swap('"1.4.0"', '"1.4.1"'), FormatError, "model.version is '1.4.1'"),
    "owner not a string": (_swap("owner: risk-team", "owner: 7"), FormatError, "model.owner"),
    "features not a list": (_swap("[age, income]", "age"), FormatError, "model.features"),
    "feature twice": (_swap("[age, income]", "[age, age]"), FormatError, "listed twice"),
    "non-utf8": ("model: {owner: \udcff}\n", FormatError, "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_bad_manifest_is_a_typed_error_naming_the_file(root: Path, case: str) -> None:
    text, error, words = BAD_MANIFESTS[case]
    d = publish(root, manifest=None)
    (d / "manifest.yaml").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(error) as info:
        DirectoryRegistry(root).read("credit-risk", "1.4.0")
    assert str(d / "manifest.yaml") in info.value.message
    assert words in info.value.message


def test_missing_manifest_in_a_ready_version(root: Path) -> None:
    d = publish(root, manifest=None)
    with pytest.raises(DataError, match="no such manifest file") as info:
        DirectoryRegistry(root).read("credit-risk", "1.4.0")
    assert str(d / "manifest.yaml") in info.value.message


def test_artefact_named_but_missing(root: Path) -> None:
    d = publish(root, artefact=None)
    with pytest.raises(DataError, match="does not exist") as info:
        DirectoryRegistry(root).read("credit-risk", "1.4.0")
    assert str(d / "model.onnx") in info.value.message
    assert str(d / "manifest.yaml") in info.value.message


def test_artefact_digest_checked_against_the_manifest(root: Path) -> None:
    d = publish(root)
    reg = DirectoryRegistry(root)
    assert reg.read("credit-risk", "1.4.0").artefact_sha256 == ARTEFACT_SHA
    (d / "model.onnx").write_bytes(ARTEFACT + b"tampered")
    with pytest.raises(DigestMismatchError, match="declares") as info:
        reg.read("credit-risk", "1.4.0")
    assert str(d / "model.onnx") in info.value.message and ARTEFACT_SHA in info.value.message


def test_artefact_symlink_may_not_lead_outside(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.onnx"
    outside.write_bytes(ARTEFACT)
    d = publish(root, artefact=None)
    (d / "model.onnx").symlink_to(outside)
    with pytest.raises(FormatError, match="leads outside the version directory"):
        DirectoryRegistry(root).read("credit-risk", "1.4.0")


# --- stage pointers --------------------------------------------------------------------------


def test_set_and_read_stage_pointers(root: Path) -> None:
    publish(root, version="1")
    publish(root, version="2")
    reg = DirectoryRegistry(root)
    assert reg.current("credit-risk", "production") is None and reg.stages("credit-risk") == {}
    reg.set_stage("credit-risk", "production", "1")
    reg.set_stage("credit-risk", "staging", "2")
    assert reg.current("credit-risk", "production") == "1"
    reg.set_stage("credit-risk", "production", "2")
    assert reg.stages("credit-risk") == {"production": "2", "staging": "2"}
    assert (root / "credit-risk" / "stages" / "production").read_text() == "2\n"


def test_stage_is_set_only_to_a_complete_version(root: Path) -> None:
    publish(root, version="1")
    publish(root, version="2", ready=False)
    reg = DirectoryRegistry(root)
    reg.set_stage("credit-risk", "production", "1")
    for version in ("2", "3"):
        with pytest.raises(NotFoundError, match="not changed"):
            reg.set_stage("credit-risk", "production", version)
    assert reg.current("credit-risk", "production") == "1"


def test_pointer_to_a_version_that_does_not_exist(root: Path) -> None:
    publish(root, version="1")
    reg = DirectoryRegistry(root)
    reg.set_stage("credit-risk", "production", "1")
    (root / "credit-risk" / "1" / "READY").unlink()
    pointer = root / "credit-risk" / "stages" / "production"
    for call in (lambda: reg.current("credit-risk", "production"),
                 lambda: reg.stages("credit-risk")):
        with pytest.raises(NotFoundError, match="names version '1'") as info:
            call()
        assert str(pointer) in info.value.message


@pytest.mark.parametrize("content", [b"", b"1", b"../1\n", b"1\n2\n", b"\xff\n", b"stages\n"])
def test_garbled_pointer(root: Path, content: bytes) -> None:
    publish(root, version="1")
    pointer = root / "credit-risk" / "stages" / "production"
    pointer.parent.mkdir()
    pointer.write_bytes(content)
    with pytest.raises((FormatError, NotFoundError)) as info:
        DirectoryRegistry(root).current("credit-risk", "production")
    assert str(pointer) in info.value.message


_CRASH = textwrap.dedent("""
    import os, sys
    from agent.registry import DirectoryRegistry
    os.replace = lambda *a, **k: os._exit(137)   # die after the temp file, before the rename
    DirectoryRegistry(sys.argv[1]).set_stage("credit-risk", "production", "2")
""")


def test_crash_mid_write_leaves_the_old_pointer(root: Path) -> None:
    publish(root, version="1")
    publish(root, version="2")
    reg = DirectoryRegistry(root)
    reg.set_stage("credit-risk", "production", "1")
    proc = subprocess.run([sys.executable, "-c", _CRASH, str(root)], cwd=REPO,
                          capture_output=True, timeout=60)
    assert proc.returncode == 137, proc.stderr
    stages = root / "credit-risk" / "stages"
    leftovers = [p.name for p in stages.iterdir() if p.name != "production"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".production.")
    assert (stages / leftovers[0]).read_text() == "2\n"  # the new content never got in place
    assert reg.current("credit-risk", "production") == "1"
    assert reg.stages("credit-risk") == {"production": "1"}  # the temp file is not a stage
    reg.set_stage("credit-risk", "production", "2")  # and the next write goes through
    assert reg.current("credit-risk", "production") == "2"


def test_disk_full_on_rename_keeps_the_old_pointer(root: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    publish(root, version="1")
    publish(root, version="2")
    reg = DirectoryRegistry(root)
    reg.set_stage("credit-risk", "production", "1")

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(StorageFullError, match="old pointer is unchanged"):
        reg.set_stage("credit-risk", "production", "2")
    monkeypatch.undo()
    assert sorted(p.name for p in (root / "credit-risk" / "stages").iterdir()) == ["production"]
    assert reg.current("credit-risk", "production") == "1"


# --- names -----------------------------------------------------------------------------------

BAD_NAMES = ["", ".", "..", "../x", "a/b", "a\\b", "/abs", ".hidden", "a b", "a\x00b",
             "x" * 129, "é"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_names_refused_everywhere(root: Path, bad: str) -> None:
    publish(root, version="1")
    reg = DirectoryRegistry(root)
    calls: list[Callable[[], object]] = [
        lambda: reg.versions(bad),
        lambda: reg.read(bad, "1"),
        lambda: reg.read("credit-risk", bad),
        lambda: reg.current("credit-risk", bad),
        lambda: reg.stages(bad),
        lambda: reg.set_stage("credit-risk", bad, "1"),
        lambda: reg.set_stage("credit-risk", "production", bad),
    ]
    for call in calls:
        with pytest.raises(FormatError, match="is not a safe name"):
            call()
    assert not (root / "credit-risk" / "stages").exists()  # nothing was written


def test_name_rules() -> None:
    for good in ("credit-risk", "1.4.0", "v2_rc1", "A", "x" * 128):
        assert check_name(good, what="name") == good
    with pytest.raises(FormatError, match="model name 7 is not a safe name"):
        check_name(7, what="model name")


def test_version_named_stages_is_reserved(root: Path) -> None:
    publish(root, version="1")
    reg = DirectoryRegistry(root)
    with pytest.raises(FormatError, match="reserved"):
        reg.set_stage("credit-risk", "production", "stages")
    with pytest.raises(FormatError, match="reserved"):
        reg.read("credit-risk", "stages")


# --- the suffix table and the idle daemon ----------------------------------------------------


def test_artefact_suffixes_agree_with_the_loaders() -> None:
    from agent.data import file_format
    from agent.predict import MODEL_SUFFIXES

    for suffix, kind in ARTEFACT_SUFFIXES.items():
        if kind is ArtefactKind.PREDICTIONS:
            file_format(f"p{suffix}")  # raises DataError for a format agent.data cannot read
        else:
            assert MODEL_SUFFIXES[suffix] == kind.value


def test_import_is_light() -> None:
    code = ("import sys, agent.registry; "
            "print(sorted(m for m in ('numpy', 'pyarrow', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
