"""Load a model artefact and predict over data chunks.

Three formats, chosen by suffix:

* ``.skops`` — scikit-learn through skops, the safe format: loading never runs code from
  the file; types outside skops' trusted set are refused unless named in ``trusted_types``;
* ``.joblib`` / ``.pkl`` / ``.pickle`` — scikit-learn through joblib. **Unpickling runs
  arbitrary code from the file**: only ever load a file you produced or fully trust, which
  is why it needs ``trusted_pickle=True`` (``--trust-pickle`` on the command line);
* ``.onnx`` — any ONNX model through onnxruntime (CPU), no code execution.

Feature columns, in the model's order: the scikit-learn estimator's ``feature_names_in_``;
for ONNX, the input names when the graph has one input per column, else the model's
``feature_names`` metadata (comma-separated) — or, always, the caller's explicit list.

Classes: scikit-learn's ``classes_``; for ONNX, the class labels the graph declares
(``classlabels_*`` of its classifier or ZipMap node), so no ``--classes`` is needed. A
model declaring no classes has ``classes = None``; a graph whose labels cannot be read is a
FormatError, never "no classes", since the positive class would then be a guess.

Predictions come back per chunk as ``(y_pred, y_score)``: ``y_score`` is, for a binary
classifier, the probability of the positive class — the class equal to ``pos_label`` when
one is given (a ``pos_label`` that is not one of the model's classes is a DataError, and
one given for a model without classes a UsageError), else the second class
(``classes[1]``); the ``(n, K)`` probability matrix, columns in ``classes`` order, for a
multiclass one; ``None`` for a regressor or a model without probabilities. ONNX
probabilities keep their dtype (usually float32) so that a consumer can judge "sums to 1"
at that dtype's precision, as scikit-learn does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from agent.formats import MODEL_SUFFIXES, ModelKind
from trust.errors import CheckError, DataError, FormatError, UsageError

__all__ = ["Model", "load_model", "predict_checked", "predict_chunks", "MODEL_SUFFIXES"]



@dataclass(frozen=True)
class Model:
    """A loaded model: its kind, feature columns, classes (if a classifier) and runner."""

    path: Path
    kind: ModelKind
    feature_names: tuple[str, ...] | None
    classes: tuple[Any, ...] | None
    _impl: Any = field(repr=False, compare=False)

    def with_features(self, names: Sequence[str]) -> Model:
        """The same model with an explicit feature-column list."""
        return Model(self.path, self.kind, tuple(names), self.classes, self._impl)

    def positive_index(self, pos_label: Any = None) -> int:
        """Column of the binary probability matrix that belongs to ``pos_label``.

        ``None`` means the second class. A ``pos_label`` that is not one of the model's
        classes (compared as text, so ``1`` matches ``"1"``) is a DataError; a
        ``pos_label`` for a model that declares no classes is a UsageError, since nothing
        says which probability column is that class.
        """
        if pos_label is None:
            return 1
        if self.classes is None:
            raise UsageError(
                f"{self.path}: pos_label {str(pos_label)!r} was given, but the model declares "
                "no classes, so its positive-class column is unknown",
                hint="drop --pos-label, or use a model that records its classes "
                "(scikit-learn classes_, ONNX classlabels_*)",
            )
        names = [str(c) for c in self.classes]
        if str(pos_label) not in names:
            raise DataError(
                f"{self.path}: pos_label {str(pos_label)!r} is not one of the model's "
                f"classes {names}"
            )
        return names.index(str(pos_label))

    def predict(
        self, columns: Mapping[str, npt.NDArray[Any]], *, pos_label: Any = None
    ) -> tuple[npt.NDArray[Any], npt.NDArray[Any] | None]:
        """``(y_pred, y_score)`` for one chunk of feature columns (see the module doc)."""
        if self.feature_names is None:
            raise UsageError(
                f"{self.path}: cannot tell which columns are the model's features",
                hint="pass --features a,b,c in the order the model expects",
            )
        positive = self.positive_index(pos_label)
        if self.kind == "onnx":
            y_pred, proba = _predict_onnx(self, columns)
        else:
            y_pred, proba = _predict_sklearn(self, columns)
        if proba is None or proba.ndim != 2 or proba.shape[1] < 2:
            return y_pred, None
        if proba.shape[1] == 2:
            return y_pred, proba[:, positive]
        return y_pred, proba


def load_model(
    path: str | os.PathLike[str],
    *,
    trusted_pickle: bool = False,
    trusted_types: Sequence[str] = (),
) -> Model:
    """Load ``path`` (see the module docstring for formats and their safety)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such model file")
    kind = MODEL_SUFFIXES.get(p.suffix.lower())
    if kind is None:
        raise DataError(
            f"{p}: unknown model format '{p.suffix}' (expected one of "
            f"{', '.join(sorted(MODEL_SUFFIXES))})"
        )
    if kind == "onnx":
        return _load_onnx(p)
    if kind == "joblib":
        if not trusted_pickle:
            raise UsageError(
                f"{p}: joblib/pickle files run code when loaded; refusing to load",
                hint="convert the model to .skops or .onnx, or pass --trust-pickle "
                "if you produced this file yourself",
            )
        import joblib

        try:
            est = joblib.load(p)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
            raise DataError(
                f"{p}: cannot load joblib model ({type(exc).__name__}: {exc})"
            ) from None
    else:
        import skops.io as sio

        try:
            untrusted = sio.get_untrusted_types(file=p)
        except Exception as exc:  # noqa: BLE001 - a corrupt archive raises many kinds
            raise DataError(f"{p}: not a readable skops file ({type(exc).__name__})") from None
        refused = [t for t in untrusted if t not in set(trusted_types)]
        if refused:
            raise UsageError(
                f"{p}: skops file contains types that are not trusted: {', '.join(refused)}",
                hint="review them, then pass --trust-type TYPE for each one you accept",
            )
        est = sio.load(p, trusted=list(untrusted) or None)
    if not hasattr(est, "predict"):
        raise DataError(f"{p}: loaded object of type {type(est).__name__} has no predict()")
    names = getattr(est, "feature_names_in_", None)
    classes = getattr(est, "classes_", None)
    return Model(
        p,
        kind,
        tuple(str(n) for n in names) if names is not None else None,
        tuple(c.item() if isinstance(c, np.generic) else c for c in classes)
        if classes is not None
        else None,
        est,
    )


def _load_onnx(p: Path) -> Model:
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own hierarchy
        raise DataError(f"{p}: not a loadable ONNX model ({str(exc).splitlines()[0]})") from None
    inputs = sess.get_inputs()
    names: tuple[str, ...] | None = None
    if len(inputs) > 1:
        names = tuple(i.name for i in inputs)
    else:
        meta = sess.get_modelmeta().custom_metadata_map.get("feature_names")
        if meta:
            names = tuple(s.strip() for s in meta.split(",") if s.strip())
    return Model(p, "onnx", names, _onnx_classes(p), sess)


def _onnx_classes(p: Path) -> tuple[Any, ...] | None:
    """The class labels a classifier graph declares (its ZipMap or classifier node).

    ``None`` only when the graph declares none (a regressor, or a classifier without
    labels). A graph that cannot be read, or labels that are not text, are a FormatError:
    guessing would score the evidence on whichever class happens to come second.
    """
    import onnx

    try:
        graph = onnx.load(str(p), load_external_data=False).graph
    except Exception as exc:  # noqa: BLE001 - protobuf/onnx raise many kinds; all mean "unreadable"
        raise FormatError(
            f"{p}: cannot read the model graph for its class labels "
            f"({type(exc).__name__}: {_first_line(exc)})"
        ) from None
    for node in graph.node:
        for attr in node.attribute:
            if attr.name in ("classlabels_int64s", "classlabels_ints") and attr.ints:
                return tuple(int(v) for v in attr.ints)
            if attr.name == "classlabels_strings" and attr.strings:
                try:
                    return tuple(v.decode("utf-8") for v in attr.strings)
                except UnicodeDecodeError as exc:
                    raise FormatError(
                        f"{p}: class labels of node {node.name or node.op_type!r} are not "
                        f"UTF-8 text ({exc.reason} at byte {exc.start})"
                    ) from None
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else ""


def _matrix(model: Model, columns: Mapping[str, npt.NDArray[Any]], dtype: Any) -> Any:
    assert model.feature_names is not None
    missing = [f for f in model.feature_names if f not in columns]
    if missing:
        raise DataError(f"model feature '{missing[0]}' is not among the data columns read")
    cols = [columns[f] for f in model.feature_names]
    if dtype is object or any(c.dtype.kind == "O" for c in cols):
        return np.column_stack([c.astype(object) for c in cols])
    return np.column_stack(cols).astype(dtype, copy=False)


def _predict_sklearn(
    model: Model, columns: Mapping[str, npt.NDArray[Any]]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any] | None]:
    est = model._impl
    assert model.feature_names is not None
    if getattr(est, "feature_names_in_", None) is not None:
        try:
            import pandas as pd  # the estimator was fitted on a DataFrame; give it one

            X: Any = pd.DataFrame({f: columns[f] for f in model.feature_names})
        except ImportError:  # pragma: no cover - pandas absent: numeric matrices still work
            X = _matrix(model, columns, np.float64)
    else:
        X = _matrix(model, columns, np.float64)
    y_pred = np.asarray(est.predict(X))
    proba: npt.NDArray[Any] | None = None
    if model.classes is not None and hasattr(est, "predict_proba"):
        proba = np.asarray(est.predict_proba(X), dtype=np.float64)
    return y_pred, proba


_ONNX_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(string)": object,
}


def _predict_onnx(
    model: Model, columns: Mapping[str, npt.NDArray[Any]]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any] | None]:
    sess = model._impl
    inputs = sess.get_inputs()
    feeds: dict[str, Any] = {}
    if len(inputs) > 1:
        for inp in inputs:
            dtype = _ONNX_DTYPES.get(inp.type, np.float32)
            col = columns[inp.name]
            feeds[inp.name] = col.astype(dtype).reshape(-1, 1)
    else:
        inp = inputs[0]
        feeds[inp.name] = _matrix(model, columns, _ONNX_DTYPES.get(inp.type, np.float32))
    outputs = sess.run(None, feeds)
    y_pred = np.asarray(outputs[0]).reshape(-1)
    if len(outputs) < 2:
        return y_pred, None
    raw = outputs[1]
    if isinstance(raw, list):  # ZipMap output: one {class: probability} per row
        keys = list(model.classes) if model.classes is not None else sorted(raw[0] if raw else [])
        first = next(iter(raw[0].values())) if raw and raw[0] else 0.0
        pdtype: Any = first.dtype if isinstance(first, np.generic) else np.float32
        proba = np.array([[row[k] for k in keys] for row in raw], dtype=pdtype)
    else:
        proba = np.asarray(raw)
        if proba.dtype.kind != "f":
            proba = proba.astype(np.float64)
    return y_pred, proba


def predict_checked(
    model: Model, chunk: Mapping[str, npt.NDArray[Any]], *, pos_label: Any = None
) -> tuple[npt.NDArray[Any], npt.NDArray[Any] | None]:
    """:meth:`Model.predict`, with the model's own failure as one-line CheckError."""
    try:
        return model.predict(chunk, pos_label=pos_label)
    except (CheckError, UsageError):
        raise
    except Exception as exc:  # noqa: BLE001 - the model's own failure, reported plainly
        raise CheckError(
            f"{model.path}: prediction failed ({type(exc).__name__}: {_first_line(exc)})"
        ) from None


def predict_chunks(
    model: Model, chunks: Iterable[Mapping[str, npt.NDArray[Any]]], *, pos_label: Any = None
) -> Iterator[tuple[Mapping[str, npt.NDArray[Any]], npt.NDArray[Any], npt.NDArray[Any] | None]]:
    """Yield ``(chunk, y_pred, y_score)`` for every chunk, predicting batch by batch."""
    for chunk in chunks:
        y_pred, score = predict_checked(model, chunk, pos_label=pos_label)
        yield chunk, y_pred, score
