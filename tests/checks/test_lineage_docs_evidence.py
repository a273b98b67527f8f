"""Lineage, documentation completeness and the evidence schema."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

from agent.checks.documentation import card_sections, documentation_evidence
from agent.checks.evidence import build_evidence, validate_evidence
from agent.checks.files import load_manifest, sha256_file
from agent.checks.lineage import lineage_evidence
from trust.errors import FormatError

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def test_sha256_file_streams(tmp_path: Path) -> None:
    p = tmp_path / "blob"
    p.write_bytes(b"a" * (3 << 20))
    import hashlib

    assert sha256_file(p) == hashlib.sha256(b"a" * (3 << 20)).hexdigest()


def test_lineage_digests_and_age() -> None:
    manifest = {
        "model": {"name": "m", "version": 2},
        "artifact": {"sha256": "AB" * 32},
        "code": {"commit": "deadbeef"},
        "training_data": {
            "source": "s3://x",
            "sha256": "cd" * 32,
            "snapshot_date": dt.date(2026, 1, 30),
        },
        "trained_at": "2026-02-20T10:00:00Z",
    }
    ev = lineage_evidence(manifest, model_sha256="ab" * 32, data_sha256="ce" * 32, now=NOW)
    assert ev["model_sha256_verified"] is True  # case-insensitive hex
    assert ev["model_sha256_declared"] == "ab" * 32
    assert ev["data_sha256_verified"] is False
    assert ev["data_age_days"] == 30  # from the snapshot, not the training date
    assert ev["model_version"] == "2" and ev["trained_at"] == "2026-02-20T10:00:00Z"
    bare = lineage_evidence(None, model_sha256="ab" * 32, now=NOW)
    assert bare["manifest_present"] is False and bare["model_sha256_verified"] is None


def test_unquoted_numeric_digest_is_refused() -> None:
    with pytest.raises(FormatError, match="'training_data.sha256' must be a SHA-256"):
        lineage_evidence({"training_data": {"sha256": 1234}}, now=NOW)


def test_manifest_unknown_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("model: {name: x}\ntrainedat: 2026-01-01\n")
    with pytest.raises(FormatError, match="unknown manifest key 'trainedat'"):
        load_manifest(tmp_path / "m.yaml")


FULL_CARD = """
# Model Card: credit-risk
## Model Details
Gradient boosting, v1.4.
## Intended Use
Pre-screening of consumer loans.
## Factors
Sex, age band.
## Metrics
Accuracy, equalized odds.
## Evaluation Data
2025 Q4 hold-out.
## Training Data
2019-2025 applications.
## Quantitative Analyses
See tables.
### Per group
...
## Ethical Considerations
Historical bias in approvals.
## Caveats and Recommendations
Not for business loans.
"""


def test_complete_markdown_card() -> None:
    ev = documentation_evidence(FULL_CARD, explainability_present=True)
    assert ev["complete"] is True and ev["completeness"] == 1.0 and ev["missing_sections"] == []


def test_placeholders_and_empty_sections_are_missing() -> None:
    card = "## Model details\nTBD\n## Intended use\n\n## Metrics\n- accuracy\n## Limitations\nN/A\n"
    s = card_sections(card)
    assert s["metrics"] is True
    assert not s["model_details"] and not s["intended_use"] and not s["caveats_and_recommendations"]


def test_yaml_card_keys() -> None:
    card = {
        "model_card": {"model_details": {"name": "x"}, "intended_use": "loans", "factors": None}
    }
    s = card_sections(card)
    assert s["model_details"] and s["intended_use"] and not s["factors"]


def test_no_card_is_reported_not_an_error() -> None:
    ev = documentation_evidence(None)
    assert ev["model_card_present"] is False and ev["completeness"] == 0.0


def test_evidence_sections_null_and_nan_to_null() -> None:
    ev = build_evidence(
        performance={"task": "regression", "n": 3, "mae": 1.0, "mse": 1.0, "rmse": 1.0, "r2": 0.5},
        generated_at=NOW,
    )
    assert ev["fairness"] is None and ev["drift"] is None and ev["schema"] == "warden.evidence/v1"
    assert ev["generated_at"] == "2026-03-01T00:00:00Z"
    lin = lineage_evidence(None, now=NOW)
    lin["data_rows"] = math.nan  # NaN is never emitted: becomes null
    assert build_evidence(lineage=lin, generated_at=NOW)["lineage"]["data_rows"] is None


BAD_EVIDENCE = [
    ("wrong schema id", {"schema": "warden.evidence/v2"}, "evidence.schema"),
    ("unknown top key", {"extra": 1}, "unknown key 'extra'"),
    (
        "rate above one",
        {"performance": {"task": "regression", "n": 1, "mae": 0, "mse": 0, "rmse": 0, "r2": 2}},
        None,
    ),
    ("missing section", None, "missing required key 'drift'"),
]


@pytest.mark.parametrize(
    ("case", "patch", "message"), BAD_EVIDENCE, ids=[b[0] for b in BAD_EVIDENCE]
)
def test_schema_rejects(case, patch, message) -> None:
    doc = build_evidence(generated_at=NOW, documentation=documentation_evidence(None))
    if patch is None:
        del doc["drift"]
    else:
        doc.update(patch)
    if (
        case == "rate above one"
    ):  # r2 is not a rate: this one is valid, the schema must not over-reject
        validate_evidence(doc)
        doc["performance"] = {"task": "binary", "n": 1}
        message = "matches none of the allowed shapes"
    with pytest.raises(FormatError) as err:
        validate_evidence(doc)
    assert message in err.value.message
