"""A deterministic, mergeable quantile sketch (KLL-style compactors), pure and in bounded memory.

:class:`QuantileSketch` summarises a stream of numbers in O(capacity · levels) memory. Level h
holds values that each stand for 2**h rows. When a level holds more than ``capacity`` values
it is sorted and every other value (the offset alternating 0/1 per level, to cancel bias)
moves up one level with twice the weight; an odd leftover stays. :meth:`QuantileSketch.finish`
returns the kept values sorted with integer weights, flattened to at most ``capacity`` points.

Invariants:

* the weights always sum to the number of values added (:attr:`QuantileSketch.n`);
* deterministic: the same values added in the same chunks give the same points;
* **rank-error bound**: for every x, the estimated rank (the weight of points ≤ x) differs
  from the true rank (values ≤ x) by at most ε·n, with ε = :func:`rank_error_bound` =
  (L + 1) / capacity and L the number of levels used. Each compaction at level h moves any
  rank by at most 2**h and happens at most n / (2**h · capacity) times, so each of the
  L − 1 compacting levels adds at most n / capacity; the final flattening into ``capacity``
  equal-weight buckets adds at most one bucket (≈ n / capacity, the +1 covers rounding).
  While nothing was compacted or flattened the points are the values themselves (exact).
  ``tests/checks/test_sketch.py`` checks the bound on random data with hypothesis.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from trust.errors import CheckError

__all__ = ["QuantileSketch", "SketchPoints", "rank_error_bound"]

FloatArray = NDArray[np.float64]


def rank_error_bound(levels: int, capacity: int) -> float:
    """The bound ε on rank error, as a share of rows, of a sketch with ``levels`` levels."""
    return (levels + 1) / capacity


class SketchPoints(NamedTuple):
    """A finished sketch: sorted ``values``, their integer ``weights``, and ``exact``."""

    values: FloatArray
    weights: NDArray[np.int64]
    #: True when every value added is still there with weight 1 (nothing compacted).
    exact: bool


class QuantileSketch:
    """Deterministic mergeable quantile sketch: compactors with alternating offsets.

    See the module docstring for the algorithm and its rank-error bound.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise CheckError(f"sketch capacity must be at least 2, got {capacity}")
        self.capacity = capacity
        self._levels: list[FloatArray] = [np.empty(0)]
        self._flips: list[int] = [0]
        self._compacted = False
        self._n = 0

    @property
    def n(self) -> int:
        """How many values have been added."""
        return self._n

    @property
    def levels(self) -> int:
        """How many compactor levels are in use (L in the error bound)."""
        return len(self._levels)

    def add(self, values: FloatArray) -> None:
        """Add a chunk of values (finite floats; the caller drops NaN and ±inf)."""
        self._n += len(values)
        self._levels[0] = np.concatenate([self._levels[0], values])
        h = 0
        while h < len(self._levels):
            buf = self._levels[h]
            if len(buf) > self.capacity:
                self._compacted = True
                buf = np.sort(buf)
                odd = len(buf) % 2
                body, rest = buf[: len(buf) - odd], buf[len(buf) - odd :]
                if h + 1 == len(self._levels):
                    self._levels.append(np.empty(0))
                    self._flips.append(0)
                promoted = body[self._flips[h] :: 2]
                self._flips[h] ^= 1
                self._levels[h] = rest
                self._levels[h + 1] = np.concatenate([self._levels[h + 1], promoted])
            h += 1

    def finish(self) -> SketchPoints:
        """Sorted values, integer weights, and whether every value is still there.

        Does not change the sketch; more values may be added afterwards.
        """
        values = np.concatenate(self._levels)
        weights = np.concatenate(
            [np.full(len(lv), 2**h, dtype=np.int64) for h, lv in enumerate(self._levels)]
        )
        order = np.argsort(values, kind="stable")
        values, weights = values[order], weights[order]
        exact = not self._compacted
        if len(values) > self.capacity:
            exact = False
            total = int(weights.sum())
            cum = np.cumsum(weights)
            bounds = np.rint(np.arange(1, self.capacity + 1) * (total / self.capacity))
            bounds = bounds.astype(np.int64)
            bounds[-1] = total
            starts = np.concatenate([[0], bounds[:-1]])
            keep = bounds > starts
            starts, bounds = starts[keep], bounds[keep]
            mids = (starts + bounds) / 2.0
            values = values[np.minimum(np.searchsorted(cum, mids, side="left"), len(values) - 1)]
            weights = (bounds - starts).astype(np.int64)
        return SketchPoints(values, weights, exact)
