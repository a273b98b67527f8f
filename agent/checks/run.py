"""Running the checks on files: the checks package's single I/O edge.

:func:`run_checks` reads the manifest, model card, profile and digests through
:mod:`agent.checks.files` (and the clock, unless ``spec.now`` is given) and passes them to the
pure checks; it streams the data files named in a :class:`CheckSpec` through the checks chunk
by chunk, so memory is bounded by the chunk size (plus, when ROC AUC is wanted, the score
column — see :mod:`agent.checks.performance`). Drift reads reference and current data one
column at a time (:class:`agent.data.ColumnReader`), so it holds one column pair, never a
whole file. Without ``drift_columns`` it compares every column of both files, so a column
present on one side only is an error naming it and the file that lacks it, never a column
silently left out of drift (a reference *profile* compares exactly the columns it was built
from, chosen when it was built). The result is one validated evidence document
(:func:`agent.checks.evidence.build_evidence`). When the manifest (or ``spec.dvc``) names the
training data's DVC pointer, the lineage section's ``dvc`` object holds the hashes
:func:`agent.checks.dvc.verify_pointer` recomputed from the files (streamed, 1 MiB blocks).

Invariants: labels and predictions are validated for the task, and score columns as
probabilities in [0, 1], before any check sees them; an error raised by a check on the
validation data is re-raised naming that file; a spec that asks for nothing is a
:class:`~trust.errors.UsageError`, never an empty evidence document.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from agent import data as datamod
from agent.checks import documentation, fairness, files, lineage, performance
from agent.checks import dvc as dvcmod
from agent.checks.evidence import build_evidence
from trust.errors import CheckError, DataError, UsageError

__all__ = ["CheckSpec", "Progress", "run_checks"]

Progress = Callable[[int], None]
"""Called with the number of validation rows after each chunk."""


@dataclass(frozen=True)
class CheckSpec:
    """Everything one check run needs: files, column roles, options. Built once per run."""

    data: Path | None = None
    label: str | None = None
    pred: str | None = None
    score: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()
    task: performance.Task = "binary"
    pos_label: str | None = None
    classes: tuple[str, ...] | None = None
    model: Path | None = None
    features: tuple[str, ...] | None = None
    trust_pickle: bool = False
    trusted_types: tuple[str, ...] = ()
    intersectional: bool = True
    min_group_size: int = 0
    include_small_groups: bool = False
    reference: Path | None = None
    current: Path | None = None
    profile: Path | None = None
    drift_columns: tuple[str, ...] | None = None
    drift_methods: Mapping[str, str] = field(default_factory=dict)
    drift_share: float = 0.5
    manifest: Path | None = None
    training_data: Path | None = None
    # The training data's DVC pointer (.dvc / dvc.lock); None: the manifest's, if it names one.
    dvc: Path | None = None
    model_card: Path | None = None
    explainability: Path | None = None
    chunk_rows: int = datamod.DEFAULT_CHUNK_ROWS
    keep_scores: bool = True
    hash_data: bool = True
    now: dt.datetime | None = None


def _columns_needed(spec: CheckSpec, model_features: Sequence[str]) -> list[str]:
    cols: list[str] = []
    for c in (spec.label, spec.pred, *spec.score, *spec.sensitive, *model_features):
        if c is not None and c not in cols:
            cols.append(c)
    return cols


def _labels_for(
    spec: CheckSpec,
    values: npt.NDArray[Any],
    column: str,
    source: Path,
    classes: Sequence[str] | None = None,
    seen: set[str] | None = None,
) -> npt.NDArray[Any]:
    """Validated labels (or predictions) for the task.

    Multiclass labels are compared with ``classes`` (the resolved class list, as text)
    whenever one is set: then labels and predictions are stringified, integral floats
    first made integers, so ``0``, ``0.0`` and ``"0"`` are the same class. ``seen``
    collects the distinct binary values across chunks (see :func:`agent.data.binary_labels`).
    """
    if spec.task == "binary":
        return datamod.binary_labels(
            values, column=column, source=source, pos_label=spec.pos_label, seen=seen
        )
    if spec.task == "regression":
        out = datamod.require_numeric(values, column=column, source=source)
        if np.isnan(out).any():
            raise DataError(f"{source}: column '{column}' has a missing value")
        return out
    if values.dtype.kind == "O" and any(v is None for v in values):
        raise DataError(f"{source}: column '{column}' has a missing value")
    if values.dtype.kind == "f":
        if np.isnan(values).any():
            raise DataError(f"{source}: column '{column}' has a missing value")
        if np.all(values == np.round(values)):
            values = values.astype(np.int64)
    return np.array([str(v) for v in values.tolist()], dtype=object) if classes else values


def _check_probabilities(values: npt.NDArray[np.float64], column: str, source: Path) -> None:
    """A score column holds probabilities: no missing value, each finite and in [0, 1]."""
    if np.isnan(values).any():
        raise DataError(f"{source}: column '{column}' has a missing value")
    bad = ~((values >= 0.0) & (values <= 1.0))
    if bad.any():
        raise DataError(
            f"{source}: column '{column}' must hold probabilities in [0, 1], "
            f"found {float(values[np.argmax(bad)])!r}"
        )


def _measure(
    spec: CheckSpec, progress: Progress | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, int]:
    """Stream the validation data through performance and fairness; return their sections."""
    assert spec.data is not None
    model = None
    if spec.model is not None:
        from agent.predict import load_model

        model = load_model(
            spec.model, trusted_pickle=spec.trust_pickle, trusted_types=spec.trusted_types
        )
        if spec.features:
            model = model.with_features(spec.features)
        if model.feature_names is None:
            raise UsageError(
                f"{spec.model}: cannot tell which columns are the model's features",
                hint="pass --features a,b,c in the order the model expects",
            )
    elif spec.pred is None:
        raise UsageError("give the prediction column (--pred) or a model (--model)")
    if spec.label is None:
        raise UsageError("give the label column (--label)")
    if spec.sensitive and spec.task != "binary":
        raise UsageError("fairness checks need a binary task (--task binary)")
    classes = spec.classes
    if (
        classes is None
        and model is not None
        and model.classes is not None
        and spec.task == "multiclass"
    ):
        classes = tuple(str(c) for c in model.classes)
    if classes is not None:
        classes = tuple(str(c) for c in classes)
    perf: performance.ClassificationAccumulator | performance.RegressionAccumulator
    if spec.task == "regression":
        perf = performance.RegressionAccumulator()
    else:
        perf = performance.ClassificationAccumulator(
            spec.task, classes=list(classes) if classes else None, keep_scores=spec.keep_scores
        )
    sets: list[tuple[str, ...]] = [(f,) for f in spec.sensitive]
    if spec.intersectional and len(spec.sensitive) > 1:
        sets.append(tuple(spec.sensitive))
    fair = fairness.FairnessAccumulator(sets) if sets else None
    cols = _columns_needed(spec, model.feature_names or () if model else ())
    rows = 0
    src = spec.data
    pos_label = spec.pos_label if spec.task == "binary" else None
    seen: set[str] = set()  # binary values met so far, label and prediction together
    if model is not None and pos_label is not None:
        # Refuse, before any row is read, a pos_label the model does not know or cannot
        # place (no classes): the score column would otherwise belong to a guessed class.
        model.positive_index(pos_label)
    for chunk in datamod.iter_chunks(src, cols, chunk_rows=spec.chunk_rows):
        y = _labels_for(spec, chunk[spec.label], spec.label, src, classes, seen)
        score: npt.NDArray[Any] | None = None
        if model is not None:
            from agent.predict import predict_checked

            try:
                raw_pred, score = predict_checked(model, chunk, pos_label=pos_label)
            except CheckError as exc:
                if isinstance(exc, DataError):
                    raise
                raise CheckError(f"{src}: {exc.message}") from None
            pred = _labels_for(
                spec, np.asarray(raw_pred), f"prediction of {spec.model}", src, classes, seen
            )
        else:
            assert spec.pred is not None
            pred = _labels_for(spec, chunk[spec.pred], spec.pred, src, classes, seen)
        if spec.score:
            parts = [datamod.require_numeric(chunk[c], column=c, source=src) for c in spec.score]
            for c, part in zip(spec.score, parts, strict=True):
                _check_probabilities(part, c, src)
            score = parts[0] if len(parts) == 1 else np.column_stack(parts)
        try:
            if isinstance(perf, performance.RegressionAccumulator):
                perf.update(y, pred)
            else:
                perf.update(y, pred, score)
            if fair is not None:
                fair.update(y, pred, {f: chunk[f] for f in spec.sensitive})
        except CheckError as exc:
            raise CheckError(f"{src}: {exc.message}") from None
        rows += len(y)
        if progress is not None:
            progress(len(y))
    perf_ev = perf.evidence()
    fair_ev = None
    if fair is not None:
        fair_ev = {
            c.key: fairness.fairness_evidence(
                c,
                min_group_size=spec.min_group_size,
                include_small_groups=spec.include_small_groups,
            )
            for c in fair.result()
        }
    return perf_ev, fair_ev, rows


def _drift(spec: CheckSpec) -> dict[str, Any] | None:
    current = spec.current or (spec.data if (spec.reference or spec.profile) else None)
    if current is None:
        return None
    if spec.reference is not None and spec.profile is not None:
        raise UsageError("give either --reference or --profile, not both")
    if spec.reference is None and spec.profile is None:
        raise UsageError("--current needs --reference REF or --profile REF.profile")
    try:
        from agent.checks import drift as driftmod
    except ImportError:  # pragma: no cover - the drift module ships with this package
        raise CheckError("drift checks are not available in this installation") from None
    methods = dict(spec.drift_methods) or None
    if spec.profile is not None:
        prof = files.load_profile(spec.profile)
        if spec.drift_columns and set(spec.drift_columns) != set(prof.names):
            raise UsageError(
                f"{spec.profile}: a profile compares the columns it was built from "
                f"({', '.join(prof.names)}); --drift-columns cannot change them",
                hint="rebuild the profile with the columns you want",
            )
        # Column by column: only one current column is in memory at a time.
        result: dict[str, Any] = prof.compare(
            datamod.ColumnReader(current, prof.names), methods=methods, drift_share=spec.drift_share
        )
        return result
    assert spec.reference is not None
    ref = datamod.ColumnReader(spec.reference, spec.drift_columns)
    if spec.drift_columns is None:
        # "All columns" means both files' columns: one the reference lacks would otherwise
        # vanish from drift without a word (issue 8, item 21).
        lacking = [c for c in datamod.ColumnReader(current) if c not in ref]
        if lacking:
            raise DataError(
                f"{spec.reference}: the reference data has no column '{lacking[0]}', which "
                f"the current data {current} has; drift cannot compare it",
                hint="add the column to the reference, or name the columns to compare "
                "with --drift-columns",
            )
    cur = datamod.ColumnReader(current, list(ref))
    out: dict[str, Any] = driftmod.drift_evidence(
        ref, cur, methods=methods, drift_share=spec.drift_share
    )
    return out


def _resolve(base: Path | None, value: Any) -> Path | None:
    if value is None:
        return None
    p = Path(str(value))
    return p if p.is_absolute() or base is None else base / p


def _dvc_pointer(spec: CheckSpec, base: Path | None, data: Mapping[str, Any]) -> Path | None:
    """The DVC pointer to verify: ``spec.dvc``, else ``training_data.dvc``, else a
    ``training_data.source`` that is a local path to a ``.dvc`` file or ``dvc.lock``."""
    if spec.dvc is not None:
        return spec.dvc
    if data.get("dvc") is not None:
        return _resolve(base, data["dvc"])
    source = data.get("source")
    if isinstance(source, str) and "://" not in source and dvcmod.is_pointer_name(source):
        return _resolve(base, source)
    return None


def _lineage(spec: CheckSpec, now: dt.datetime) -> dict[str, Any] | None:
    if spec.manifest is None and spec.model is None and spec.dvc is None:
        return None
    manifest = files.load_manifest(spec.manifest) if spec.manifest is not None else None
    base = spec.manifest.parent if spec.manifest is not None else None
    model_path = spec.model or _resolve(base, ((manifest or {}).get("artifact") or {}).get("path"))
    model_sha = (
        files.sha256_file(model_path) if model_path is not None and model_path.is_file() else None
    )
    data: Mapping[str, Any] = (manifest or {}).get("training_data") or {}
    train = spec.training_data or _resolve(base, data.get("path"))
    data_sha = files.sha256_file(train) if train is not None and train.is_file() else None
    pointer = _dvc_pointer(spec, base, data)
    # With a named training-data path, only the pointer's entries for that path are checked.
    dvc_ev = None if pointer is None else dvcmod.verify_pointer(pointer, only=train)
    return lineage.lineage_evidence(
        manifest, model_sha256=model_sha, data_sha256=data_sha, dvc=dvc_ev, now=now
    )


def _documentation(spec: CheckSpec) -> dict[str, Any] | None:
    expl = spec.explainability
    if expl is None and spec.manifest is not None:
        manifest = files.load_manifest(spec.manifest)
        expl = _resolve(spec.manifest.parent, manifest.get("explainability"))
    if spec.model_card is None and expl is None:
        return None
    card = files.parse_model_card(spec.model_card) if spec.model_card is not None else None
    present = expl is not None and expl.is_file()
    return documentation.documentation_evidence(
        card,
        explainability_present=present,
        explainability_sha256=files.sha256_file(expl) if present and expl is not None else None,
    )


def run_checks(spec: CheckSpec, *, progress: Progress | None = None) -> dict[str, Any]:
    """Run every check the spec asks for and return the validated evidence document.

    ``progress`` is called with the number of validation rows after each chunk.
    """
    now = spec.now or dt.datetime.now(dt.UTC)
    perf_ev = fair_ev = None
    data_ev: dict[str, Any] | None = None
    if spec.data is not None and (spec.label is not None or spec.pred is not None or spec.model):
        perf_ev, fair_ev, rows = _measure(spec, progress)
        data_ev = {
            "name": spec.data.name,
            "format": datamod.file_format(spec.data),
            "rows": rows,
            "sha256": files.sha256_file(spec.data) if spec.hash_data else None,
        }
    drift_ev = _drift(spec)
    if (perf_ev is None and drift_ev is None and spec.manifest is None
            and spec.model_card is None and spec.dvc is None):
        raise UsageError(
            "nothing to check",
            hint="give --data with --label and --pred (or --model), and/or --reference, "
            "--manifest, --model-card",
        )
    return build_evidence(
        performance=perf_ev,
        fairness=fair_ev,
        drift=drift_ev,
        lineage=_lineage(spec, now),
        documentation=_documentation(spec),
        data=data_ev,
        generated_at=now,
    )
