"""Run evidently's ``DataDriftPreset`` and return its per-column results in Warden's shape.

Imported lazily by the drift and profile tests (evidently takes seconds to import), and by
``bench/drift.py``, so the benchmark checks agreement exactly as the tests do. Accepts dicts of
arrays or DataFrames.
"""

from __future__ import annotations

from typing import Any

#: evidently's display names back to stattest names.
DISPLAY_TO_METHOD = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Jensen-Shannon distance": "jensenshannon",
    "Wasserstein distance (normed)": "wasserstein",
    "PSI": "psi",
}
# An explicitly chosen method is reported under its own name.
DISPLAY_TO_METHOD.update({m: m for m in set(DISPLAY_TO_METHOD.values())})


def evidently_drift(
    reference: Any,
    current: Any,
    *,
    per_column_method: dict[str, str] | None = None,
    per_column_threshold: dict[str, float] | None = None,
    drift_share: float = 0.5,
) -> dict[str, Any]:
    """``Report([DataDriftPreset(...)])`` on the same arrays, as a Warden-shaped dict."""
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    preset = DataDriftPreset(
        drift_share=drift_share,
        per_column_method=per_column_method,
        per_column_threshold=per_column_threshold,
    )
    snapshot = Report([preset], include_tests=True).run(
        pd.DataFrame(current), pd.DataFrame(reference)
    )
    out = snapshot.dict()
    columns: dict[str, dict[str, Any]] = {}
    summary: dict[str, Any] = {}
    for metric in out["metrics"]:
        cfg = metric["config"]
        if cfg["type"].endswith("ValueDrift"):
            columns[cfg["column"]] = {
                "method": DISPLAY_TO_METHOD[cfg["method"]],
                "threshold": float(cfg["threshold"]),
                "statistic": float(metric["value"]),
            }
        elif cfg["type"].endswith("DriftedColumnsCount"):
            summary = {
                "number_drifted": int(metric["value"]["count"]),
                "share_drifted": float(metric["value"]["share"]),
            }
    for test in out["tests"]:
        if test["name"].startswith("Value Drift for column "):
            col = test["name"][len("Value Drift for column ") :]
            columns[col]["drifted"] = test["status"] == "FAIL"
        elif test["name"].startswith("Share of Drifted Columns"):
            summary["dataset_drift"] = test["status"] == "FAIL"
    return {"columns": columns, **summary}
