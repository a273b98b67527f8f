"""`warden check run` end to end: CSV and Parquet, predictions given or from a model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import sklearn.metrics as skm

from agent.checks.evidence import validate_evidence
from trust.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from gen_credit import generate  # noqa: E402

fl = pytest.importorskip("fairlearn.metrics")

FEATURES = ["income", "debt_ratio", "age", "credit_history_years", "open_accounts"]


@pytest.fixture(scope="module")
def credit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("credit")
    table = generate(3000, bias=0.2, seed=4)
    pq.write_table(table, d / "val.parquet", row_group_size=700)
    pacsv.write_csv(table, d / "val.csv")
    pq.write_table(generate(2000, seed=9, shift=0.4), d / "ref.parquet")
    return {"dir": d, "parquet": d / "val.parquet", "csv": d / "val.csv", "ref": d / "ref.parquet"}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_run_with_predictions_equals_oracles(credit, fmt: str, capsys) -> None:
    code, out, _ = run(
        [
            "check",
            "run",
            "--data",
            str(credit[fmt]),
            "--label",
            "repaid",
            "--pred",
            "approved",
            "--score",
            "p_approve",
            "--sensitive",
            "sex,age_band",
            "--chunk-rows",
            "500",
        ],
        capsys,
    )
    assert code == 0
    ev = json.loads(out)
    validate_evidence(ev)
    t = pq.read_table(credit["parquet"]).to_pandas()
    y, p = t["repaid"].to_numpy(), t["approved"].to_numpy()
    assert ev["performance"]["accuracy"] == pytest.approx(skm.accuracy_score(y, p), abs=1e-12)
    assert ev["performance"]["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, t["p_approve"]), abs=1e-12
    )
    sex = t["sex"].fillna("missing")
    assert ev["fairness"]["sex"]["demographic_parity_difference"] == pytest.approx(
        fl.demographic_parity_difference(y, p, sensitive_features=sex), abs=1e-12
    )
    both = t[["sex", "age_band"]].fillna("missing")
    assert ev["fairness"]["sex|age_band"]["equalized_odds_ratio"] == pytest.approx(
        fl.equalized_odds_ratio(y, p, sensitive_features=both), abs=1e-12
    )
    assert "missing" in ev["fairness"]["sex"]["groups"]
    assert ev["data"]["rows"] == 3000 and ev["drift"] is None


def test_model_onnx_and_skops_match_their_predictions(credit, tmp_path: Path, capsys) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    t = pq.read_table(credit["parquet"])
    X = np.column_stack([t[c].to_numpy().astype(np.float64) for c in FEATURES])
    y = t["repaid"].to_numpy()
    clf = LogisticRegression(max_iter=500).fit(X / X.std(axis=0), y)
    # A model that takes the raw columns: fold the scaling into the coefficients.
    clf.coef_ = clf.coef_ / X.std(axis=0)
    onx = skl2onnx.to_onnx(clf, X[:1].astype(np.float32), options={id(clf): {"zipmap": False}})
    (tmp_path / "m.onnx").write_bytes(onx.SerializeToString())
    sio.dump(clf, tmp_path / "m.skops")
    feats = ",".join(FEATURES)
    results = {}
    for name in ("m.onnx", "m.skops"):
        code, out, err = run(
            [
                "check",
                "run",
                "--data",
                str(credit["parquet"]),
                "--label",
                "repaid",
                "--model",
                str(tmp_path / name),
                "--features",
                feats,
                "--sensitive",
                "sex",
            ],
            capsys,
        )
        assert code == 0, err
        results[name] = json.loads(out)
    want = clf.predict(X)
    acc = skm.accuracy_score(y, want)
    assert results["m.skops"]["performance"]["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert results["m.skops"]["performance"]["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, clf.predict_proba(X)[:, 1]), abs=1e-12
    )
    # float32 inference may flip a prediction sitting exactly on the boundary
    assert results["m.onnx"]["performance"]["accuracy"] == pytest.approx(acc, abs=2e-3)
    assert results["m.onnx"]["lineage"]["model_sha256"] is not None


def test_joblib_refused_without_trust(credit, tmp_path: Path, capsys) -> None:
    (tmp_path / "m.joblib").write_bytes(b"whatever")
    code, _, err = run(
        [
            "check",
            "run",
            "--data",
            str(credit["csv"]),
            "--label",
            "repaid",
            "--model",
            str(tmp_path / "m.joblib"),
            "--features",
            "age",
        ],
        capsys,
    )
    assert code == 2 and "run code when loaded" in err


BAD = [
    ("missing column", ["--label", "repaid", "--pred", "aproved"], "no column 'aproved'"),
    (
        "non-binary label",
        ["--label", "age", "--pred", "approved"],
        "column 'age' must be binary (0/1), found value",
    ),
    (
        "string score",
        ["--label", "repaid", "--pred", "approved", "--score", "sex"],
        "column 'sex' must be numeric",
    ),
    ("no prediction", ["--label", "repaid"], "give the prediction column (--pred) or a model"),
]


@pytest.mark.parametrize(("case", "args", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_one_line_exit_2(credit, case, args, message, capsys) -> None:
    code, out, err = run(["check", "run", "--data", str(credit["csv"]), *args], capsys)
    assert code == 2 and out == ""
    first = err.splitlines()[0]
    assert first.startswith("error: ") and message in first
    assert "Traceback" not in err


def test_empty_file_exit_2(tmp_path: Path, capsys) -> None:
    (tmp_path / "e.csv").write_text("y,p\n")
    code, _, err = run(
        ["check", "run", "--data", str(tmp_path / "e.csv"), "--label", "y", "--pred", "p"], capsys
    )
    assert code == 2 and "e.csv: file has no rows" in err


def test_drift_lineage_documentation_and_table(credit, capsys) -> None:
    d: Path = credit["dir"]
    train = d / "train.parquet"
    pq.write_table(generate(500, seed=1), train)
    from agent.checks.files import sha256_file

    (d / "model.onnx").write_bytes(b"model bytes")
    (d / "shap.json").write_text("{}")
    (d / "manifest.yaml").write_text(
        "model: {name: credit-risk, version: 1.4.0}\n"
        f"artifact: {{path: model.onnx, sha256: {sha256_file(d / 'model.onnx')}}}\n"
        "code: {commit: 0123abc}\nparameters: {C: 1.0}\n"
        "training_data: {source: s3://b/train.parquet, path: train.parquet, "
        f"sha256: {'f' * 64}}}\n"
        "trained_at: 2026-01-01T00:00:00Z\nexplainability: shap.json\n"
    )
    (d / "card.md").write_text(
        "# Model details\nA model.\n## Intended use\nLoans.\n## Factors\nTODO\n"
    )
    out_file = d / "out" / "ev.json"
    code, out, _ = run(
        [
            "check",
            "run",
            "--data",
            str(credit["parquet"]),
            "--label",
            "repaid",
            "--pred",
            "approved",
            "--reference",
            str(credit["ref"]),
            "--drift-columns",
            "income,age,employment",
            "--manifest",
            str(d / "manifest.yaml"),
            "--model-card",
            str(d / "card.md"),
            "--format",
            "table",
            "--out",
            str(out_file),
        ],
        capsys,
    )
    assert code == 0
    assert "Drift" in out and "income" in out and "Documentation" in out
    ev = json.loads(out_file.read_text())
    validate_evidence(ev)
    assert set(ev["drift"]["columns"]) == {"income", "age", "employment"}
    assert ev["drift"]["columns"]["income"]["drifted"] is True  # shift 0.4 in log-income
    lin = ev["lineage"]
    assert lin["model_sha256_verified"] is True and lin["data_sha256_verified"] is False
    assert lin["code_commit"] == "0123abc" and lin["data_age_days"] >= 0
    doc = ev["documentation"]
    assert doc["sections"]["model_details"] and not doc["sections"]["factors"]
    assert doc["explainability_present"] is True


def test_drift_from_profile(credit, tmp_path: Path, capsys) -> None:
    profile = pytest.importorskip("agent.checks.profile")
    from agent.checks.files import save_profile
    from agent.data import iter_chunks

    prof = profile.ReferenceProfile.build(iter_chunks(credit["ref"], ["income", "employment"]))
    save_profile(prof, tmp_path / "ref.profile")
    code, out, err = run(
        [
            "check",
            "run",
            "--profile",
            str(tmp_path / "ref.profile"),
            "--current",
            str(credit["parquet"]),
        ],
        capsys,
    )
    assert code == 0, err
    ev = json.loads(out)
    assert ev["performance"] is None and set(ev["drift"]["columns"]) == {"income", "employment"}


def test_console_script_and_schema(credit, warden_bin: str) -> None:
    proc = subprocess.run(
        [
            warden_bin,
            "check",
            "run",
            "--data",
            str(credit["csv"]),
            "--label",
            "repaid",
            "--pred",
            "approved",
            "--sensitive",
            "sex",
            "--progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    ev = json.loads(proc.stdout)
    assert ev["schema"] == "warden.evidence/v1"
    # Progress goes to stderr, never into the JSON, and ends with one deterministic line
    # whatever the timing (before: no line at all when the run ended within 0.2 s). Lines
    # before it appear only on a run slower than LOG_INTERVAL_S.
    lines = proc.stderr.splitlines()
    assert lines and lines[-1] == "rows read: 3,000", proc.stderr
    assert all(line.startswith("rows read: ") and line.endswith(" so far") for line in lines[:-1])
    schema = subprocess.run(
        [warden_bin, "check", "schema"], capture_output=True, text=True, timeout=60
    )
    assert json.loads(schema.stdout)["properties"]["schema"]["const"] == "warden.evidence/v1"


def test_evidence_never_contains_raw_rows(credit, capsys) -> None:
    code, out, _ = run(
        [
            "check",
            "run",
            "--data",
            str(credit["parquet"]),
            "--label",
            "repaid",
            "--pred",
            "approved",
            "--score",
            "p_approve",
            "--sensitive",
            "sex",
        ],
        capsys,
    )
    leaves: set[float] = set()

    def collect(node: object) -> None:
        if isinstance(node, dict):
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)
        elif isinstance(node, int | float) and not isinstance(node, bool):
            leaves.add(float(node))

    collect(json.loads(out))
    t = pq.read_table(credit["parquet"])
    # Values distinctive enough that a coincidence with an aggregate is implausible: incomes,
    # and scores with more than three decimals (a metric may well equal 0.8 exactly).
    raw = t["income"].to_pylist()[:200] + [
        v for v in t["p_approve"].to_pylist()[:200] if len(repr(v).split(".")[-1]) > 3
    ]
    assert raw, "the fixture must offer distinctive raw values"
    assert not leaves & {float(v) for v in raw}


def test_progress_only_when_asked_and_final_line_exact(credit, capsys) -> None:
    argv = [
        "check",
        "run",
        "--data",
        str(credit["csv"]),
        "--label",
        "repaid",
        "--pred",
        "approved",
        "--chunk-rows",
        "700",
    ]
    code, out, err = run(argv, capsys)  # stderr is not a terminal here
    assert code == 0 and err == ""
    code, out, err = run([*argv, "--progress"], capsys)
    assert code == 0 and json.loads(out)["data"]["rows"] == 3000
    assert err.splitlines()[-1] == "rows read: 3,000"


def test_progress_bar_on_a_terminal_is_cleared_and_leaves_the_rows_read_line() -> None:
    import io
    import re

    from agent.checks.cli import _Progress

    stream = io.StringIO()
    bar = _Progress(2500, stream, terminal=True)
    for _ in range(5):
        bar(500)
    bar.finish()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())  # drop ANSI controls
    assert text.replace("\r", "").splitlines()[-1] == "rows read: 2,500"


def test_failed_run_prints_its_error_and_no_rows_read_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("y,p\n0,0\n1,1\n2,1\n")
    code, out, err = run(
        ["check", "run", "--data", str(bad), "--label", "y", "--pred", "p", "--progress"], capsys
    )
    assert code == 2 and out == ""
    assert err.splitlines()[0].startswith(f"error: {bad}: column 'y' must be binary")
    assert "rows read" not in err


def test_out_is_written_atomically(credit, tmp_path: Path, capsys) -> None:
    out_file = tmp_path / "evidence.json"
    code, out, _ = run(
        [
            "check",
            "run",
            "--data",
            str(credit["csv"]),
            "--label",
            "repaid",
            "--pred",
            "approved",
            "--out",
            str(out_file),
        ],
        capsys,
    )
    assert code == 0
    assert json.loads(out_file.read_text()) == json.loads(out)
    assert [p.name for p in tmp_path.iterdir()] == ["evidence.json"]  # no temporary file


def test_progress_in_a_log_is_plain_lines_ending_with_rows_read(monkeypatch) -> None:
    import io

    import agent.checks.cli as cli

    monkeypatch.setattr(cli, "LOG_INTERVAL_S", 0.0)  # a line on every chunk
    stream = io.StringIO()
    bar = cli._Progress(None, stream, terminal=False)
    bar(1000)
    bar(234)
    bar.finish()
    assert (
        stream.getvalue() == "rows read: 1,000 so far\nrows read: 1,234 so far\nrows read: 1,234\n"
    )
