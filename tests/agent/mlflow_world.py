"""A real local MLflow store for the tests: a ``sqlite:///`` database and a ``file://``
artifact root in a temporary directory, with scikit-learn models trained on the credit data
of ``bench/gen_credit_model.py`` and logged the way a data scientist logs them
(``mlflow.sklearn.log_model(..., registered_model_name=...)`` inside a run with params and
tags).

The first client on a new database creates its tables (1-3 s), so a test module makes one
world and registers new model names in it rather than a store per test. MLflow's fluent API
(``log_model``) needs the process-wide tracking URI: it is set only while logging and reset
afterwards, so the registry under test cannot lean on it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# As agent.mlflow_registry sets them: MLflow's loggers propagate, no progress bars.
os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402
import mlflow.sklearn  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.models.signature import ModelSignature  # noqa: E402
from mlflow.types.schema import ColSpec, Schema  # noqa: E402

# bench/ holds an agent.py: on sys.path only while importing the trainer, or it would shadow
# the agent package for whatever imports it later.
_saved_path = list(sys.path)
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from gen_credit_model import credit_table, train_model  # type: ignore[import-not-found]  # noqa: E402, I001

sys.path[:] = _saved_path

DATA_SHA = "5e" * 32
COMMIT = "9f2c1e7d3b"
REPO_URL = "https://git.example/risk/credit-model"
RUN_TAGS = {
    "mlflow.source.git.commit": COMMIT,
    "mlflow.source.git.repoURL": REPO_URL,
    "data_uri": "s3://bucket/credit/train.parquet",
    "data_hash": DATA_SHA,
    "owner": "risk-team",
}
PARAMS = {"algorithm": "logistic_regression", "C": 1.0, "max_iter": 500}
# Enough for log_model not to resolve the environment (which takes seconds).
PIP = ["scikit-learn", "skops"]


class MlflowWorld:
    """One MLflow store under ``root``: ``uri`` for the registry, ``client`` to arrange
    things as a trainer or an operator would."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.db = root / "mlflow.db"
        self.uri = f"sqlite:///{self.db}"
        self.artifacts = root / "artifacts"
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        self.experiment_id = self.client.create_experiment(
            "warden-tests", artifact_location=self.artifacts.as_uri())
        self.table = credit_table(600, seed=3)
        self._models: dict[int, tuple[Any, tuple[str, ...]]] = {}

    def model(self, *, bias: float = 0.0) -> tuple[Any, tuple[str, ...]]:
        """A fitted pipeline and its feature columns (trained once per bias)."""
        key = int(bias * 100)
        if key not in self._models:
            self._models[key] = train_model(self.table, bias=bias, seed=3)
        return self._models[key]

    @contextmanager
    def _fluent(self) -> Iterator[None]:
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        try:
            yield
        finally:
            # None resets them (MLflow's annotations do not say so).
            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
            mlflow.set_registry_uri(None)  # type: ignore[arg-type]

    def log_version(
        self,
        name: str,
        *,
        serialization_format: str = "skops",
        params: Mapping[str, Any] | None = None,
        run_tags: Mapping[str, str] | None = None,
        version_tags: Mapping[str, str] | None = None,
        description: str | None = None,
        signature: bool = True,
        bias: float = 0.0,
    ) -> str:
        """Train (once), log and register a new version of ``name``; its version number."""
        model, features = self.model(bias=bias)
        sig = ModelSignature(inputs=Schema([ColSpec("double", f) for f in features])) \
            if signature else None
        with self._fluent(), mlflow.start_run(experiment_id=self.experiment_id) as run:
            mlflow.log_params(dict(PARAMS if params is None else params))
            mlflow.set_tags(dict(RUN_TAGS if run_tags is None else run_tags))
            info = mlflow.sklearn.log_model(
                model, name="model", serialization_format=serialization_format,
                pip_requirements=PIP, signature=sig, registered_model_name=name)
        version = str(info.registered_model_version)
        for key, value in (version_tags or {}).items():
            self.client.set_model_version_tag(name, version, key, value)
        if description is not None:
            self.client.update_model_version(name, version, description=description)
        assert run.info.run_id
        return version

    def register_directory(self, name: str, directory: Path, *,
                           tags: Mapping[str, str] | None = None) -> str:
        """A version of ``name`` whose source is ``directory`` as it is (no run)."""
        try:
            self.client.get_registered_model(name)
        except mlflow.exceptions.MlflowException:
            self.client.create_registered_model(name)
        mv = self.client.create_model_version(name, source=directory.as_uri(),
                                              tags=dict(tags or {}))
        return str(mv.version)
