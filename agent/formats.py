"""Which file suffixes the agent reads, and as what: the one table, importing nothing heavy.

The model loader (:mod:`agent.predict`), the data reader (:mod:`agent.data`) and the model
registry (:mod:`agent.registry`) all decide by suffix; the registry runs in the idle daemon,
which must not import NumPy or pyarrow, so the tables live here rather than in the loaders.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["DATA_SUFFIXES", "MODEL_SUFFIXES", "DataFormat", "ModelKind", "data_format"]

ModelKind = Literal["skops", "joblib", "onnx"]
MODEL_SUFFIXES: dict[str, ModelKind] = {
    ".skops": "skops",
    ".joblib": "joblib",
    ".pkl": "joblib",
    ".pickle": "joblib",
    ".onnx": "onnx",
}
"""Model artefact suffix → how :func:`agent.predict.load_model` loads it."""

DataFormat = Literal["csv", "parquet"]
DATA_SUFFIXES: dict[str, DataFormat] = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".csv.bz2": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
"""Tabular data suffix (compressed CSV included) → how :mod:`agent.data` reads it."""


def data_format(name: str) -> DataFormat | None:
    """The data format a file name's suffix names, or ``None`` if it names none."""
    lowered = name.lower()
    for suffix, fmt in DATA_SUFFIXES.items():
        if lowered.endswith(suffix):
            return fmt
    return None
