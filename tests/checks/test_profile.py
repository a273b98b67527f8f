"""Reference profiles: same verdicts as the raw reference, exact where promised, safe to load."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agent.checks.drift import drift_evidence
from agent.checks.files import load_profile, save_profile
from agent.checks.profile import SKETCH_CAPACITY, ReferenceProfile
from agent.checks.profile_format import profile_to_bytes
from trust.cli.main import main
from trust.errors import DataError, FormatError


def _data(rng: np.random.Generator, n: int, shift: float) -> dict[str, np.ndarray]:
    return {
        "normal": rng.normal(shift, 1.0, n),
        "skewed": rng.lognormal(shift / 2, 1.0, n),
        "with_nan": np.where(rng.random(n) < 0.1, np.nan, rng.exponential(1 + shift, n)),
        "int_wide": rng.integers(0, 40, n) + int(shift * 4),
        "int_low": rng.integers(0, 4, n),
        "float_3vals": rng.integers(0, 3, n).astype(float),
        "category": rng.choice(
            np.array(["a", "b", "c", "d"], dtype=object),
            n,
            p=[0.4, 0.3, 0.2, 0.1] if shift == 0 else [0.25] * 4,
        ),
        "flag": rng.random(n) < 0.3 + shift / 5,
    }


def _chunks(data: dict[str, np.ndarray], size: int) -> Iterator[dict[str, np.ndarray]]:
    n = len(next(iter(data.values())))
    for i in range(0, n, size):
        yield {k: v[i : i + size] for k, v in data.items()}


@pytest.mark.parametrize("n_ref", [700, 1001, 12000])
@pytest.mark.parametrize("shift", [0.0, 0.4])
def test_exact_profile_equals_raw_reference(n_ref: int, shift: float) -> None:
    """Below the sketch capacity every column is exact: identical evidence to raw data."""
    rng = np.random.default_rng(n_ref + int(shift * 10))
    ref, cur = _data(rng, n_ref, 0.0), _data(rng, 900, shift)
    profile = ReferenceProfile.build(_chunks(ref, 1000))
    for methods in (
        None,
        {
            "normal": "psi",
            "skewed": "jensenshannon",
            "with_nan": "ks",
            "int_wide": "wasserstein",
            "category": "z",
        },
    ):
        raw = drift_evidence(ref, cur, methods=methods)
        prof = profile.compare(_chunks(cur, 256), methods=methods)
        assert prof["dataset_drift"] == raw["dataset_drift"]
        for col, r in raw["columns"].items():
            p = prof["columns"][col]
            assert p["exact"] is True, col
            assert (p["method"], p["drifted"]) == (r["method"], r["drifted"]), col
            assert p["statistic"] == pytest.approx(r["statistic"], rel=1e-9, abs=1e-12), col


# Stated tolerances for a sketched (approximate) reference column, as (absolute, relative):
# Wasserstein moves by at most ε·(max−min)/std; the binned distances are most sensitive near
# zero (JS is a square root) and in sparse tail bins (PSI's log ratio).
APPROX_TOLERANCE = {
    "wasserstein": (0.005, 0.0),
    "jensenshannon": (0.005, 0.02),
    "psi": (0.005, 0.02),
}


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.3, 1.0])
def test_sketched_profile_gives_raw_verdicts(shift: float) -> None:
    rng = np.random.default_rng(int(shift * 100))
    n_ref = 6 * SKETCH_CAPACITY
    ref, cur = _data(rng, n_ref, 0.0), _data(rng, 20000, shift)
    profile = ReferenceProfile.build(_chunks(ref, 30000))
    assert not next(c for c in profile.columns if c.name == "normal").exact
    numeric = ("normal", "skewed", "with_nan")
    for method in ("wasserstein", "jensenshannon", "psi", "ks"):
        methods = dict.fromkeys(numeric, method)
        raw = drift_evidence(ref, cur, methods=methods)
        prof = profile.compare(cur, methods=methods)
        for col in numeric:
            r, p = raw["columns"][col], prof["columns"][col]
            assert p["exact"] is False
            assert p["drifted"] == r["drifted"], (method, col, r, p)
            if method == "ks":
                # p-values: compare the verdict and the order of magnitude.
                assert (
                    abs(
                        np.log10(max(p["statistic"], 1e-300))
                        - np.log10(max(r["statistic"], 1e-300))
                    )
                    < 0.5
                    or r["statistic"] < 1e-6
                )
            else:
                tol_abs, tol_rel = APPROX_TOLERANCE[method]
                assert p["statistic"] == pytest.approx(r["statistic"], abs=tol_abs, rel=tol_rel)
        # Counted columns stay exact even in a large reference.
        assert prof["columns"]["category"]["exact"] is True
        assert prof["columns"]["int_wide"]["exact"] is True


def test_profile_parity_with_evidently() -> None:
    pytest.importorskip("evidently")
    from ._evidently_oracle import evidently_drift

    rng = np.random.default_rng(11)
    ref, cur = _data(rng, 3000, 0.0), _data(rng, 2000, 0.4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = evidently_drift(ref, cur)
    ours = ReferenceProfile.build(_chunks(ref, 512)).compare(cur)
    for col, ev in theirs["columns"].items():
        w = ours["columns"][col]
        assert (w["method"], w["drifted"]) == (ev["method"], ev["drifted"]), col
        assert w["statistic"] == pytest.approx(ev["statistic"], abs=1e-6), col
    assert ours["dataset_drift"] == theirs["dataset_drift"]


def test_save_load_round_trip_is_canonical_and_deterministic(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    ref = _data(rng, 3 * SKETCH_CAPACITY, 0.0)
    a = ReferenceProfile.build(_chunks(ref, 10000))
    b = ReferenceProfile.build(_chunks(ref, 10000))
    assert profile_to_bytes(a) == profile_to_bytes(b)
    path = tmp_path / "ref.profile"
    save_profile(a, path)
    loaded = load_profile(path)
    assert profile_to_bytes(loaded) == path.read_bytes()
    cur = _data(rng, 5000, 0.2)
    assert loaded.compare(cur) == a.compare(cur)
    doc = json.loads(path.read_bytes())
    assert (doc["format"], doc["version"]) == ("warden.reference-profile", 1)


def _tamper(doc: dict[str, Any], how: str) -> dict[str, Any]:
    col = doc["columns"][0]
    if how == "format":
        doc["format"] = "something-else"
    elif how == "version":
        doc["version"] = 99
    elif how == "no columns":
        doc["columns"] = []
    elif how == "n mismatch":
        col["n"] += 1
    elif how == "bad base64":
        col["numeric"]["sketch"]["values_f8le"] = "!!!"
    elif how == "unsorted sketch":
        vals = np.frombuffer(base64.b64decode(col["numeric"]["sketch"]["values_f8le"]), "<f8")
        col["numeric"]["sketch"]["values_f8le"] = base64.b64encode(vals[::-1].tobytes()).decode()
    elif how == "bad dtype":
        col["dtype"] = "complex"
    elif how == "missing name":
        del col["name"]
    return doc


TAMPERS = [
    "format",
    "version",
    "no columns",
    "n mismatch",
    "bad base64",
    "unsorted sketch",
    "bad dtype",
    "missing name",
]


@pytest.mark.parametrize("how", TAMPERS)
def test_bad_profile_files_raise_format_error(tmp_path: Path, how: str) -> None:
    rng = np.random.default_rng(1)
    profile = ReferenceProfile.build([{"x": rng.normal(size=3000)}])
    doc = _tamper(json.loads(profile_to_bytes(profile)), how)
    path = tmp_path / "bad.profile"
    path.write_text(json.dumps(doc))
    with pytest.raises(FormatError):
        load_profile(path)


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("not json")
    with pytest.raises(FormatError, match="not valid JSON"):
        load_profile(tmp_path / "x")
    with pytest.raises(FormatError, match="cannot read"):
        load_profile(tmp_path / "absent")


def test_build_errors() -> None:
    with pytest.raises(DataError, match="empty"):
        ReferenceProfile.build([])
    with pytest.raises(DataError, match="no usable values"):
        ReferenceProfile.build([{"x": np.full(10, np.nan)}])
    with pytest.raises(DataError, match="declared numerical"):
        ReferenceProfile.build([{"s": np.array(["a"], dtype=object)}], column_types={"s": "num"})


def test_int_chunks_widened_by_nulls_stay_one_column() -> None:
    chunks = [{"v": np.array([1, 2, 3])}, {"v": np.array([4.0, np.nan, 2.0])}]
    profile = ReferenceProfile.build(chunks)
    col = profile.columns[0]
    assert (col.dtype, col.n, col.dropped) == ("float", 5, 1)
    assert dict(col.counts or ()) == {1: 1, 2: 2, 3: 1, 4: 1}


def test_cli_build_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(2)
    n = 2 * SKETCH_CAPACITY
    table = pa.table(
        {
            "x": rng.normal(size=n),
            "region": rng.choice(["n", "s"], n),
            "code": rng.integers(0, 50, n),
        }
    )
    src = tmp_path / "ref.parquet"
    pq.write_table(table, src)
    out = tmp_path / "ref.profile"
    assert (
        main(
            [
                "profile",
                "build",
                str(src),
                "--out",
                str(out),
                "--categorical",
                "code",
                "--chunk-rows",
                "5000",
            ]
        )
        == 0
    )
    assert "approximate (sketched): x" in capsys.readouterr().out
    profile = load_profile(out)
    assert [c.column_type for c in profile.columns] == [None, None, "cat"]
    assert main(["profile", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "sketch of" in shown and "counts of 2 values" in shown
    assert main(["profile", "show", str(out), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["columns"]
    assert [r["exact"] for r in rows] == [False, True, True]
    # Same file as CSV, only two columns.
    csv = tmp_path / "ref.csv"
    table.to_pandas().to_csv(csv, index=False)
    assert main(["profile", "build", str(csv), "--out", str(out), "--columns", "x,region"]) == 0
    assert load_profile(out).names == ("x", "region")
    # A user mistake is one line on stderr and exit code 2.
    assert main(["profile", "build", str(src), "--out", str(out), "--categorical", "nope"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_profile_build_out_directory_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "ref.csv"
    src.write_text("x,y\n1,a\n2,b\n3,a\n")
    outdir = tmp_path / "outdir"
    outdir.mkdir()
    assert main(["profile", "build", str(src), "--out", str(outdir)]) == 2
    err = capsys.readouterr().err
    assert "is a directory" in err and "Traceback" not in err
    missing = tmp_path / "nope" / "ref.profile"
    assert main(["profile", "build", str(src), "--out", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "cannot write profile" in err and "Traceback" not in err
