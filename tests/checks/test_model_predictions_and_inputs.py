"""Model predictions, performance edge cases and data reading, against scikit-learn.

Each test compares against scikit-learn (or the other file format) and covers one case that
once went wrong: positive-class column, integer multiclass models, float32 ONNX
probabilities, constant regression targets, CSV null words, late floats in an int column,
model failures, out-of-range scores, a third binary value, and the small-group default.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sklearn.metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression

from agent import data as datamod
from agent.checks.evidence import CheckSpec, run_checks
from agent.checks.performance import ClassificationAccumulator, RegressionAccumulator
from trust.cli.main import main
from trust.errors import CheckError, DataError


def _features(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    return x, x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.8, size=n)


def _write_csv(path: Path, columns: dict[str, list[object]]) -> Path:
    names = list(columns)
    rows = zip(*(columns[c] for c in names), strict=True)
    path.write_text(
        ",".join(names) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows),
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def yes_no(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A LogisticRegression with string classes ['no', 'yes'], saved as skops, and its data."""
    import skops.io as sio

    d = tmp_path_factory.mktemp("yn")
    x, z = _features(300, 1)
    y = np.where(z > 0, "yes", "no")
    import pandas as pd

    frame = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1]})
    est = LogisticRegression().fit(frame, y)
    sio.dump(est, d / "m.skops")
    csv = _write_csv(d / "d.csv", {"x1": list(x[:, 0]), "x2": list(x[:, 1]), "y": list(y)})
    return {"model": d / "m.skops", "csv": csv, "est": est, "frame": frame, "y": y, "dir": d}


# ---------------------------------------------------------------- 1. positive-class column


@pytest.mark.parametrize("pos", ["no", "yes"])
def test_pos_label_picks_its_probability_column(yes_no, pos: str) -> None:
    ev = run_checks(CheckSpec(data=yes_no["csv"], label="y", model=yes_no["model"], pos_label=pos))
    est = yes_no["est"]
    col = list(est.classes_).index(pos)
    proba = est.predict_proba(yes_no["frame"])[:, col]
    truth = (yes_no["y"] == pos).astype(int)
    assert ev["performance"]["roc_auc"] == pytest.approx(skm.roc_auc_score(truth, proba), 1e-12)
    assert ev["performance"]["log_loss"] == pytest.approx(skm.log_loss(truth, proba), 1e-12)


def test_pos_label_not_a_model_class_is_refused(yes_no) -> None:
    with pytest.raises(DataError, match=r"m\.skops: pos_label 'maybe' is not one of"):
        run_checks(
            CheckSpec(data=yes_no["csv"], label="y", model=yes_no["model"], pos_label="maybe")
        )


# ------------------------------------------------- 2./3. multiclass skops, joblib, ONNX


@pytest.fixture(scope="module")
def three_class(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    import joblib
    import skops.io as sio
    from skl2onnx import to_onnx

    d = tmp_path_factory.mktemp("multi")
    x, z = _features(400, 2)
    y = np.digitize(z, [-0.6, 0.6])  # integer classes 0, 1, 2
    est = LogisticRegression().fit(x, y)
    sio.dump(est, d / "m.skops")
    joblib.dump(est, d / "m.joblib")
    onx = to_onnx(est, x[:1].astype(np.float32))
    (d / "m.onnx").write_bytes(onx.SerializeToString())
    csv = _write_csv(d / "d.csv", {"x1": list(x[:, 0]), "x2": list(x[:, 1]), "y": list(y)})
    return {"dir": d, "csv": csv, "x": x, "y": y, "est": est}


@pytest.mark.parametrize("suffix", ["skops", "joblib", "onnx"])
def test_multiclass_model_with_integer_classes(three_class, suffix: str) -> None:
    d: Path = three_class["dir"]  # type: ignore[assignment]
    ev = run_checks(
        CheckSpec(
            data=three_class["csv"],
            label="y",
            task="multiclass",
            model=d / f"m.{suffix}",
            features=("x1", "x2"),
            trust_pickle=True,
            chunk_rows=97,
        )
    )["performance"]
    est, x, y = three_class["est"], three_class["x"], three_class["y"]
    if suffix == "onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(d / "m.onnx"), providers=["CPUExecutionProvider"])
        label, zipmap = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})
        pred = np.asarray(label)
        proba = np.array([[row[k] for k in (0, 1, 2)] for row in zipmap], dtype=np.float32)
    else:
        pred, proba = est.predict(x), est.predict_proba(x)
    assert ev["classes"] == ["0", "1", "2"]
    assert ev["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert ev["roc_auc_ovr_macro"] == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr"), abs=1e-12
    )
    assert ev["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=[0, 1, 2]), rel=1e-6)


def test_float32_probabilities_judged_at_float32_precision() -> None:
    rng = np.random.default_rng(3)
    s = rng.dirichlet(np.ones(3), 500).astype(np.float32)
    s[:, 2] = np.float32(1) - s[:, 0] - s[:, 1]
    s[0] = np.array([0.1, 0.2, 0.70000009], dtype=np.float32)  # sums to 1 + ~9e-8
    y = rng.integers(0, 3, 500)
    acc = ClassificationAccumulator("multiclass", classes=[0, 1, 2])
    acc.update(y, y, s)
    assert acc.evidence()["log_loss"] == pytest.approx(
        skm.log_loss(y, s, labels=[0, 1, 2]), rel=1e-6
    )
    with pytest.raises(CheckError, match="summing to 1"):
        acc.update(y[:1], y[:1], s[:1].astype(np.float64) * 1.001)


# ------------------------------------------------------------ 4. constant regression target


@pytest.mark.parametrize("chunk", [1, 3, 7, 50])
def test_constant_target_r2_chunked_equals_whole(chunk: int) -> None:
    rng = np.random.default_rng(5)
    y = np.full(50, 0.1)
    for pred, want in ((y + rng.normal(size=50), 0.0), (y.copy(), 1.0)):
        acc = RegressionAccumulator()
        for s in range(0, 50, chunk):
            acc.update(y[s : s + chunk], pred[s : s + chunk])
        whole = RegressionAccumulator()
        whole.update(y, pred)
        assert acc.evidence()["r2"] == whole.evidence()["r2"] == want
        assert skm.r2_score(y[:2], pred[:2]) == want  # scikit-learn's rule for a constant


# -------------------------------------------------------------------- 5. CSV null words


def test_csv_null_words_are_values_as_in_parquet(tmp_path: Path) -> None:
    words = ["NA", "null", "N/A", "nan", "", "x"] * 4
    y = [i % 2 for i in range(len(words))]
    p = [(i // 2) % 2 for i in range(len(words))]
    csv = _write_csv(tmp_path / "d.csv", {"y": y, "yp": p, "region": words})
    table = pa.table({"y": y, "yp": p, "region": pa.array([w or None for w in words], pa.string())})
    pq.write_table(table, tmp_path / "d.parquet")
    sections = []
    for f in (csv, tmp_path / "d.parquet"):
        ev = run_checks(
            CheckSpec(data=f, label="y", pred="yp", sensitive=("region",), min_group_size=0)
        )
        sections.append((ev["performance"], ev["fairness"]))
    assert sections[0] == sections[1]
    groups = datamod.read_columns(csv, ["region"])["region"]
    assert list(groups[:6]) == ["NA", "null", "N/A", "nan", None, "x"]


# ------------------------------------------------------- 6. late fraction in an int column


def test_int_column_with_late_fraction_is_read_as_float(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datamod, "_CSV_BLOCK_BYTES", 256)  # the first block is all ints
    vals = [str(i % 7) for i in range(300)] + ["0.75"] + ["3"] * 20
    csv = _write_csv(tmp_path / "d.csv", {"k": ["a"] * len(vals), "target": vals})
    got = np.concatenate([c["target"] for c in datamod.iter_chunks(csv, chunk_rows=64)])
    np.testing.assert_array_equal(got, np.array(vals, dtype=np.float64))
    assert sum(len(c["k"]) for c in datamod.iter_chunks(csv, ["k", "target"])) == len(vals)
    bad = _write_csv(tmp_path / "b.csv", {"k": ["a"] * len(vals), "target": vals[:-1] + ["abc"]})
    with pytest.raises(DataError, match="in column 'target'.*'abc'"):
        datamod.read_columns(bad)


# -------------------------------------------------------------- 7. model failure, one line


@pytest.mark.parametrize("bad", ["nan", "abc"])
def test_prediction_failure_is_one_line_check_error(yes_no, bad: str, capsys) -> None:
    d: Path = yes_no["dir"]  # type: ignore[assignment]
    csv = _write_csv(d / f"bad_{bad}.csv", {"x1": [0.1, bad], "x2": [0.2, 0.3], "y": ["yes", "no"]})
    with pytest.raises(CheckError) as info:
        run_checks(CheckSpec(data=csv, label="y", model=yes_no["model"], pos_label="yes"))
    msg = info.value.message
    assert f"bad_{bad}.csv" in msg and "m.skops" in msg and "prediction failed" in msg
    code = main(
        [
            "check",
            "run",
            "--data",
            str(csv),
            "--label",
            "y",
            "--model",
            str(yes_no["model"]),
            "--pos-label",
            "yes",
        ]
    )
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and "prediction failed" in err


# ---------------------------------------------------------- 8. scores outside [0, 1]


@pytest.mark.parametrize("value", ["1.5", "-0.2", "inf"])
def test_binary_score_out_of_range_is_refused(tmp_path: Path, value: str) -> None:
    csv = _write_csv(
        tmp_path / "d.csv", {"y": [0, 1, 1, 0], "yp": [0, 1, 0, 0], "p": [0.1, 0.9, value, 0.2]}
    )
    shown = repr(float(value))
    with pytest.raises(DataError, match=rf"d\.csv: column 'p' .*\[0, 1\], found {shown}"):
        run_checks(CheckSpec(data=csv, label="y", pred="yp", score=("p",)))


# ---------------------------------------------------------- 9. a third binary value


@pytest.mark.parametrize("chunk", [2, 1000])
def test_third_label_value_refused_with_pos_label(tmp_path: Path, chunk: int) -> None:
    labels = ["yes", "no", "yes", "no", "maybe", "no"]
    csv = _write_csv(tmp_path / "d.csv", {"y": labels, "yp": ["yes"] * 6})
    with pytest.raises(DataError, match="third value 'maybe'"):
        run_checks(CheckSpec(data=csv, label="y", pred="yp", pos_label="yes", chunk_rows=chunk))
    ok = _write_csv(tmp_path / "ok.csv", {"y": labels[:4], "yp": ["yes"] * 4})
    ev = run_checks(CheckSpec(data=ok, label="y", pred="yp", pos_label="yes", chunk_rows=chunk))
    assert ev["performance"]["positive_rate"] == 0.5


# ---------------------------------------------------------- 10. small-group default


def test_cli_min_group_size_defaults_to_ten(tmp_path: Path, capsys) -> None:
    import json

    n = 60
    g = ["a"] * 50 + ["b"] * 9 + ["c"]
    csv = _write_csv(tmp_path / "d.csv", {"y": [i % 2 for i in range(n)], "yp": [1] * n, "g": g})
    assert (
        main(
            ["check", "run", "--data", str(csv), "--label", "y", "--pred", "yp", "--sensitive", "g"]
        )
        == 0
    )
    fair = json.loads(capsys.readouterr().out)["fairness"]["g"]
    assert fair["min_group_size"] == 10
    assert fair["suppressed_groups"] == ["b", "c"]
    assert fair["groups"]["c"]["suppressed"] is True


def test_regression_model_end_to_end_still_matches(tmp_path: Path) -> None:
    """Guard: the predict refactor keeps regression models working (no probabilities)."""
    import skops.io as sio

    x, z = _features(120, 8)
    est = LinearRegression().fit(x, z)
    sio.dump(est, tmp_path / "r.skops")
    csv = _write_csv(tmp_path / "d.csv", {"x1": list(x[:, 0]), "x2": list(x[:, 1]), "z": list(z)})
    ev = run_checks(
        CheckSpec(
            data=csv,
            label="z",
            task="regression",
            model=tmp_path / "r.skops",
            features=("x1", "x2"),
        )
    )["performance"]
    assert math.isclose(ev["r2"], skm.r2_score(z, est.predict(x)), rel_tol=1e-9)
