"""Regression tests for review findings on lineage, documentation, fairness and profile CLI.

Each test failed before its fix: bad manifest / model-card files raised raw Python
exceptions, mistyped manifest fields were not named, ``profile build --out DIR`` printed a
traceback, and all-zero-weight groups got a rate of 0.0 where fairlearn reports NaN.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from agent.checks.documentation import parse_model_card
from agent.checks.evidence import evidence_schema
from agent.checks.fairness import (
    RATE_NAMES,
    FairnessCounts,
    fairness_evidence,
    fairness_metrics,
)
from agent.checks.lineage import load_manifest
from trust.cli.main import main
from trust.errors import DataError, FormatError

GARBAGE = bytes(range(256)) * 4  # not UTF-8 (0x80 is a lone continuation byte)


# --- 1. unreadable or malformed manifest / model card -> one-line error naming the file ---


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_manifest_binary_garbage_is_format_error(tmp_path: Path, suffix: str) -> None:
    p = tmp_path / f"manifest{suffix}"
    p.write_bytes(GARBAGE)
    with pytest.raises(FormatError, match=f"{p.name}: manifest is not UTF-8"):
        load_manifest(p)


def test_manifest_directory_is_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a directory"):
        load_manifest(tmp_path)


def test_manifest_impossible_yaml_date_is_format_error(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text("trained_at: 2025-13-45\n")  # PyYAML raises ValueError, not YAMLError
    with pytest.raises(FormatError, match=r"m\.yaml: not valid YAML \(month must be"):
        load_manifest(p)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("model: {name: 5}\n", "model.name"),
        ("model: {name: m, version: [1, 2]}\n", "model.version"),
        ("artifact: {path: 3}\n", "artifact.path"),
        ("code: {repository: {a: 1}}\n", "code.repository"),
        ("training_data: {rows: many}\n", "training_data.rows"),
        ("training_data: {rows: true}\n", "training_data.rows"),
        ("training_data: {snapshot_date: 5}\n", "training_data.snapshot_date"),
        ("explainability: [a, b]\n", "explainability"),
        ("trained_at: 20250101\n", "trained_at"),
    ],
)
def test_manifest_field_types_name_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(text)
    with pytest.raises(FormatError, match=rf"m\.yaml: manifest field '{key}' must be"):
        load_manifest(p)


@pytest.mark.parametrize(
    ("text", "key"),
    [("model: {version: 1.10}\n", "model.version"), ("code: {commit: 1234567}\n", "code.commit")],
)
def test_unquoted_version_and_commit_are_refused(tmp_path: Path, text: str, key: str) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(text)
    with pytest.raises(FormatError, match=rf"'{key}' must be a string") as info:
        load_manifest(p)
    assert info.value.hint is not None and "quote it in YAML" in info.value.hint


def test_manifest_bad_date_and_digest_name_the_file(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text("trained_at: notadate\n")
    with pytest.raises(FormatError, match=r"m\.yaml: manifest field 'trained_at' is not a date"):
        load_manifest(p)
    p.write_text("artifact: {sha256: abc}\n")
    with pytest.raises(FormatError, match=r"m\.yaml: manifest field 'artifact.sha256'"):
        load_manifest(p)


def test_manifest_section_must_be_mapping_names_type(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text("training_data: 7\n")
    with pytest.raises(FormatError, match="'training_data' must be a mapping, got int"):
        load_manifest(p)


def test_well_formed_manifest_still_loads(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(
        'model: {name: credit, version: "1.10"}\ncode: {commit: "1234567"}\n'
        "training_data: {rows: 5, snapshot_date: 2026-01-02}\ntrained_at: 2026-01-03\n"
    )
    m = load_manifest(p)
    assert m["model"]["version"] == "1.10" and m["code"]["commit"] == "1234567"


@pytest.mark.parametrize("name", ["card.md", "card.yaml", "card.json"])
def test_model_card_binary_garbage_is_format_error(tmp_path: Path, name: str) -> None:
    p = tmp_path / name
    p.write_bytes(GARBAGE)
    with pytest.raises(FormatError, match=f"{name}: model card is not UTF-8"):
        parse_model_card(p)


def test_model_card_directory_and_bad_date(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a directory"):
        parse_model_card(tmp_path)
    p = tmp_path / "card.yaml"
    p.write_text("model_details: {date: 2025-13-45}\n")
    with pytest.raises(FormatError, match=r"card\.yaml: not valid YAML"):
        parse_model_card(p)


# --- 2. profile build --out DIR ---


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


# --- 3. all-zero-weight groups: NaN in fairlearn, so null here and out of every aggregate ---

DP_METRICS = ("demographic_parity_difference", "demographic_parity_ratio")
TPR_FPR_METRICS = (
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
)


def _zero_weight_case(seed: int) -> tuple[Any, Any, Any, Any]:
    rng = np.random.default_rng(seed)
    n = 400
    y = rng.integers(0, 2, n)
    p = rng.integers(0, 2, n)
    s = rng.choice(["a", "b", "c", "z"], n, p=[0.4, 0.3, 0.2, 0.1])
    w = rng.uniform(0.2, 3.0, n)
    w[s == "z"] = 0.0
    # make the zero-weight group extreme, so counting it as rate 0.0 (or 1.0) would show
    p[s == "z"] = 0
    return y, p, s, w


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zero_weight_group_matches_fairlearn(seed: int) -> None:
    fl = pytest.importorskip("fairlearn.metrics")
    y, p, s, w = _zero_weight_case(seed)
    counts = FairnessCounts.from_arrays(y, p, {"s": s}, sample_weight=w)
    ours = fairness_metrics(counts)
    sf = pd.Series(s, name="s")
    live = s != "z"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = fl.MetricFrame(
            metrics=fl.selection_rate,
            y_true=y,
            y_pred=p,
            sensitive_features=sf,
            sample_params={"sample_weight": w},
        )
        assert math.isnan(mf.by_group["z"])  # the peer's behaviour this test relies on
        for method in ("between_groups", "to_overall"):
            for name in DP_METRICS:
                theirs = getattr(fl, name)(
                    y, p, sensitive_features=sf, sample_weight=w, method=method
                )
                assert ours[method][name] == pytest.approx(theirs, abs=1e-12), (method, name)
            # fairlearn's TPR/FPR metrics refuse an all-zero-weight group (scikit-learn's
            # confusion_matrix raises); skipping the group equals fairlearn without its rows.
            for name in TPR_FPR_METRICS:
                theirs = getattr(fl, name)(
                    y[live],
                    p[live],
                    sensitive_features=sf[live],
                    sample_weight=w[live],
                    method=method,
                )
                assert ours[method][name] == pytest.approx(theirs, abs=1e-12), (method, name)
    ev = fairness_evidence(counts)
    z = ev["groups"]["z"]
    assert z["n"] == int((s == "z").sum()) and z["suppressed"] is False
    assert all(z[r] is None for r in RATE_NAMES)
    for g in ("a", "b", "c"):
        assert ev["groups"][g]["selection_rate"] == pytest.approx(mf.by_group[g], abs=1e-12)
    assert "z" not in ev["four_fifths"]["failing_groups"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dp_ratio = fl.demographic_parity_ratio(y, p, sensitive_features=sf, sample_weight=w)
    assert ev["four_fifths"]["ratio"] == pytest.approx(dp_ratio, abs=1e-12)
    validate_fairness_against_schema(ev)


def test_zero_weight_group_below_min_size_is_suppressed() -> None:
    y, p, s, w = _zero_weight_case(3)
    ev = fairness_evidence(
        FairnessCounts.from_arrays(y, p, {"s": s}, sample_weight=w), min_group_size=10_000
    )
    assert ev["groups"]["z"] == {"n": int((s == "z").sum()), "suppressed": True}
    assert ev["suppressed_groups"] == ["a", "b", "c", "z"]


def validate_fairness_against_schema(ev: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = evidence_schema()
    sub = {"$defs": schema["$defs"], **schema["$defs"]["fairness_feature"]}
    jsonschema.Draft202012Validator(sub).validate(ev)


# --- 3. privacy wording: the limits of suppression are stated where users read them ---


def test_suppression_is_not_presented_as_privacy() -> None:
    import agent.checks.fairness as fairness

    doc = " ".join((fairness.__doc__ or "").split())
    assert "not** a privacy guarantee" in doc and "subtracting" in doc
    schema = evidence_schema()
    for text in (
        schema["properties"]["fairness"]["description"],
        schema["$defs"]["fairness_feature"]["properties"]["min_group_size"]["description"],
        schema["$defs"]["group"]["description"],
    ):
        low = text.lower()
        assert "not a privacy guarantee" in low or "not privacy" in low, text
        assert "subtraction" in low, text
    assert "operator" in schema["properties"]["fairness"]["description"]
