"""Data drift between a reference and a current data set, with evidently 0.7.23 parity.

:func:`drift_evidence` reproduces ``Report([DataDriftPreset()])`` column by column:

* **Cleaning**: NaN, None and ±infinity are dropped from each column first; the sizes used
  below are those of the cleaned columns. An empty cleaned column is a :class:`DataError`.
  (evidently's per-column ``ValueDrift`` does exactly this; its ``DriftedColumnsCount``
  forgets to drop ±inf from a column that holds no NaN, and then fails or disagrees with its
  own ``ValueDrift``. Warden follows ``ValueDrift`` throughout.)
* **Column type** (when not given): inferred from the *current* data as evidently's
  ``infer_column_type`` does — floats are numerical; integers are categorical when they take
  at most 10 distinct values, numerical otherwise; booleans and strings are categorical.
  Deviations, on purpose: unsigned integers are treated like integers (evidently ignores
  them as "unknown"), and high-cardinality strings stay categorical (evidently would run its
  text-classifier drift, which Warden does not implement); datetimes are refused.
* **Method** (``registry._get_default_stattest``): with N = cleaned reference size and V =
  distinct values of reference ∪ current —
  N ≤ 1000: numerical → ``z`` if V ≤ 2, ``chisquare`` if V ≤ 5, else ``ks``;
  categorical → ``chisquare`` if V > 2 else ``z``.
  N > 1000: numerical → ``jensenshannon`` if V ≤ 5 else ``wasserstein``;
  categorical → ``jensenshannon``.
* **Statistics**: p-values for ``ks``, ``chisquare``, ``z``; distances for
  ``jensenshannon``, ``wasserstein`` (normed by max(std(reference), 0.001)) and ``psi``.
  Binned methods (``jensenshannon``, ``psi``) use Sturges edges over reference + current when
  the column is numerical and the reference has more than 20 distinct values, per-value
  counts otherwise; ``psi`` fills zero bins as evidently does, ``jensenshannon`` does not.
* **Verdicts**: ``ks`` drifts when p ≤ threshold, ``chisquare``/``z`` when p < threshold,
  distances when ≥ threshold; defaults 0.05 for p-values and 0.1 for distances. The data
  set drifts when the share of drifted columns is ≥ ``drift_share`` (0.5).
* Explicit methods must suit the column type as in evidently's registry: ``ks`` and
  ``wasserstein`` numerical only, ``chisquare`` and ``z`` categorical only.

The functions are pure: arrays in, a plain evidence dict out. A statistic can be NaN only
where evidently's is (e.g. ``chisquare`` forced on a single category); NaN never drifts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from scipy import stats as _stats

from agent.checks import _stattests as st
from trust.errors import CheckError, DataError

__all__ = ["drift_evidence", "infer_column_type", "METHOD_NAMES", "INTEGER_CARDINALITY_LIMIT"]

#: The methods a caller may choose per column.
METHOD_NAMES = tuple(st.METHODS)
#: Integers with at most this many distinct current values are categorical (evidently).
INTEGER_CARDINALITY_LIMIT = 10
#: Above this reference size evidently switches from tests to distances.
SMALL_REFERENCE = 1000
#: Binned methods use Sturges edges when the reference has more distinct values than this.
BINNING_MIN_DISTINCT = 20

_NUMERIC_ONLY = {"ks", "wasserstein"}
_CATEGORICAL_ONLY = {"chisquare", "z"}

FloatArray = NDArray[np.float64]


class ColumnSide(Protocol):
    """One side (reference or current) of one column, as the statistics need it.

    Raw arrays and reference profiles both provide this, so that one code path computes
    every method. ``counts`` is ``None`` when the side keeps no per-value counts;
    ``weights`` is ``None`` when every sorted value stands for exactly one row.
    """

    n: int
    exact: bool
    raw: bool
    integer: bool

    def distinct_upto(self, cap: int) -> int:
        """The number of distinct values, or ``cap + 1`` if it is larger than ``cap``."""
        ...

    def counts(self) -> dict[Any, int] | None:
        """Per-value counts, or ``None`` when this side does not keep them."""
        ...

    def sorted_values(self) -> FloatArray:
        """Values ascending as float64 (numerical columns only)."""
        ...

    def weights(self) -> FloatArray | None:
        """Rows each sorted value stands for, or ``None`` for one row each."""
        ...

    def std(self) -> float:
        """Population standard deviation (ddof 0) of the values."""
        ...

    def bounds(self) -> tuple[float, float]:
        """Minimum and maximum value."""
        ...


class RawSide:
    """A cleaned column held in memory: numerical as NumPy, categorical as Arrow."""

    exact = True
    raw = True

    def __init__(self, values: NDArray[Any] | pa.Array) -> None:
        self._values = values
        self._sorted: NDArray[Any] | None = None
        self._counts: dict[Any, int] | None = None
        self._arrow = isinstance(values, pa.Array)
        self.n = len(values)
        self.integer = (not self._arrow) and values.dtype.kind in "iu"

    @property
    def values(self) -> NDArray[Any]:
        """The cleaned values as given (NumPy sides only)."""
        assert not self._arrow
        return self._values

    def _sorted_native(self) -> NDArray[Any]:
        if self._sorted is None:
            self._sorted = np.sort(self.values)
        return self._sorted

    def distinct_upto(self, cap: int) -> int:
        """See :class:`ColumnSide`."""
        if self._arrow or self._counts is not None:
            return min(len(self.counts()), cap + 1)
        head = self.values[: 4 * (cap + 1)]
        if len(np.unique(head)) > cap:
            return cap + 1
        s = self._sorted_native()
        return min(1 + int(np.count_nonzero(s[1:] != s[:-1])), cap + 1)

    def counts(self) -> dict[Any, int]:
        """See :class:`ColumnSide`."""
        if self._counts is None:
            if self._arrow:
                vc = pc.value_counts(self._values)
                self._counts = dict(
                    zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True)
                )
            else:
                keys, cnt = np.unique(self._sorted_native(), return_counts=True)
                self._counts = dict(zip(keys.tolist(), cnt.tolist(), strict=True))
        return self._counts

    def sorted_values(self) -> FloatArray:
        """See :class:`ColumnSide`."""
        return self._sorted_native().astype(np.float64, copy=False)

    def weights(self) -> None:
        """See :class:`ColumnSide`."""
        return None

    def std(self) -> float:
        """See :class:`ColumnSide`."""
        return float(np.std(self.values.astype(np.float64, copy=False)))

    def bounds(self) -> tuple[float, float]:
        """See :class:`ColumnSide`."""
        s = self._sorted_native()
        return float(s[0]), float(s[-1])


def infer_column_type(values: NDArray[Any], *, name: str = "?") -> str:
    """``"num"`` or ``"cat"`` for a column of current data, following evidently (see module)."""
    arr = np.asarray(values)
    kind = arr.dtype.kind
    if kind == "f":
        return "num"
    if kind in "iu":
        return "cat" if len(np.unique(arr)) <= INTEGER_CARDINALITY_LIMIT else "num"
    if kind in "bOUS":
        return "cat"
    raise DataError(
        f"column {name!r} has dtype {arr.dtype}, which drift checks do not support",
        hint="pass numerical or categorical (string, boolean, integer) columns only",
    )


def clean_column(values: Any, column_type: str, *, name: str, side: str) -> RawSide:
    """Drop NaN/None/±inf (as evidently does) and wrap the column for the statistics."""
    arr = values if isinstance(values, np.ndarray) else np.asarray(values)
    kind = arr.dtype.kind
    if kind in "biuf":
        if kind == "f":
            finite = np.isfinite(arr)
            if not finite.all():  # copy only when something is dropped
                arr = arr[finite]
            del finite
        result = RawSide(arr)
    elif column_type == "num":
        raise DataError(
            f"column {name!r} in the {side} data has dtype {arr.dtype}, "
            "but a numerical column needs numbers",
            hint="declare the column categorical, or fix the data",
        )
    elif kind in "OUS":
        try:
            arrow = pa.array(arr, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # Mixed Python objects: normalise to text (rare; per-value Python is acceptable).
            arrow = pa.array(
                [None if v is None or v != v else str(v) for v in arr.tolist()], type=pa.string()
            )
        result = RawSide(arrow.drop_null())
    else:
        raise DataError(f"column {name!r} in the {side} data has unsupported dtype {arr.dtype}")
    if result.n == 0:
        raise DataError(
            f"column {name!r} in the {side} data has no usable values (all missing or infinite)"
        )
    return result


def _sort_keys(keys: set[Any]) -> list[Any]:
    try:
        return sorted(keys)
    except TypeError:
        return sorted(keys, key=lambda k: (type(k).__name__, str(k)))


def _aligned_counts(
    name: str, ref: ColumnSide, cur: ColumnSide
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Reference and current counts on the ascending union of their keys."""
    rc = ref.counts()
    cc = cur.counts()
    if rc is None or cc is None:
        raise CheckError(
            f"column {name!r}: the reference profile keeps no per-value counts for it "
            "(too many distinct values), so a per-value method cannot run",
            hint="rebuild the profile with the column declared categorical",
        )
    keys = _sort_keys(set(rc) | set(cc))
    ref_counts = np.array([rc.get(k, 0) for k in keys], dtype=np.int64)
    cur_counts = np.array([cc.get(k, 0) for k in keys], dtype=np.int64)
    return ref_counts, cur_counts


def _union_distinct_upto(ref: ColumnSide, cur: ColumnSide, cap: int) -> int:
    if ref.distinct_upto(cap) > cap or cur.distinct_upto(cap) > cap:
        return cap + 1
    rc, cc = ref.counts(), cur.counts()
    assert rc is not None and cc is not None  # a side with few values always keeps counts
    return min(len(set(rc) | set(cc)), cap + 1)


def default_method(ref: ColumnSide, cur: ColumnSide, column_type: str) -> str:
    """The method evidently's ``_get_default_stattest`` picks for this column."""
    if column_type == "cat" and ref.n > SMALL_REFERENCE:
        return "jensenshannon"
    n_values = _union_distinct_upto(ref, cur, 5)
    if ref.n <= SMALL_REFERENCE:
        if column_type == "num" and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    return "jensenshannon" if n_values <= 5 else "wasserstein"


def _binned_percents(
    name: str, ref: ColumnSide, cur: ColumnSide, column_type: str
) -> tuple[FloatArray, FloatArray]:
    """Evidently's ``get_binned_data`` without the zero filling."""
    if column_type == "num" and ref.distinct_upto(BINNING_MIN_DISTINCT) > BINNING_MIN_DISTINCT:
        rlo, rhi = ref.bounds()
        clo, chi = cur.bounds()
        edges = st.sturges_edges(
            min(rlo, clo), max(rhi, chi), ref.n + cur.n, integer=ref.integer and cur.integer
        )
        rw = ref.weights()
        if ref.exact:
            ref_hist = st.histogram_sorted(
                ref.sorted_values(), edges, None if rw is None else np.cumsum(rw)
            )
        else:
            assert rw is not None
            ref_hist = st.histogram_interpolated(ref.sorted_values(), rw, edges, rlo, rhi)
        cur_hist = st.histogram_sorted(cur.sorted_values(), edges)
        return ref_hist / ref.n, cur_hist / cur.n
    ref_counts, cur_counts = _aligned_counts(name, ref, cur)
    return st.percents_from_counts(ref_counts, ref.n), st.percents_from_counts(cur_counts, cur.n)


def compute_statistic(
    name: str, method: str, ref: ColumnSide, cur: ColumnSide, column_type: str
) -> float:
    """The drift statistic of ``method`` for one column (p-value or distance)."""
    if method == "z":
        return st.z_pvalue(*_aligned_counts(name, ref, cur))
    if method == "chisquare":
        return st.chisquare_pvalue(*_aligned_counts(name, ref, cur))
    if method == "ks":
        if ref.raw and cur.raw:
            assert isinstance(ref, RawSide) and isinstance(cur, RawSide)
            return float(_stats.ks_2samp(ref.sorted_values(), cur.sorted_values())[1])
        d = st.ks_statistic(ref.sorted_values(), ref.weights(), cur.sorted_values())
        return st.ks_pvalue(d, ref.n, cur.n)
    if method == "wasserstein":
        return st.wasserstein_norm(
            ref.sorted_values(), ref.weights(), cur.sorted_values(), ref.std()
        )
    if method == "jensenshannon":
        return st.jensenshannon_distance(*_binned_percents(name, ref, cur, column_type))
    if method == "psi":
        rp, cp = _binned_percents(name, ref, cur, column_type)
        return st.psi_value(st.fill_zeroes(rp), st.fill_zeroes(cp))
    raise CheckError(f"column {name!r}: unknown drift method {method!r}")  # pragma: no cover


def check_method(name: str, method: str, column_type: str) -> None:
    """Refuse a method evidently's registry would refuse for this column type."""
    if method not in st.METHODS:
        raise CheckError(
            f"column {name!r}: unknown drift method {method!r}",
            hint=f"choose one of {', '.join(METHOD_NAMES)}",
        )
    if column_type == "cat" and method in _NUMERIC_ONLY:
        raise CheckError(f"column {name!r} is categorical; method {method!r} needs numbers")
    if column_type == "num" and method in _CATEGORICAL_ONLY:
        raise CheckError(
            f"column {name!r} is numerical; method {method!r} applies to categorical columns",
            hint="declare the column categorical to use it",
        )


def column_drift(
    name: str,
    ref: ColumnSide,
    cur: ColumnSide,
    column_type: str,
    method: str | None,
    threshold: float | None,
) -> dict[str, Any]:
    """The evidence entry of one column."""
    if method is None:
        method = default_method(ref, cur, column_type)
    else:
        check_method(name, method, column_type)
    spec = st.METHODS[method]
    thr = spec.default_threshold if threshold is None else float(threshold)
    statistic = compute_statistic(name, method, ref, cur, column_type)
    return {
        "method": method,
        "statistic": statistic,
        "threshold": thr,
        "drifted": spec.drifted(statistic, thr),
        "column_type": column_type,
    }


def summarise(columns: dict[str, dict[str, Any]], drift_share: float) -> dict[str, Any]:
    """Wrap per-column entries with the data-set verdict (share drifted ≥ drift_share)."""
    if not columns:
        raise CheckError("drift needs at least one column")
    drifted = sum(1 for c in columns.values() if c["drifted"])
    share = drifted / len(columns)
    return {
        "columns": columns,
        "number_of_columns": len(columns),
        "number_drifted": drifted,
        "share_drifted": share,
        "dataset_drift": bool(share >= drift_share),
        "drift_share": float(drift_share),
    }


def resolve_column_type(name: str, current: Any, column_types: Mapping[str, str] | None) -> str:
    """The declared type of a column, or the one evidently would infer from current data."""
    declared = (column_types or {}).get(name)
    if declared is None:
        return infer_column_type(np.asarray(current), name=name)
    if declared not in ("num", "cat"):
        raise CheckError(f"column {name!r}: column type must be 'num' or 'cat', not {declared!r}")
    return declared


def drift_evidence(
    reference: Mapping[str, NDArray[Any]],
    current: Mapping[str, NDArray[Any]],
    *,
    column_types: Mapping[str, str] | None = None,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = 0.5,
) -> dict[str, Any]:
    """Per-column drift of ``current`` against ``reference`` and the data-set verdict.

    Columns are those of ``reference``, in its order; each must be present in ``current``.
    ``methods`` and ``thresholds`` override evidently's defaults per column. See the module
    docstring for the exact rules.

    Each mapping is read one column at a time (``mapping[name]``, once per column) and that
    column's arrays are released before the next: a per-column statistic needs only its own
    two columns and the verdict only the per-column verdicts. So a lazy mapping such as
    :class:`agent.data.ColumnReader` keeps memory at one column pair, whatever the width.
    """
    methods = methods or {}
    thresholds = thresholds or {}
    columns: dict[str, dict[str, Any]] = {}
    for name in list(reference):
        if name not in current:
            raise DataError(f"column {name!r} is in the reference data but not in the current")
        cur_values = current[name]
        ctype = resolve_column_type(name, cur_values, column_types)
        ref = clean_column(reference[name], ctype, name=name, side="reference")
        cur = clean_column(cur_values, ctype, name=name, side="current")
        del cur_values  # the cleaned side may be a filtered copy: drop the raw column now
        columns[name] = column_drift(name, ref, cur, ctype, methods.get(name), thresholds.get(name))
        del ref, cur
    return summarise(columns, drift_share)
