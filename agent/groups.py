"""Sensitive-feature values as groups: integer codes and group names for the fairness counts.

Pure functions over NumPy arrays (no file is read here; :mod:`agent.data` re-exports these
names). Invariants:

* a null or NaN value becomes the explicit group :data:`MISSING_GROUP`; it is never dropped;
* group names are strings: integral floats print as integers (``1.0`` is ``"1"``), booleans
  as ``"true"``/``"false"``, other floats by ``repr``;
* raw values that print the same (``1`` and ``1.0``, ``None`` and NaN) are one group;
* :func:`factorize` is linear in the chunk length (Arrow's hash-based dictionary encoding, or
  a lookup table for a small integer range).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["MISSING_GROUP", "factorize", "group_labels"]

MISSING_GROUP = "missing"


def _group_name(v: Any) -> str:
    if v is None:
        return MISSING_GROUP
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return MISSING_GROUP
        if float(v).is_integer():
            return str(int(v))
        return repr(float(v))
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, np.generic):
        return str(v.item())
    return str(v)


def factorize(values: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Integer codes and their group names for one sensitive-feature chunk.

    Codes index into the returned names; names are strings (integral floats print as
    integers, booleans as ``true``/``false``); null and NaN map to :data:`MISSING_GROUP`.
    Uses Arrow's hash-based dictionary encoding, linear in the chunk length.
    """
    if values.dtype.kind in "iu" and len(values):
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < 1 << 16:  # small integer range: a lookup table beats hashing
            present = np.flatnonzero(np.bincount(values - lo, minlength=hi - lo + 1))
            lut = np.full(hi - lo + 1, -1, dtype=np.int64)
            lut[present] = np.arange(len(present))
            return lut[values - lo], [str(int(x) + lo) for x in present]
    arr = pa.array(values, from_pandas=True)
    encoded = pc.dictionary_encode(arr, null_encoding="encode")
    assert isinstance(encoded, pa.DictionaryArray)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    names = [_group_name(v) for v in encoded.dictionary.to_pylist()]
    if len(set(names)) != len(names):
        # Distinct raw values that print the same (1 and 1.0, None and NaN): merge them.
        uniq: dict[str, int] = {}
        remap = np.array([uniq.setdefault(n, len(uniq)) for n in names], dtype=np.int64)
        return remap[codes], list(uniq)
    return codes, names


def group_labels(values: npt.NDArray[Any]) -> npt.NDArray[np.object_]:
    """Sensitive-feature values as group-name strings (null/NaN become ``"missing"``)."""
    codes, names = factorize(values)
    return np.asarray(names, dtype=object)[codes] if len(values) else np.empty(0, dtype=object)
