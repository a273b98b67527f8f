"""Model performance from streamed sufficient statistics, equal to scikit-learn.

Classification keeps a confusion matrix (integer counts, additive), the running sum of the
per-row log loss (exact: the mean of a sum is order-independent up to float rounding) and,
only when ROC AUC is wanted, the score column(s) themselves: ``8 × K`` bytes per row (binary:
the scores kept apart by true class, so no label array; multiclass: plus a one-byte class
code). ROC AUC is computed *exactly* from them, tie-aware, as the Mann–Whitney statistic in
integer arithmetic (``2U / 2PN``): no binning, no approximation. The computation sorts each
class's scores and counts, for every positive, the negatives below and tied with it by binary
search in blocks, so its working memory is one copy of the scores plus a fixed block (a 10 M
row binary run peaks at about twice the 80 MB score column). Regression keeps counts,
sums of absolute and squared errors and the label's mean and centred second moment (merged
with Chan et al.'s pairwise update, so chunked and whole results agree to rounding).

Invariants:

* accumulators merge: ``a.merge(b)`` over disjoint rows equals one pass over all rows;
* each metric follows scikit-learn's definition, including its zero-division result
  (``0.0``), label order (sorted union of true and predicted labels), log-loss clipping at
  ``eps`` of the scores' dtype, and R²'s value for a constant target (``1.0`` if perfect,
  else ``0.0``);
* an undefined metric (ROC AUC with one class present, log loss without scores) is ``None``;
* scores are probabilities judged at their own dtype's precision (as scikit-learn does): a
  float32 row sums to 1 within ``sqrt(eps32)``, and log loss clips at that dtype's ``eps``;
* the target is constant exactly when its minimum equals its maximum (tracked per chunk),
  so R² of a constant target does not depend on chunking;
* the evidence holds aggregates only, never a row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from trust.errors import CheckError

__all__ = [
    "Task",
    "ClassificationAccumulator",
    "RegressionAccumulator",
    "classification_performance",
    "regression_performance",
    "roc_auc_exact",
]

Task = Literal["binary", "multiclass", "regression"]
_EPS = float(np.finfo(np.float64).eps)


def roc_auc_exact(y_true: npt.ArrayLike, score: npt.ArrayLike) -> float | None:
    """Area under the ROC curve for 0/1 labels, exact and tie-aware; ``None`` if one class."""
    y = np.asarray(y_true)
    s = np.asarray(score, dtype=np.float64)
    positive = (y if y.dtype.kind in "biu" else y.astype(np.int64)) != 0
    pos, neg = s[positive], s[~positive]
    pos.sort()
    neg.sort()
    return _auc_of_sorted(pos, neg)


#: Positives searched per step: bounds the index arrays to 2 × 8 MiB whatever the row count.
_AUC_BLOCK = 1 << 20


def _auc_of_sorted(pos: npt.NDArray[np.float64], neg: npt.NDArray[np.float64]) -> float | None:
    """Mann–Whitney AUC from the ascending scores of the positives and of the negatives."""
    n_pos, n_neg = len(pos), len(neg)
    if n_pos == 0 or n_neg == 0:
        return None
    # 2U = Σ over positives of (2·negatives strictly below + negatives tied) = Σ (below +
    # below-or-equal): every (pos, neg) pair scores 2 when the positive ranks higher, 1 on a
    # tie. Integers throughout (≤ n_pos·n_neg fits int64); one division at the end.
    twice_u = 0
    for start in range(0, n_pos, _AUC_BLOCK):
        block = pos[start : start + _AUC_BLOCK]
        twice_u += int(np.searchsorted(neg, block, side="left").sum(dtype=np.int64))
        twice_u += int(np.searchsorted(neg, block, side="right").sum(dtype=np.int64))
    return twice_u / (2 * n_pos * n_neg)


class ClassificationAccumulator:
    """Streaming sufficient statistics for binary or multiclass classification.

    Labels may be any sortable values of one kind (numbers or strings). ``classes`` fixes
    the label set and the column order of multiclass scores; binary mode expects 0/1 labels
    and a 1-D score of the positive class.
    """

    def __init__(
        self,
        task: Literal["binary", "multiclass"] = "binary",
        *,
        classes: Sequence[Any] | None = None,
        keep_scores: bool = True,
    ) -> None:
        """Start empty; ``keep_scores=False`` gives up ROC AUC to keep memory flat."""
        self.task = task
        self._classes: list[Any] = (
            list(classes) if classes is not None else ([0, 1] if task == "binary" else [])
        )
        self._fixed = classes is not None or task == "binary"
        self._index: dict[Any, int] = {c: i for i, c in enumerate(self._classes)}
        k = len(self._classes)
        self._cm = np.zeros((k, k), dtype=np.int64)
        self._n = 0
        self._loss_sum = 0.0
        self._scored = 0
        self.keep_scores = keep_scores
        self._scores: list[npt.NDArray[np.float64]] = []
        self._codes: list[npt.NDArray[np.int64]] = []
        # Binary: score chunks by true class (negatives, positives); no label array kept.
        self._split: tuple[list[npt.NDArray[np.float64]], list[npt.NDArray[np.float64]]] = (
            [],
            [],
        )

    def _codes_of(self, values: npt.NDArray[Any], name: str) -> npt.NDArray[np.int64]:
        if values.dtype.kind in "iub" and self.task == "binary":
            return values.astype(np.int64)
        uniq, inverse = np.unique(values, return_inverse=True)
        lut = np.empty(len(uniq), dtype=np.int64)
        for i, u in enumerate(uniq.tolist()):
            if isinstance(u, float) and u.is_integer():
                u = int(u)
            if u not in self._index:
                if self._fixed:
                    raise CheckError(
                        f"{name} has value {u!r}, not one of the classes {self._classes}"
                    )
                self._index[u] = len(self._classes)
                self._classes.append(u)
            lut[i] = self._index[u]
        return lut[inverse.reshape(-1)]

    def _grow(self) -> None:
        k = len(self._classes)
        if self._cm.shape[0] < k:
            cm = np.zeros((k, k), dtype=np.int64)
            old = self._cm.shape[0]
            cm[:old, :old] = self._cm
            self._cm = cm

    def update(
        self,
        y_true: npt.ArrayLike,
        y_pred: npt.ArrayLike,
        y_score: npt.ArrayLike | None = None,
    ) -> None:
        """Add one chunk. ``y_score``: positive-class probability (binary) or ``(n, K)``."""
        yt = np.asarray(y_true)
        yp = np.asarray(y_pred)
        if len(yt) != len(yp):
            raise CheckError("labels and predictions have different lengths")
        t = self._codes_of(yt, "label")
        p = self._codes_of(yp, "prediction")
        if (
            self.task == "binary"
            and len(t)
            and (t.min() < 0 or t.max() > 1 or p.min() < 0 or p.max() > 1)
        ):
            raise CheckError("binary task needs 0/1 labels and predictions")
        self._grow()
        k = len(self._classes)
        self._cm += np.bincount(t * k + p, minlength=k * k).reshape(k, k)
        self._n += len(t)
        if y_score is not None:
            raw = np.asarray(y_score)
            # scikit-learn judges "sums to 1" and clips at the precision of the scores' own
            # dtype: float32 probabilities (ONNX) sum to 1 only within ~1e-7.
            eps = float(np.finfo(raw.dtype).eps) if raw.dtype.kind == "f" else _EPS
            self._add_scores(t, raw.astype(np.float64, copy=False), max(eps, _EPS))

    def _add_scores(
        self, t: npt.NDArray[np.int64], s: npt.NDArray[np.float64], eps: float = _EPS
    ) -> None:
        if np.isnan(s).any():
            raise CheckError("scores contain a missing value (NaN)")
        if self.task == "binary":
            if s.ndim == 2 and s.shape[1] == 2:
                s = s[:, 1]
            if s.ndim != 1 or len(s) != len(t):
                raise CheckError("binary scores must be one probability per row")
            p1 = np.clip(s, eps, 1 - eps)
            p0 = np.clip(1.0 - s, eps, 1 - eps)
            self._loss_sum += float(-np.sum(np.log(np.where(t == 1, p1, p0))))
        else:
            if not self._fixed:
                raise CheckError("multiclass scores need the class list (one column per class)")
            k = len(self._classes)
            if s.ndim != 2 or s.shape != (len(t), k):
                raise CheckError(f"multiclass scores must have one column per class ({k})")
            if not np.allclose(s.sum(axis=1), 1.0, rtol=math.sqrt(eps)):
                raise CheckError("multiclass scores must be probabilities summing to 1 per row")
            picked = np.clip(s, eps, 1 - eps)[np.arange(len(t)), t]
            self._loss_sum += float(-np.sum(np.log(picked)))
        self._scored += len(t)
        if not self.keep_scores:
            return
        if self.task == "binary":
            positive = t == 1
            self._split[0].append(s[~positive])
            self._split[1].append(s[positive])
        else:
            self._scores.append(s)
            self._codes.append(t.astype(np.int8 if len(self._classes) < 128 else np.int64))

    def merge(self, other: ClassificationAccumulator) -> ClassificationAccumulator:
        """A new accumulator holding both row sets."""
        out = ClassificationAccumulator(
            self.task, classes=list(self._classes), keep_scores=self.keep_scores
        )
        out._fixed = self._fixed
        remap = np.array(
            [out._index.setdefault(c, len(out._index)) for c in other._classes], dtype=np.int64
        )
        for c in other._classes:
            if c not in out._classes:
                out._classes.append(c)
        out._grow()
        k0 = self._cm.shape[0]
        out._cm[:k0, :k0] += self._cm
        if len(remap):
            out._cm[np.ix_(remap, remap)] += other._cm[: len(remap), : len(remap)]
        out._n = self._n + other._n
        out._loss_sum = self._loss_sum + other._loss_sum
        out._scored = self._scored + other._scored
        out._scores = self._scores + other._scores
        out._split = (self._split[0] + other._split[0], self._split[1] + other._split[1])
        out._codes = list(self._codes) + [remap[c] for c in other._codes]
        return out

    def evidence(self) -> dict[str, Any]:
        """The ``performance`` evidence section."""
        if self._n == 0:
            raise CheckError("no rows to measure performance on")
        classes = list(self._classes)
        try:
            order = sorted(range(len(classes)), key=lambda i: classes[i])
        except TypeError:
            raise CheckError("labels mix numbers and text") from None
        cm = self._cm[np.ix_(order, order)]
        present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
        if self.task == "binary":
            return self._binary_evidence(cm)
        sel = np.flatnonzero(present) if not self._fixed else np.arange(len(order))
        return self._multiclass_evidence(
            cm[np.ix_(sel, sel)], [classes[order[i]] for i in sel], order
        )

    def _log_loss(self) -> float | None:
        if self._scored == 0 or self._scored != self._n:
            return None
        return self._loss_sum / self._scored

    def _binary_evidence(self, cm: npt.NDArray[np.int64]) -> dict[str, Any]:
        tn, fp, fn, tp = (int(x) for x in cm.ravel())
        n = tn + fp + fn + tp
        precision = _safe(tp, tp + fp)
        recall = _safe(tp, tp + fn)
        specificity = _safe(tn, tn + fp)
        auc = None
        if self.keep_scores and self._scored == self._n and self._n:
            neg, pos = (np.concatenate(part) for part in self._split)
            neg.sort()  # in place: the concatenated copies are the only extra memory
            pos.sort()
            auc = _auc_of_sorted(pos, neg)
        return {
            "task": "binary",
            "n": n,
            "accuracy": (tp + tn) / n,
            "precision": precision,
            "recall": recall,
            "f1": _safe(2 * tp, 2 * tp + fp + fn),
            "specificity": specificity,
            "balanced_accuracy": (recall + specificity) / 2
            if (tp + fn) and (tn + fp)
            else (recall + specificity),
            "positive_rate": (tp + fn) / n,
            "predicted_positive_rate": (tp + fp) / n,
            "roc_auc": auc,
            "log_loss": self._log_loss(),
            "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        }

    def _multiclass_evidence(
        self, cm: npt.NDArray[np.int64], labels: list[Any], order: list[int]
    ) -> dict[str, Any]:
        n = int(cm.sum())
        tp = np.diag(cm).astype(np.float64)
        pred = cm.sum(axis=0).astype(np.float64)
        support = cm.sum(axis=1).astype(np.float64)
        prec = _safe_arr(tp, pred)
        rec = _safe_arr(tp, support)
        f1 = _safe_arr(2 * tp, 2 * tp + (pred - tp) + (support - tp))
        weights = support / support.sum() if support.sum() else support
        auc = None
        if self.keep_scores and self._fixed and self._scored == self._n and self._scores:
            scores = np.concatenate(self._scores)
            codes = np.concatenate(self._codes).astype(np.int64)
            per_class = [roc_auc_exact(codes == j, scores[:, j]) for j in range(scores.shape[1])]
            valid = [a for a in per_class if a is not None]
            auc = float(np.mean(valid)) if len(valid) == len(per_class) else None
        return {
            "task": "multiclass",
            "n": n,
            "accuracy": float(tp.sum() / n),
            "precision_macro": float(prec.mean()),
            "recall_macro": float(rec.mean()),
            "f1_macro": float(f1.mean()),
            "precision_weighted": float(np.sum(prec * support) / support.sum()),
            "recall_weighted": float(np.sum(rec * support) / support.sum()),
            "f1_weighted": float(np.sum(f1 * support) / support.sum()),
            "roc_auc_ovr_macro": auc,
            "log_loss": self._log_loss(),
            "classes": [_label(c) for c in labels],
            "per_class": {
                _label(c): {
                    "precision": float(prec[i]),
                    "recall": float(rec[i]),
                    "f1": float(f1[i]),
                    "support": int(support[i]),
                    "share": float(weights[i]),
                }
                for i, c in enumerate(labels)
            },
            "confusion_matrix": {"labels": [_label(c) for c in labels], "matrix": cm.tolist()},
        }


def _label(c: Any) -> str:
    if isinstance(c, np.generic):
        c = c.item()
    if isinstance(c, float) and c.is_integer():
        c = int(c)
    return str(c)


def _safe(a: float, b: float) -> float:
    return a / b if b else 0.0


def _safe_arr(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out = np.zeros_like(a)
    np.divide(a, b, out=out, where=b != 0)
    return out


class RegressionAccumulator:
    """Streaming sums for MAE, MSE, RMSE and R² (mergeable)."""

    def __init__(self) -> None:
        """Start empty."""
        self.n = 0
        self.sum_abs = 0.0
        self.sum_sq = 0.0
        self.mean_y = 0.0
        self.m2_y = 0.0
        # The target's range: "constant" must be exact, and the merged centred moment of a
        # constant column is rounding noise (1e-30), not zero, once chunks are merged.
        self.min_y = math.inf
        self.max_y = -math.inf

    def update(self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> None:
        """Add one chunk of numeric targets and predictions."""
        y = np.asarray(y_true, dtype=np.float64)
        p = np.asarray(y_pred, dtype=np.float64)
        if len(y) != len(p):
            raise CheckError("targets and predictions have different lengths")
        if np.isnan(y).any() or np.isnan(p).any():
            raise CheckError("regression targets and predictions must not be missing (NaN)")
        if not len(y):
            return
        err = y - p
        part = RegressionAccumulator()
        part.n = len(y)
        part.sum_abs = float(np.abs(err).sum())
        part.sum_sq = float(np.dot(err, err))
        part.mean_y = float(y.mean())
        d = y - part.mean_y
        part.m2_y = float(np.dot(d, d))
        part.min_y = float(y.min())
        part.max_y = float(y.max())
        self._absorb(part)

    def _absorb(self, o: RegressionAccumulator) -> None:
        if o.n == 0:
            return
        n = self.n + o.n
        delta = o.mean_y - self.mean_y
        self.m2_y = self.m2_y + o.m2_y + delta * delta * self.n * o.n / n
        self.mean_y = self.mean_y + delta * o.n / n
        self.n = n
        self.sum_abs += o.sum_abs
        self.sum_sq += o.sum_sq
        self.min_y = min(self.min_y, o.min_y)
        self.max_y = max(self.max_y, o.max_y)

    def merge(self, other: RegressionAccumulator) -> RegressionAccumulator:
        """A new accumulator holding both row sets."""
        out = RegressionAccumulator()
        out._absorb(self)
        out._absorb(other)
        return out

    def evidence(self) -> dict[str, Any]:
        """The ``performance`` evidence section for regression."""
        if self.n == 0:
            raise CheckError("no rows to measure performance on")
        mse = self.sum_sq / self.n
        if self.min_y == self.max_y or self.m2_y == 0.0:
            r2 = 1.0 if self.sum_sq == 0.0 else 0.0
        else:
            r2 = 1.0 - self.sum_sq / self.m2_y
        return {
            "task": "regression",
            "n": self.n,
            "mae": self.sum_abs / self.n,
            "mse": mse,
            "rmse": math.sqrt(mse),
            "r2": r2,
        }


def classification_performance(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    y_score: npt.ArrayLike | None = None,
    *,
    task: Literal["binary", "multiclass"] = "binary",
    classes: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """One-shot classification evidence (see :class:`ClassificationAccumulator`)."""
    acc = ClassificationAccumulator(task, classes=classes)
    acc.update(y_true, y_pred, y_score)
    return acc.evidence()


def regression_performance(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> dict[str, Any]:
    """One-shot regression evidence (see :class:`RegressionAccumulator`)."""
    acc = RegressionAccumulator()
    acc.update(y_true, y_pred)
    return acc.evidence()
