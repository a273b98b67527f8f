"""Per-group confusion counts: the sufficient statistics every fairness metric derives from.

One pass over the rows builds :class:`FairnessCounts`: for every group (one value of a
sensitive feature, or one combination of values for several features, as fairlearn's
``MetricFrame`` does with several columns) the confusion counts ``tn, fp, fn, tp`` and the
row count ``n``. The pass is a single ``np.bincount`` over ``group_code * 4 + 2 * y + ŷ``.
Invariants:

* counts are additive: ``a.merge(b)`` over two disjoint slices of rows equals the counts of
  the whole, so chunks of a file and evidence from several nodes combine exactly;
* a null or NaN sensitive value is the group ``"missing"`` (:data:`agent.groups.MISSING_GROUP`),
  never dropped, and each group records whether it stands for a missing value;
* groups are sorted by name; only observed groups (at least one row) are listed;
* ``y_true`` and ``y_pred`` must be 0/1 (a :class:`~trust.errors.CheckError` otherwise);
  with ``sample_weight`` the counts are weighted sums and ``rows`` stays unweighted.

Intersectional group names join the values with ``|`` in feature order (``"F|north"``) and
the feature key joins the feature names the same way (``"sex|region"``). Metrics derived from
the counts are in :mod:`agent.checks.disparity`, the evidence entry in
:mod:`agent.checks.fairness`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from agent.groups import MISSING_GROUP, factorize
from trust.errors import CheckError

__all__ = [
    "FairnessCounts",
    "FairnessAccumulator",
    "GROUP_SEPARATOR",
    "TN",
    "FP",
    "FN",
    "TP",
    "count_value",
]

GROUP_SEPARATOR = "|"
TN, FP, FN, TP = 0, 1, 2, 3
"""Column of each confusion count in ``FairnessCounts.counts`` (``(G, 4)``)."""


@dataclass(frozen=True, eq=False)
class FairnessCounts:
    """Per-group confusion counts for one sensitive feature or one feature combination.

    ``counts[g] = (tn, fp, fn, tp)`` (weighted sums when built with ``sample_weight``),
    ``rows[g]`` the unweighted number of rows, ``missing[g]`` whether the group stands for
    a missing value of some feature (``"missing"``, or ``"F|missing"`` in an intersection);
    groups are sorted by name. Mergeable.
    """

    features: tuple[str, ...]
    groups: tuple[str, ...]
    counts: npt.NDArray[Any]
    rows: npt.NDArray[np.int64]
    weighted: bool = False
    missing: npt.NDArray[np.bool_] | None = None

    def __post_init__(self) -> None:
        """Derive ``missing`` from the group names when it is not given."""
        if self.missing is None:
            flags = np.fromiter(
                (_name_is_missing(g, len(self.features)) for g in self.groups),
                dtype=bool,
                count=len(self.groups),
            )
            object.__setattr__(self, "missing", flags)

    @property
    def key(self) -> str:
        """The evidence key of this feature set (``"sex"`` or ``"sex|region"``)."""
        return GROUP_SEPARATOR.join(self.features)

    @property
    def total(self) -> npt.NDArray[Any]:
        """Overall ``(tn, fp, fn, tp)`` over every row."""
        return np.asarray(self.counts.sum(axis=0))

    @classmethod
    def from_arrays(
        cls,
        y_true: npt.ArrayLike,
        y_pred: npt.ArrayLike,
        sensitive: Mapping[str, npt.ArrayLike],
        *,
        sample_weight: npt.ArrayLike | None = None,
    ) -> FairnessCounts:
        """Count ``y_true``/``y_pred`` (0/1) per group of the features in ``sensitive``.

        Several features give intersectional groups (every observed combination).
        """
        if not sensitive:
            raise CheckError("fairness needs at least one sensitive feature")
        coded = [(name, *factorize(np.asarray(v))) for name, v in sensitive.items()]
        return _count(
            tuple(n for n, _, _ in coded),
            [c for _, c, _ in coded],
            [g for _, _, g in coded],
            _binary(y_true, "y_true"),
            _binary(y_pred, "y_pred"),
            None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64),
        )

    def merge(self, other: FairnessCounts) -> FairnessCounts:
        """Counts of the union of both row sets (groups matched by name)."""
        if other.features != self.features:
            raise CheckError(f"cannot merge fairness counts for {other.key!r} into {self.key!r}")
        names = sorted(set(self.groups) | set(other.groups))
        index = {g: i for i, g in enumerate(names)}
        weighted = self.weighted or other.weighted
        dtype = np.float64 if weighted else np.int64
        counts = np.zeros((len(names), 4), dtype=dtype)
        rows = np.zeros(len(names), dtype=np.int64)
        missing = np.zeros(len(names), dtype=bool)
        for part in (self, other):
            idx = np.fromiter(
                (index[g] for g in part.groups), dtype=np.int64, count=len(part.groups)
            )
            counts[idx] += part.counts
            rows[idx] += part.rows
            missing[idx] |= part.missing_mask
        return FairnessCounts(self.features, tuple(names), counts, rows, weighted, missing)

    @property
    def missing_mask(self) -> npt.NDArray[np.bool_]:
        """Per group: whether it stands for a missing value of some feature."""
        assert self.missing is not None  # set by __post_init__
        return self.missing

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (aggregates only) that :meth:`from_dict` reads back."""
        return {
            "features": list(self.features),
            "weighted": self.weighted,
            "groups": {
                g: {
                    "n": int(self.rows[i]),
                    "tn": count_value(self.counts[i, TN]),
                    "fp": count_value(self.counts[i, FP]),
                    "fn": count_value(self.counts[i, FN]),
                    "tp": count_value(self.counts[i, TP]),
                    "missing": bool(self.missing_mask[i]),
                }
                for i, g in enumerate(self.groups)
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FairnessCounts:
        """Inverse of :meth:`to_dict`."""
        weighted = bool(data.get("weighted", False))
        groups = sorted(data["groups"])
        dtype = np.float64 if weighted else np.int64
        counts = np.array(
            [[data["groups"][g][k] for k in ("tn", "fp", "fn", "tp")] for g in groups],
            dtype=dtype,
        ).reshape(len(groups), 4)
        rows = np.array([data["groups"][g]["n"] for g in groups], dtype=np.int64)
        features = tuple(data["features"])
        missing = np.array(
            [bool(data["groups"][g].get("missing", _name_is_missing(g, len(features))))
             for g in groups],
            dtype=bool,
        )  # fmt: skip
        return cls(features, tuple(groups), counts, rows, weighted, missing)


def _name_is_missing(group: str, n_features: int) -> bool:
    """Whether a group name stands for a missing value (when no flag was recorded).

    For an intersection any ``|``-separated part equal to ``"missing"`` counts; a value that
    itself holds the separator can only make this err towards "not usable", never "usable".
    """
    if n_features <= 1:
        return group == MISSING_GROUP
    return MISSING_GROUP in group.split(GROUP_SEPARATOR)


def count_value(x: Any) -> int | float:
    """A count as a plain ``int`` (unweighted) or ``float`` (weighted), for JSON."""
    return int(x) if isinstance(x, (np.integer, int)) else float(x)


def _binary(values: npt.ArrayLike, name: str) -> npt.NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iuf":
        raise CheckError(f"{name} must be numeric 0/1 for fairness, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if len(out) and ((out != arr).any() or out.min() < 0 or out.max() > 1):
        bad = arr[(out != arr) | (out < 0) | (out > 1)][0]
        raise CheckError(f"{name} must be binary (0/1) for fairness, found value {bad!r}")
    return out


def _count(
    features: tuple[str, ...],
    codes: Sequence[npt.NDArray[np.int64]],
    names: Sequence[Sequence[str]],
    y: npt.NDArray[np.int64],
    p: npt.NDArray[np.int64],
    weight: npt.NDArray[np.float64] | None,
) -> FairnessCounts:
    n = len(y)
    if len(p) != n or any(len(c) != n for c in codes) or (weight is not None and len(weight) != n):
        raise CheckError("fairness inputs have different lengths")
    sizes = [max(len(g), 1) for g in names]
    combined = codes[0] if codes else np.zeros(n, dtype=np.int64)
    for c, size in zip(codes[1:], sizes[1:], strict=True):
        combined = combined * size + c
    space = math.prod(sizes)
    if space > 4 * n + 64:  # sparse combination space: compact the codes first
        present, combined = np.unique(combined, return_inverse=True)
    else:
        present = None
    slots = int(present.size if present is not None else space)
    key = combined * 4 + y * 2 + p
    if weight is None:
        flat = np.bincount(key, minlength=slots * 4)
        counts = flat.reshape(slots, 4)
        rows = counts.sum(axis=1)
    else:
        counts = np.bincount(key, weights=weight, minlength=slots * 4).reshape(slots, 4)
        rows = np.bincount(combined, minlength=slots)
    observed = np.flatnonzero(rows)
    full_codes = present[observed] if present is not None else observed
    parts = np.unravel_index(full_codes, sizes) if len(sizes) > 1 else (full_codes,)
    group_names = [
        GROUP_SEPARATOR.join(names[f][int(parts[f][i])] for f in range(len(names)))
        for i in range(len(observed))
    ]
    # Known per part here, so a value that itself contains the separator cannot confuse it.
    group_missing = [
        any(names[f][int(parts[f][i])] == MISSING_GROUP for f in range(len(names)))
        for i in range(len(observed))
    ]
    order: list[int] = sorted(range(len(group_names)), key=group_names.__getitem__)
    sel = observed[np.asarray(order, dtype=np.int64)]
    return FairnessCounts(
        features,
        tuple(group_names[i] for i in order),
        np.ascontiguousarray(counts[sel]),
        np.asarray(rows[sel], dtype=np.int64),
        weight is not None,
        np.array([group_missing[i] for i in order], dtype=bool),
    )


class FairnessAccumulator:
    """Streams chunks into :class:`FairnessCounts` for several feature sets at once.

    ``feature_sets`` lists tuples of sensitive feature names; each tuple is one evidence
    entry (one feature, or an intersection). Each chunk's features are coded once.
    """

    def __init__(self, feature_sets: Sequence[Sequence[str]]) -> None:
        """Start with no rows for every feature set."""
        self.feature_sets = [tuple(fs) for fs in feature_sets]
        self._counts: dict[tuple[str, ...], FairnessCounts] = {}

    def update(
        self,
        y_true: npt.ArrayLike,
        y_pred: npt.ArrayLike,
        sensitive: Mapping[str, npt.ArrayLike],
        *,
        sample_weight: npt.ArrayLike | None = None,
    ) -> None:
        """Add one chunk of rows."""
        y = _binary(y_true, "y_true")
        p = _binary(y_pred, "y_pred")
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        needed = {f for fs in self.feature_sets for f in fs}
        coded = {f: factorize(np.asarray(sensitive[f])) for f in needed}
        for fs in self.feature_sets:
            part = _count(fs, [coded[f][0] for f in fs], [coded[f][1] for f in fs], y, p, w)
            prev = self._counts.get(fs)
            self._counts[fs] = part if prev is None else prev.merge(part)

    def result(self) -> list[FairnessCounts]:
        """Counts per feature set, in the order given; raises if no rows were added."""
        missing = [fs for fs in self.feature_sets if fs not in self._counts]
        if missing:
            raise CheckError("no rows were counted for fairness")
        return [self._counts[fs] for fs in self.feature_sets]
