"""Governance bypasses in the checks (issue 8): each test is named by the attack or mistake.

* item 1: a sensitive column that is all null (or has one usable group, or one group left
  after ``min_group_size`` suppression) must not yield a fairness number; the feature is
  reported as unmeasurable and the standard bundle denies, naming it;
* item 4: a model whose classes cannot be read must not be scored on a guessed class;
* item 21: a ``--reference`` lacking a column of the current data must not silently drop it
  from drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agent.checks.evidence import CheckSpec, build_evidence, run_checks
from agent.checks.fairness import FairnessCounts, fairness_evidence
from tests.agent import _world
from trust.cli.main import main
from trust.errors import CheckError, DataError, UsageError, WardenError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from gen_credit import generate  # noqa: E402

from agent.checks.disparity import METRIC_KEYS  # noqa: E402

METRICS = METRIC_KEYS  # every disparity metric the evidence carries


def _assert_unmeasurable(ev: dict[str, Any], reason: str) -> None:
    """No fairness number at all, and the reason stated in the evidence."""
    assert ev["unmeasurable"] is not None, ev
    assert reason in ev["unmeasurable"]["reason"], ev["unmeasurable"]
    for name in METRICS:
        assert ev[name] is None, name
        assert ev["to_overall"][name] is None, name
    assert ev["four_fifths"]["ratio"] is None and ev["four_fifths"]["passed"] is None
    assert ev["four_fifths"]["reference_group"] is None
    assert ev["four_fifths"]["failing_groups"] == []
    # Still a valid evidence document: the policy sees nulls and fails closed.
    build_evidence(fairness={"f": ev})


def _counts(groups: list[Any], **kw: Any) -> FairnessCounts:
    n = len(groups)
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, n)
    p = rng.integers(0, 2, n)
    return FairnessCounts.from_arrays(y, p, {"sex": np.array(groups, dtype=object)}, **kw)


# ------------------------------------------------------------------ item 1, unit level


def test_all_missing_sensitive_column_is_unmeasurable_not_perfect() -> None:
    ev = fairness_evidence(_counts([None] * 200))
    # Before the fix: one group "missing", demographic_parity_ratio 1.0, four-fifths passed.
    _assert_unmeasurable(ev, "no usable group")
    assert ev["unmeasurable"]["usable_groups"] == []
    assert "missing" in ev["unmeasurable"]["reason"]
    assert ev["groups"]["missing"]["n"] == 200  # the rows are still counted and shown


def test_single_group_is_unmeasurable() -> None:
    ev = fairness_evidence(_counts(["F"] * 200))
    _assert_unmeasurable(ev, "fewer than two usable groups")
    assert ev["unmeasurable"]["usable_groups"] == ["F"]


def test_one_group_plus_missing_is_unmeasurable() -> None:
    # "missing" (null sensitive values) is not a group one can compare a real group with.
    ev = fairness_evidence(_counts(["F"] * 150 + [None] * 50))
    _assert_unmeasurable(ev, "fewer than two usable groups")
    assert ev["unmeasurable"]["usable_groups"] == ["F"]


def test_two_groups_one_suppressed_by_min_group_size_is_unmeasurable() -> None:
    counts = _counts(["F"] * 190 + ["M"] * 10)
    ev = fairness_evidence(counts, min_group_size=30)
    _assert_unmeasurable(ev, "below min_group_size 30: M")
    assert ev["suppressed_groups"] == ["M"]
    # Told to include small groups, the comparison is made again.
    incl = fairness_evidence(counts, min_group_size=30, include_small_groups=True)
    assert incl["unmeasurable"] is None and incl["demographic_parity_ratio"] is not None


def test_zero_weight_group_is_not_a_usable_group() -> None:
    w = np.array([1.0] * 100 + [0.0] * 100)
    ev = fairness_evidence(_counts(["F"] * 100 + ["M"] * 100, sample_weight=w))
    _assert_unmeasurable(ev, "zero total weight: M")


def test_two_real_groups_still_measure_and_missing_stays_in_the_aggregates() -> None:
    ev = fairness_evidence(_counts(["F"] * 100 + ["M"] * 100 + [None] * 20))
    assert ev["unmeasurable"] is None
    assert all(isinstance(ev[m], float) for m in ("demographic_parity_difference",))
    assert set(ev["groups"]) == {"F", "M", "missing"}
    build_evidence(fairness={"sex": ev})


def test_intersection_with_an_all_missing_feature_is_unmeasurable() -> None:
    n = 300
    band = np.array(["18-29", "30-49", "50+"] * (n // 3), dtype=object)
    sex = np.array([None] * n, dtype=object)
    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 2, n), rng.integers(0, 2, n)
    both = FairnessCounts.from_arrays(y, p, {"sex": sex, "age_band": band})
    ev = fairness_evidence(both)
    # Three intersectional groups, each "missing|<band>": none is usable.
    assert ev["number_of_groups"] == 3
    _assert_unmeasurable(ev, "no usable group")
    alone = fairness_evidence(FairnessCounts.from_arrays(y, p, {"age_band": band}))
    assert alone["unmeasurable"] is None


def test_missing_flags_survive_merge_and_round_trip() -> None:
    a = _counts(["F"] * 50 + [None] * 50)
    b = _counts(["F"] * 20)
    merged = a.merge(b)
    again = FairnessCounts.from_dict(merged.to_dict())
    for c in (merged, again):
        ev = fairness_evidence(c)
        assert ev["unmeasurable"] is not None and ev["unmeasurable"]["usable_groups"] == ["F"]


# --------------------------------------------------------------- item 1, end to end


@pytest.fixture(scope="module")
def governed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The issue's scenario at small size: APAC's biased data, then with ``sex`` blanked."""
    d = tmp_path_factory.mktemp("blank-sex")
    table = generate(10000, seed=11, bias=0.25)
    pq.write_table(table, d / "apac.parquet")
    blank = table.set_column(
        table.schema.get_field_index("sex"), "sex", pa.nulls(table.num_rows, pa.string())
    )
    pq.write_table(blank, d / "blank.parquet")
    release = _world.write_release(d, name="credit-risk", version="1.4.0")
    out = {
        "dir": d,
        "root": _world.write_root(d / "root.json"),
        "bundle": _world.write_standard_bundle(d / "standard.bundle"),
        "risk": _world.write_approval(
            d / "risk.approval", _world.RISK, "risk_officer", "credit-risk:1.4.0"
        ),
        "compliance": _world.write_approval(
            d / "compliance.approval", _world.COMPLIANCE, "compliance", "credit-risk:1.4.0"
        ),
    }
    for name in ("apac", "blank"):
        ev = d / f"{name}.json"
        argv = [
            "check", "run", "--data", str(d / f"{name}.parquet"), "--label", "repaid",
            "--pred", "approved", "--score", "p_approve", "--sensitive", "sex,age_band",
            "--manifest", str(release["manifest"]), "--model-card", str(release["card"]),
            "--out", str(ev),
        ]  # fmt: skip
        assert main(argv) == 0
        out[name] = ev
    return out


def _decide(
    world: dict[str, Path], evidence: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    argv = _world.decide_argv(
        world[evidence],
        root=world["root"],
        bundle=world["bundle"],
        model="credit-risk",
        version="1.4.0",
        stage="production",
        approvals=(world["risk"], world["compliance"]),
    )
    code = main(argv)
    out, err = capsys.readouterr()
    assert out.strip().startswith("{"), err
    decision: dict[str, Any] = json.loads(out)
    return code, decision


def test_blanked_sex_column_is_denied_in_production_naming_the_feature(
    governed: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    fair = json.loads(governed["blank"].read_text())["fairness"]
    assert fair["sex"]["unmeasurable"] is not None
    assert fair["sex|age_band"]["unmeasurable"] is not None
    assert fair["age_band"]["unmeasurable"] is None
    code, decision = _decide(governed, "blank", capsys)
    # Before the fix: exit 0, ALLOW into production.
    assert code == 1 and decision["allow"] is False
    unmeasurable = [v for v in decision["violations"] if v["rule"] == "fairness.unmeasurable"]
    messages = sorted(v["message"] for v in unmeasurable)
    assert [m.split(":")[0] for m in messages] == ["sex", "sex|age_band"], messages
    assert all("cannot be measured" in m and "missing" in m for m in messages), messages
    # Nothing else stands in the way, so it really is the unmeasurable fairness that denies.
    assert {v["rule"] for v in decision["violations"]} == {"fairness.unmeasurable"}


def test_unblanked_biased_file_is_still_denied_for_fairness(
    governed: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, decision = _decide(governed, "apac", capsys)
    assert code == 1
    rules = {v["rule"] for v in decision["violations"]}
    assert "fairness.demographic_parity_difference" in rules
    assert "fairness.unmeasurable" not in rules


# ------------------------------------------------------------------------- item 4


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LinearRegression, LogisticRegression

    d = tmp_path_factory.mktemp("onnx")
    rng = np.random.default_rng(0)
    x = rng.random((80, 2)).astype(np.float32)
    y = np.where(x[:, 0] > 0.5, "yes", "no")
    clf = skl2onnx.to_onnx(LogisticRegression().fit(x, y), x[:1])
    (d / "clf.onnx").write_bytes(clf.SerializeToString())
    for node in clf.graph.node:  # class labels that are not UTF-8 text
        for attr in node.attribute:
            if attr.name == "classlabels_strings":
                attr.strings[0] = b"\xff\xfe"
    (d / "bad-labels.onnx").write_bytes(clf.SerializeToString())
    reg = skl2onnx.to_onnx(LinearRegression().fit(x, x[:, 0]), x[:1])
    (d / "reg.onnx").write_bytes(reg.SerializeToString())
    data = d / "d.csv"
    data.write_text("x1,x2,y\n" + "".join(f"{a},{b},{c}\n" for (a, b), c in zip(x, y, strict=True)))
    return {"dir": d, "clf": d / "clf.onnx", "bad": d / "bad-labels.onnx", "reg": d / "reg.onnx",
            "data": data}  # fmt: skip


def test_unreadable_onnx_class_labels_are_an_error_naming_the_file(
    onnx_models: dict[str, Path],
) -> None:
    from agent.predict import load_model

    with pytest.raises(WardenError) as err:
        load_model(onnx_models["bad"])
    assert str(onnx_models["bad"]) in err.value.message
    assert "class labels" in err.value.message


def test_onnx_graph_that_cannot_be_parsed_for_classes_is_an_error(
    onnx_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx
    from google.protobuf.message import DecodeError

    from agent.predict import load_model

    def broken(*_a: object, **_k: object) -> None:
        raise DecodeError("Error parsing message")

    # onnxruntime accepts the file; reading its graph for the class labels fails.
    monkeypatch.setattr(onnx, "load", broken)
    with pytest.raises(WardenError) as err:
        load_model(onnx_models["clf"])
    assert str(onnx_models["clf"]) in err.value.message
    assert "DecodeError" in err.value.message and "Error parsing message" in err.value.message


def test_model_without_classes_refuses_pos_label(onnx_models: dict[str, Path]) -> None:
    from agent.predict import load_model

    model = load_model(onnx_models["reg"])
    assert model.classes is None  # the expected, specific "no classes" case
    assert model.positive_index(None) == 1
    with pytest.raises(UsageError) as err:
        model.positive_index("yes")
    assert str(onnx_models["reg"]) in err.value.message and "pos_label" in err.value.message


def test_pos_label_with_a_classless_model_is_refused_by_check_run(
    onnx_models: dict[str, Path],
) -> None:
    spec = CheckSpec(
        data=onnx_models["data"],
        label="y",
        model=onnx_models["reg"],
        features=("x1", "x2"),
        pos_label="yes",
    )
    with pytest.raises(UsageError) as err:
        run_checks(spec)
    assert "declares no classes" in err.value.message


def test_readable_classes_still_honour_pos_label(onnx_models: dict[str, Path]) -> None:
    from agent.predict import load_model

    model = load_model(onnx_models["clf"])
    assert model.classes == ("no", "yes")
    assert model.positive_index("no") == 0 and model.positive_index("yes") == 1
    with pytest.raises(DataError):
        model.positive_index("maybe")


# ------------------------------------------------------------------------ item 21


def _csv(path: Path, header: str, rows: int = 40) -> Path:
    cols = header.split(",")
    path.write_text(
        header + "\n" + "".join(",".join(str((i * (j + 3)) % 7) for j in range(len(cols))) + "\n"
                                for i in range(rows))
    )  # fmt: skip
    return path


def test_reference_missing_a_current_column_is_an_error_not_a_silent_drop(
    tmp_path: Path,
) -> None:
    cur = _csv(tmp_path / "cur.csv", "a,b,c")
    ref = _csv(tmp_path / "ref.csv", "a,b")
    with pytest.raises(CheckError) as err:
        run_checks(CheckSpec(current=cur, reference=ref))
    # Before the fix: drift over a and b only, exit 0, nothing said about c.
    assert "'c'" in err.value.message and str(ref) in err.value.message


def test_reference_missing_an_explicit_drift_column_is_an_error(tmp_path: Path) -> None:
    cur = _csv(tmp_path / "cur.csv", "a,b,c")
    ref = _csv(tmp_path / "ref.csv", "a,b")
    with pytest.raises(CheckError) as err:
        run_checks(CheckSpec(current=cur, reference=ref, drift_columns=("a", "c")))
    assert "'c'" in err.value.message and str(ref) in err.value.message


def test_current_missing_a_reference_column_names_the_current_file(tmp_path: Path) -> None:
    cur = _csv(tmp_path / "cur.csv", "a,b")
    ref = _csv(tmp_path / "ref.csv", "a,b,c")
    with pytest.raises(CheckError) as err:
        run_checks(CheckSpec(current=cur, reference=ref))
    assert "'c'" in err.value.message and str(cur) in err.value.message


def test_explicit_drift_columns_may_leave_out_current_only_columns(tmp_path: Path) -> None:
    cur = _csv(tmp_path / "cur.csv", "a,b,c")
    ref = _csv(tmp_path / "ref.csv", "a,b")
    ev = run_checks(CheckSpec(current=cur, reference=ref, drift_columns=("a", "b")))
    assert list(ev["drift"]["columns"]) == ["a", "b"]
