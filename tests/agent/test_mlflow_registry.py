"""The MLflow registry against a real local MLflow store (sqlite:/// + file:// artefacts):
models and versions as MLflow lists them, the manifest synthesized from the version and its
run, artefacts downloaded once and loadable, stages as aliases, write-back as version tags,
a version registered while the registry is in use, versions without a usable artefact, and
an MLflow that is down. The interface both registries share (stages, annotations) runs on
the directory registry too, and its ``mlflow`` configuration section is parsed here."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.checks.files import load_manifest
from agent.checks.lineage import lineage_evidence
from agent.mlflow_registry import (
    DEFAULT_ALIASES,
    MlflowRegistry,
    MlflowRegistryConfig,
    parse_mlflow_registry,
)
from agent.registry import (
    ANNOTATION_DECISION,
    ANNOTATION_LEDGER_INDEX,
    ANNOTATION_POLICY,
    ANNOTATION_RECORD_SEQ,
    ArtefactKind,
    DirectoryRegistry,
    Registry,
)
from tests.agent.mlflow_world import COMMIT, DATA_SHA, PARAMS, REPO_URL, MlflowWorld
from trust.errors import (
    ConfigError,
    DigestMismatchError,
    FormatError,
    NotFoundError,
    StorageFullError,
    StorageUnavailableError,
)

REPO = Path(__file__).resolve().parents[2]
NAME = "credit-risk"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> MlflowWorld:
    """One store for the module; ``credit-risk`` 1 (skops, tagged) and 2 (pickle)."""
    w = MlflowWorld(tmp_path_factory.mktemp("mlflow"))
    w.log_version(NAME, version_tags={"warden.target_stage": "production"},
                  description="retail credit scoring")
    w.log_version(NAME, serialization_format="pickle")
    return w


@pytest.fixture(scope="module")
def model_dir(world: MlflowWorld, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding only a .skops model: the source of cheap versions."""
    import skops.io as sio

    d = tmp_path_factory.mktemp("plain-model")
    sio.dump(world.model()[0], d / "model.skops")
    return d


@pytest.fixture
def registry(world: MlflowWorld, tmp_path: Path) -> MlflowRegistry:
    return MlflowRegistry(world.uri, cache_dir=tmp_path / "cache")


_names = iter(range(10_000))


def fresh(prefix: str = "m") -> str:
    """A model name no other test in this module uses."""
    return f"{prefix}-{next(_names)}"


# --- import and reading -----------------------------------------------------------------------


def test_importing_the_module_loads_no_mlflow_and_nothing_heavy() -> None:
    code = ("import sys, agent.mlflow_registry; "
            "print(sorted(m for m in ('mlflow', 'numpy', 'pandas', 'pyarrow', 'sqlalchemy', "
            "'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_models_and_versions_as_mlflow_lists_them(world: MlflowWorld,
                                                  registry: MlflowRegistry) -> None:
    assert NAME in registry.models()
    assert registry.versions(NAME) == ("1", "2")
    only = MlflowRegistry(world.uri, cache_dir=registry.cache_dir, models=[NAME, "absent"])
    assert only.models() == (NAME,)


def test_read_synthesizes_the_manifest_from_the_version_and_its_run(
    registry: MlflowRegistry,
) -> None:
    mv = registry.read(NAME, "1")
    m = mv.manifest
    assert (m.name, m.version, m.target_stage) == (NAME, "1", "production")
    assert m.artefact == "artifacts/model.skops" and m.artefact_kind is ArtefactKind.SKOPS
    assert m.owner == "risk-team"  # the run's owner tag beats mlflow.user
    assert m.framework == "sklearn"
    assert m.intended_use == "retail credit scoring"  # the version's description
    assert m.features == ("income", "debt_ratio", "age", "credit_history_years",
                          "open_accounts", "unemployed", "self_employed")
    assert m.training_data_uri == "s3://bucket/credit/train.parquet"
    assert m.training_data_sha256 == DATA_SHA
    assert m.code_commit == COMMIT
    assert dict(m.parameters) == {k: str(v) for k, v in PARAMS.items()}
    assert m.trained_at is not None and m.trained_at.tzinfo is not None
    assert abs(time.time() - m.trained_at.timestamp()) < 3600
    # The artefact's digest is the file's, and the manifest declares it.
    assert m.artefact_sha256 == mv.artefact_sha256
    assert mv.artefact_path == registry.cache_dir / NAME / "1" / "artifacts" / "model.skops"
    assert mv.directory == mv.artefact_path.parent
    # The manifest on disk is one the lineage check reads as it reads any other.
    doc = load_manifest(mv.manifest_path)
    assert doc["code"] == {"commit": COMMIT, "repository": REPO_URL}
    lineage = lineage_evidence(doc, model_sha256=mv.artefact_sha256, now=m.trained_at)
    assert lineage["model_sha256_verified"] is True


def test_the_artefact_loads_and_predicts_like_the_logged_model(
    world: MlflowWorld, registry: MlflowRegistry,
) -> None:
    import numpy as np

    from agent.predict import load_model

    mv = registry.read(NAME, "1")
    assert mv.manifest.features is not None
    loaded = load_model(mv.artefact_path).with_features(mv.manifest.features)
    columns = {c: world.table[c].to_numpy() for c in mv.manifest.features}
    y_pred, y_score = loaded.predict(columns)
    trained, features = world.model()
    x = np.column_stack([columns[c] for c in features]).astype(np.float64)
    assert np.array_equal(y_pred, trained.predict(x))
    assert y_score is not None and np.allclose(y_score, trained.predict_proba(x)[:, 1])


def test_the_agents_checks_run_on_an_mlflow_version(
    world: MlflowWorld, registry: MlflowRegistry, tmp_path: Path,
) -> None:
    import datetime as dt

    import pyarrow.parquet as pq

    from agent.config import ModelConfig
    from agent.validation import version_checks

    data = tmp_path / "validation.parquet"
    pq.write_table(world.table, data)
    mv = registry.read(NAME, "1")
    model = ModelConfig(name=NAME, data=data, label="repaid", sensitive=("sex",))
    evidence = version_checks(model, mv, now=dt.datetime.now(dt.UTC), work_dir=tmp_path / "w")
    lineage = evidence["lineage"]
    assert lineage["model_sha256_verified"] is True
    assert (lineage["code_commit"], lineage["data_sha256"]) == (COMMIT, DATA_SHA)
    assert evidence["performance"]["n"] == world.table.num_rows
    assert evidence["performance"]["accuracy"] > 0.8


def test_a_pickled_version_is_a_joblib_artefact_that_needs_trust(
    registry: MlflowRegistry,
) -> None:
    from agent.predict import load_model
    from trust.errors import UsageError

    mv = registry.read(NAME, "2")
    assert mv.manifest.artefact == "artifacts/model.pkl"
    assert mv.manifest.artefact_kind is ArtefactKind.JOBLIB
    assert mv.manifest.target_stage == "staging"  # no tag: the default stage
    with pytest.raises(UsageError, match="pickle"):
        load_model(mv.artefact_path)
    assert load_model(mv.artefact_path, trusted_pickle=True).classes == (0, 1)


def test_a_version_registered_while_the_registry_is_in_use_is_listed_next_time(
    world: MlflowWorld, tmp_path: Path,
) -> None:
    name = fresh("live")
    world.log_version(name)
    reg = MlflowRegistry(world.uri, cache_dir=tmp_path / "cache")
    assert reg.versions(name) == ("1",)
    assert reg.read(name, "1").manifest.version == "1"
    world.log_version(name, version_tags={"warden.target_stage": "production"})
    assert reg.versions(name) == ("1", "2")
    assert reg.read(name, "2").manifest.target_stage == "production"


def test_versions_are_ordered_by_number(world: MlflowWorld, model_dir: Path,
                                        registry: MlflowRegistry) -> None:
    name = fresh("many")
    for _ in range(11):
        world.register_directory(name, model_dir)
    assert registry.versions(name) == tuple(str(i) for i in range(1, 12))


def test_downloaded_once_reused_and_a_changed_copy_refused(registry: MlflowRegistry) -> None:
    first = registry.read(NAME, "1")
    marker = registry.cache_dir / NAME / "1" / "download.json"
    before = marker.stat()
    again = registry.read(NAME, "1")
    after = marker.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert again.artefact_sha256 == first.artefact_sha256
    # No temporary download directory is left beside the version.
    assert sorted(p.name for p in (registry.cache_dir / NAME).iterdir()) == ["1"]
    with first.artefact_path.open("ab") as f:
        f.write(b"\0")
    with pytest.raises(DigestMismatchError, match="when downloaded from models:/") as info:
        registry.read(NAME, "1")
    assert info.value.hint == f"the cached copy changed; remove {first.artefact_path.parents[1]} " \
        "to download it again"


def test_a_corrected_tag_is_seen_by_the_next_read(world: MlflowWorld, model_dir: Path,
                                                  registry: MlflowRegistry) -> None:
    name = fresh("retag")
    v = world.register_directory(name, model_dir, tags={"intended_use": "first"})
    assert registry.read(name, v).manifest.intended_use == "first"
    world.client.set_model_version_tag(name, v, "intended_use", "second")
    assert registry.read(name, v).manifest.intended_use == "second"


def test_a_model_file_without_mlmodel_is_found_and_version_tags_carry_lineage(
    world: MlflowWorld, model_dir: Path, registry: MlflowRegistry,
) -> None:
    name = fresh("plain")
    v = world.register_directory(name, model_dir, tags={
        "warden.target_stage": "production", "owner": "ops", "data_uri": "file:///d.parquet",
        "dvc_data_hash": "sha256:" + "AB" * 32, "mlflow.source.git.commit": "abc",
        "data_dvc": "data/train.parquet.dvc"})
    mv = registry.read(name, v)
    m = mv.manifest
    # The DVC pointer is one of the version's artefacts: relative to the manifest, under
    # artifacts/ (where agent.checks.run looks for it).
    assert load_manifest(mv.manifest_path)["training_data"]["dvc"] == \
        "artifacts/data/train.parquet.dvc"
    assert (m.artefact, m.framework, m.features) == ("artifacts/model.skops", None, None)
    assert (m.owner, m.training_data_uri, m.code_commit) == ("ops", "file:///d.parquet", "abc")
    assert m.training_data_sha256 == "ab" * 32
    assert dict(m.parameters) == {}  # no run: nothing logged
    assert m.trained_at is not None  # the version's creation time


@pytest.mark.parametrize(("tags", "expect"), [
    ({"data_hash": "md5:" + "0f" * 16}, None),  # DVC's MD5 is not a SHA-256
    ({"dvc_data_hash": "0f" * 16 + ".dir"}, None),
    ({"data_hash": "0f" * 16, "dvc_data_hash": "cd" * 32}, "cd" * 32),
])
def test_data_hash_tags(world: MlflowWorld, model_dir: Path, registry: MlflowRegistry,
                        tags: dict[str, str], expect: str | None) -> None:
    name = fresh("hash")
    v = world.register_directory(name, model_dir, tags=tags)
    assert registry.read(name, v).manifest.training_data_sha256 == expect


BAD_TAGS = {
    "garbled data hash": ({"data_hash": "not-a-digest"}, "tag 'data_hash'"),
    "unsafe target stage": ({"warden.target_stage": "../prod"}, "warden.target_stage"),
    "pointer outside": ({"data_dvc": "../../etc/data.dvc"}, "data_dvc"),
    "pointer not DVC's": ({"data_dvc": "train.parquet"}, "must name a .dvc file"),
}


@pytest.mark.parametrize("case", sorted(BAD_TAGS))
def test_bad_tags_are_format_errors_naming_model_version_and_tag(
    world: MlflowWorld, model_dir: Path, registry: MlflowRegistry, case: str,
) -> None:
    tags, needle = BAD_TAGS[case]
    name = fresh("badtag")
    v = world.register_directory(name, model_dir, tags=tags)
    with pytest.raises(FormatError) as info:
        registry.read(name, v)
    assert f"{name!r} version {v}" in info.value.message and needle in info.value.message


def test_target_stage_tag_required_when_there_is_no_default(
    world: MlflowWorld, model_dir: Path, tmp_path: Path,
) -> None:
    name = fresh("nostage")
    v = world.register_directory(name, model_dir)
    strict = MlflowRegistry(world.uri, cache_dir=tmp_path / "c", default_stage=None)
    with pytest.raises(FormatError, match="no tag 'warden.target_stage'"):
        strict.read(name, v)


def _write_mlmodel(d: Path, text: str) -> Path:
    (d / "MLmodel").write_text(text)
    return d


# Each: what the version's source directory holds; the refusal's words.
BAD_ARTEFACTS: dict[str, tuple[Callable[[Path], object], str]] = {
    "empty": (lambda d: None, "has no artefact"),
    "missing source": (lambda d: d.rmdir(), "has no artefact"),
    "no model file": (lambda d: (d / "README.md").write_text("hi"), "0 model files"),
    "two model files": (lambda d: [(d / n).write_bytes(b"x") for n in ("a.skops", "b.onnx")],
                        "2 model files"),
    "unloadable flavor": (lambda d: _write_mlmodel(
        d, "flavors:\n  python_function: {loader_module: x}\n  xgboost: {data: m.xgb}\n"),
        "none that Warden loads"),
    "flavor names a missing file": (lambda d: _write_mlmodel(
        d, "flavors:\n  sklearn: {pickled_model: model.skops}\n"), "is missing"),
    "unknown suffix": (lambda d: (_write_mlmodel(
        d, "flavors:\n  sklearn: {pickled_model: model.bin}\n"),
        (d / "model.bin").write_bytes(b"x")), "unknown kind"),
    "garbled MLmodel": (lambda d: _write_mlmodel(d, "flavors: [unclosed\n"),
                        "not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARTEFACTS))
def test_a_version_without_a_usable_artefact_is_a_format_error(
    world: MlflowWorld, registry: MlflowRegistry, tmp_path: Path, case: str,
) -> None:
    make, needle = BAD_ARTEFACTS[case]
    source = tmp_path / "source"
    source.mkdir()
    make(source)
    name = fresh("bad")
    v = world.register_directory(name, source)
    assert registry.versions(name) == (v,)  # READY in MLflow: listed, then refused
    with pytest.raises(FormatError) as info:
        registry.read(name, v)
    assert f"{name!r} version {v}" in info.value.message and needle in info.value.message
    # Nothing half-downloaded stays behind: the next read tries again from scratch.
    assert not (registry.cache_dir / name).exists() or not any(
        (registry.cache_dir / name).iterdir())


def test_missing_models_and_versions_are_not_found(registry: MlflowRegistry) -> None:
    for call in (lambda: registry.versions("absent"), lambda: registry.read("absent", "1"),
                 lambda: registry.read(NAME, "99"), lambda: registry.read(NAME, "one"),
                 lambda: registry.current("absent", "production"),
                 lambda: registry.stages("absent")):
        with pytest.raises(NotFoundError):
            call()
    filtered = MlflowRegistry(registry.tracking_uri, cache_dir=registry.cache_dir,
                              models=["other"])
    with pytest.raises(NotFoundError, match="not one of the models this node serves"):
        filtered.versions(NAME)


def test_models_with_unsafe_names_are_not_listed(world: MlflowWorld,
                                                 registry: MlflowRegistry) -> None:
    world.client.create_registered_model("Credit Risk (old)")
    assert "Credit Risk (old)" not in registry.models()
    with pytest.raises(FormatError, match="not a safe name"):
        registry.versions("Credit Risk (old)")


# --- stages are aliases -----------------------------------------------------------------------


def test_stages_are_mlflow_aliases_never_the_deprecated_stages(
    world: MlflowWorld, model_dir: Path, registry: MlflowRegistry,
) -> None:
    name = fresh("alias")
    v1 = world.register_directory(name, model_dir)
    v2 = world.register_directory(name, model_dir)
    assert registry.current(name, "production") is None and registry.stages(name) == {}
    registry.set_stage(name, "production", v1)
    assert str(world.client.get_model_version_by_alias(name, "champion").version) == v1
    assert registry.current(name, "production") == v1
    # An operator moving an alias in the MLflow UI is what the registry reports.
    world.client.set_registered_model_alias(name, "challenger", v2)
    assert registry.stages(name) == {"production": v1, "staging": v2}
    # An alias that is no stage of this node is not one.
    world.client.set_registered_model_alias(name, "shadow", v2)
    assert registry.stages(name) == {"production": v1, "staging": v2}
    for v in (v1, v2):
        assert world.client.get_model_version(name, v).current_stage == "None"


def test_aliases_are_configurable_and_an_unmapped_stage_is_a_config_error(
    world: MlflowWorld, model_dir: Path, tmp_path: Path,
) -> None:
    name = fresh("custom")
    v = world.register_directory(name, model_dir)
    reg = MlflowRegistry(world.uri, cache_dir=tmp_path / "c", aliases={"production": "prod"})
    reg.set_stage(name, "production", v)
    assert str(world.client.get_model_version_by_alias(name, "prod").version) == v
    with pytest.raises(ConfigError, match="stage 'staging' has no MLflow alias"):
        reg.set_stage(name, "staging", v)
    with pytest.raises(ConfigError, match="no MLflow alias"):
        reg.current(name, "staging")


def test_set_stage_to_a_missing_version_changes_nothing(
    world: MlflowWorld, model_dir: Path, registry: MlflowRegistry,
) -> None:
    name = fresh("nostage")
    v = world.register_directory(name, model_dir)
    registry.set_stage(name, "production", v)
    with pytest.raises(NotFoundError):
        registry.set_stage(name, "production", "7")
    assert registry.current(name, "production") == v


# --- write-back -------------------------------------------------------------------------------


def test_annotations_are_version_tags_visible_in_mlflow(
    world: MlflowWorld, model_dir: Path, registry: MlflowRegistry,
) -> None:
    name = fresh("note")
    v = world.register_directory(name, model_dir, tags={"owner": "risk-team"})
    registry.annotate(name, v, {ANNOTATION_DECISION: "promote", ANNOTATION_RECORD_SEQ: "7",
                                ANNOTATION_POLICY: "standard v3"})
    registry.annotate(name, v, {ANNOTATION_LEDGER_INDEX: "41", ANNOTATION_DECISION: "block"})
    tags = world.client.get_model_version(name, v).tags
    assert tags == {"owner": "risk-team", "warden.decision": "block", "warden.record_seq": "7",
                    "warden.policy": "standard v3", "warden.ledger_index": "41"}
    assert registry.annotations(name, v) == tags


# --- MLflow unavailable -----------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _every_call(reg: Registry) -> list[Callable[[], Any]]:
    return [reg.models, lambda: reg.versions(NAME), lambda: reg.read(NAME, "1"),
            lambda: reg.current(NAME, "production"), lambda: reg.stages(NAME),
            lambda: reg.set_stage(NAME, "production", "1"),
            lambda: reg.annotate(NAME, "1", {ANNOTATION_DECISION: "promote"})]


def test_a_server_that_is_down_is_storage_unavailable_within_seconds(tmp_path: Path) -> None:
    uri = f"http://warden:s3cret@127.0.0.1:{_closed_port()}"
    reg = MlflowRegistry(uri, cache_dir=tmp_path / "c")
    for call in _every_call(reg):
        t = time.monotonic()
        with pytest.raises(StorageUnavailableError) as info:
            call()
        assert time.monotonic() - t < 10
        message = info.value.message
        assert "MLflow at http://warden:***@127.0.0.1:" in message and "s3cret" not in message
        assert "retries on its next pass" in (info.value.hint or "")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield int(s.getsockname()[1])
    s.close()


def test_a_server_that_never_answers_times_out(tmp_path: Path, silent_server: int) -> None:
    reg = MlflowRegistry(f"http://127.0.0.1:{silent_server}", cache_dir=tmp_path / "c",
                         request_timeout=1, max_retries=0)
    t = time.monotonic()
    with pytest.raises(StorageUnavailableError, match="is unavailable: cannot list"):
        reg.models()
    assert time.monotonic() - t < 6


def test_a_missing_sqlite_store_is_unavailable_and_never_created(tmp_path: Path) -> None:
    db = tmp_path / "later" / "mlflow.db"
    reg = MlflowRegistry(f"sqlite:///{db}", cache_dir=tmp_path / "c")
    for call in _every_call(reg):
        with pytest.raises(StorageUnavailableError, match="no database file"):
            call()
    assert not db.parent.exists()


def test_a_garbled_sqlite_store_is_unavailable(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not a database" * 100)
    reg = MlflowRegistry(f"sqlite:///{db}", cache_dir=tmp_path / "c")
    with pytest.raises(StorageUnavailableError, match="file is not a database"):
        reg.models()


def test_the_process_wide_mlflow_uri_is_never_used(
    world: MlflowWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # MLflow's default store is ./mlflow.db
    reg = MlflowRegistry(world.uri, cache_dir=tmp_path / "cache")
    reg.read(NAME, "1")
    reg.stages(NAME)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


# --- the interface both registries share ------------------------------------------------------

MANIFEST = """\
model: {target_stage: production}
artifact: {path: model.onnx}
"""


class Backend:
    """A registry and a way to publish a complete version of a model in it."""

    def __init__(self, registry: Registry, publish: Callable[[str], str]) -> None:
        self.registry = registry
        self.publish = publish


@pytest.fixture(params=["directory", "mlflow"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "directory":
        root = tmp_path / "models"
        counts: dict[str, int] = {}

        def publish_dir(name: str) -> str:
            counts[name] = counts.get(name, 0) + 1
            d = root / name / str(counts[name])
            d.mkdir(parents=True)
            (d / "model.onnx").write_bytes(b"onnx")
            (d / "manifest.yaml").write_text(MANIFEST)
            (d / "READY").touch()
            return str(counts[name])

        return Backend(DirectoryRegistry(root), publish_dir)
    world: MlflowWorld = request.getfixturevalue("world")
    source: Path = request.getfixturevalue("model_dir")
    return Backend(MlflowRegistry(world.uri, cache_dir=tmp_path / "cache"),
                   lambda name: world.register_directory(name, source))


def test_shared_stages(backend: Backend) -> None:
    reg, name = backend.registry, fresh("shared")
    v1, v2 = backend.publish(name), backend.publish(name)
    assert reg.versions(name) == (v1, v2)
    assert reg.current(name, "staging") is None
    reg.set_stage(name, "staging", v1)
    reg.set_stage(name, "production", v2)
    reg.set_stage(name, "staging", v2)
    assert reg.stages(name) == {"staging": v2, "production": v2}
    with pytest.raises(NotFoundError):
        reg.set_stage(name, "production", "9")
    assert reg.current(name, "production") == v2


def test_shared_annotations(backend: Backend) -> None:
    reg, name = backend.registry, fresh("shared")
    v = backend.publish(name)
    before = reg.annotations(name, v)
    reg.annotate(name, v, {ANNOTATION_DECISION: "promote", ANNOTATION_RECORD_SEQ: "3"})
    reg.annotate(name, v, {ANNOTATION_LEDGER_INDEX: "12"})
    assert reg.annotations(name, v) == {**before, "warden.decision": "promote",
                                        "warden.record_seq": "3", "warden.ledger_index": "12"}
    with pytest.raises(NotFoundError):
        reg.annotate(name, "9", {ANNOTATION_DECISION: "promote"})


@pytest.mark.parametrize("tags", [{}, {"": "x"}, {".hidden": "x"}, {"a b": "x"},
                                  {"k": 3}, {"k": "x" * 5001}, {"k" * 251: "x"}])
def test_shared_bad_annotations_are_refused(backend: Backend, tags: dict[str, Any]) -> None:
    reg, name = backend.registry, fresh("shared")
    v = backend.publish(name)
    with pytest.raises(FormatError):
        reg.annotate(name, v, tags)


def test_directory_annotations_live_beside_the_versions_never_in_them(tmp_path: Path) -> None:
    root = tmp_path / "models"
    reg = DirectoryRegistry(root)
    d = root / NAME / "1"
    d.mkdir(parents=True)
    (d / "model.onnx").write_bytes(b"onnx")
    (d / "manifest.yaml").write_text(MANIFEST)
    (d / "READY").touch()
    files = sorted(p.name for p in d.iterdir())
    reg.annotate(NAME, "1", {ANNOTATION_DECISION: "promote"})
    assert sorted(p.name for p in d.iterdir()) == files
    path = root / NAME / "annotations" / "1.json"
    assert path.is_file() and reg.versions(NAME) == ("1",)
    with pytest.raises(FormatError, match="reserved"):
        reg.read(NAME, "annotations")

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    original = os.replace
    os.replace = full  # type: ignore[assignment]
    try:
        with pytest.raises(StorageFullError, match="old annotations is unchanged"):
            reg.annotate(NAME, "1", {ANNOTATION_DECISION: "block"})
    finally:
        os.replace = original
    assert reg.annotations(NAME, "1") == {"warden.decision": "promote"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["1.json"]
    path.write_text('{"schema": "something else"}')
    with pytest.raises(FormatError, match="not the warden.registry-annotations/v1"):
        reg.annotations(NAME, "1")


# --- configuration ----------------------------------------------------------------------------


def test_parse_defaults_and_relative_sqlite(tmp_path: Path) -> None:
    cfg = parse_mlflow_registry({"tracking_uri": "sqlite:///mlflow.db"}, at="mlflow",
                                where="agent.yaml", base=tmp_path)
    assert cfg.tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"
    assert cfg.registry_uri is None and dict(cfg.aliases) == dict(DEFAULT_ALIASES)
    assert (cfg.models, cfg.default_stage, cfg.request_timeout, cfg.max_retries) == \
        (None, "staging", 5, 1)
    reg = cfg.registry(state_dir=tmp_path / "state")
    assert reg.cache_dir == tmp_path / "state" / "mlflow-cache"
    full = parse_mlflow_registry({
        "tracking_uri": "http://mlflow:5000", "registry_uri": "postgresql://db/mlflow",
        "aliases": {"production": "prod", "canary": "canary"}, "models": ["a", "b"],
        "cache_dir": "cache", "default_stage": None, "request_timeout": "20",
        "max_retries": 0}, at="mlflow", where="agent.yaml", base=tmp_path)
    assert full == MlflowRegistryConfig(
        "http://mlflow:5000", "postgresql://db/mlflow", {"production": "prod",
                                                        "canary": "canary"},
        ("a", "b"), tmp_path / "cache", None, 20, 0)


BAD_CONFIG: dict[str, tuple[Any, str]] = {
    "not a mapping": ("http://x", "must be a mapping"),
    "unknown key": ({"tracking_uri": "http://x", "stage": "x"}, "unknown key mlflow.stage"),
    "no tracking uri": ({"aliases": {}}, "missing key mlflow.tracking_uri"),
    "bare path": ({"tracking_uri": "/var/mlflow"}, "not an MLflow store URI"),
    "memory": ({"tracking_uri": "sqlite:///:memory:"}, "names no database file"),
    "bad registry uri": ({"tracking_uri": "http://x", "registry_uri": "mlruns"},
                         "mlflow.registry_uri"),
    "empty aliases": ({"tracking_uri": "http://x", "aliases": {}}, "must map each stage"),
    "latest": ({"tracking_uri": "http://x", "aliases": {"production": "latest"}},
               "not an MLflow alias"),
    "version alias": ({"tracking_uri": "http://x", "aliases": {"production": "v2"}},
                      "not an MLflow alias"),
    "bad alias chars": ({"tracking_uri": "http://x", "aliases": {"production": "a.b"}},
                        "not an MLflow alias"),
    "shared alias": ({"tracking_uri": "http://x", "aliases": {"production": "a",
                                                             "staging": "a"}},
                     "both use alias 'a'"),
    "bad stage": ({"tracking_uri": "http://x", "aliases": {"Prod": "a"}}, "stage 'Prod'"),
    "models not a list": ({"tracking_uri": "http://x", "models": "a"}, "non-empty list"),
    "unsafe model": ({"tracking_uri": "http://x", "models": ["a/b"]}, "not a safe name"),
    "repeated model": ({"tracking_uri": "http://x", "models": ["a", "a"]}, "twice"),
    "bad default stage": ({"tracking_uri": "http://x", "default_stage": "Prod"},
                          "default_stage"),
    "zero timeout": ({"tracking_uri": "http://x", "request_timeout": 0}, "from 1 to 600"),
    "fractional timeout": ({"tracking_uri": "http://x", "request_timeout": 2.5},
                           "whole number"),
    "too many retries": ({"tracking_uri": "http://x", "max_retries": 11}, "from 0 to 10"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIG))
def test_parse_refuses(case: str, tmp_path: Path) -> None:
    value, needle = BAD_CONFIG[case]
    with pytest.raises(ConfigError) as info:
        parse_mlflow_registry(value, at="mlflow", where="agent.yaml", base=tmp_path)
    assert info.value.message.startswith("agent.yaml: ")
    assert needle in info.value.message
