"""The evidence JSON Schema: a valid Draft 2020-12 schema, one-line errors, and the policy input.

policies/input.schema.json (owned by the policy area) embeds the evidence document through a
``$ref``; the last test validates a real ``warden check run`` evidence document wrapped into a
``warden.policy-input/v1`` input against it, with the evidence schema registered under its
``$id`` as any JSON Schema tool would.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pyarrow.parquet as pq
import pytest
import referencing
import referencing.exceptions
from referencing.jsonschema import DRAFT202012

from agent.checks.evidence import build_evidence, evidence_schema, validate_evidence
from agent.checks.lineage import lineage_evidence
from trust.cli.main import main
from trust.errors import FormatError

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from gen_credit import generate  # noqa: E402

INPUT_SCHEMA = ROOT / "policies" / "input.schema.json"
NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_schema_file_is_a_valid_draft_2020_12_schema() -> None:
    schema = evidence_schema()
    assert schema["$schema"] == DRAFT
    jsonschema.Draft202012Validator.check_schema(schema)  # raises SchemaError if not
    assert jsonschema.validators.validator_for(schema) is jsonschema.Draft202012Validator
    # Every internal $ref points at a definition that exists.
    resolver = (
        referencing.Registry()
        .with_resource(schema["$id"], DRAFT202012.create_resource(schema))
        .resolver(schema["$id"])
    )
    refs = _refs(schema)
    assert refs
    for ref in refs:
        resolver.lookup(ref)


def _doc() -> dict[str, Any]:
    return build_evidence(generated_at=NOW, lineage=lineage_evidence(None, now=NOW))


BAD = [
    (
        "nested type",
        lambda d: d["lineage"].update(data_age_days="3"),
        "evidence.lineage.data_age_days: expected integer or null, got '3'",
    ),
    (
        "digest pattern",
        lambda d: d["lineage"].update(model_sha256="ABC"),
        "evidence.lineage.model_sha256: 'ABC' does not match ^[0-9a-f]{64}$",
    ),
    (
        "date-time without offset",
        lambda d: d.update(generated_at="2026-03-01T00:00:00"),
        "evidence.generated_at: '2026-03-01T00:00:00' is not a valid date-time",
    ),
    (
        "date only",
        lambda d: d["lineage"].update(trained_at="2026-03-01"),
        "evidence.lineage.trained_at: '2026-03-01' is not a valid date-time",
    ),
    (
        "closest shape",
        lambda d: d.update(performance={"task": "binary", "n": 1}),
        "matches none of the allowed shapes (closest: evidence.performance: missing required key",
    ),
]


@pytest.mark.parametrize(("case", "patch", "message"), BAD, ids=[b[0] for b in BAD])
def test_errors_are_one_line_with_path_and_value(case: str, patch: Any, message: str) -> None:
    doc = _doc()
    validate_evidence(doc)
    patch(doc)
    with pytest.raises(FormatError) as err:
        validate_evidence(doc)
    text = str(err.value.message)
    assert message in text and "\n" not in text


def test_valid_times_pass() -> None:
    doc = _doc()
    for value in ("2026-03-01T00:00:00Z", "2026-03-01T00:00:00.5+02:00", "2026-03-01t00:00:00z"):
        doc["generated_at"] = value
        validate_evidence(doc)


@pytest.fixture(scope="module")
def real_evidence(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Evidence from `warden check run` with every section filled."""
    d = tmp_path_factory.mktemp("ev")
    pq.write_table(generate(1500, bias=0.2, seed=3), d / "val.parquet")
    pq.write_table(generate(1200, seed=5, shift=0.3), d / "ref.parquet")
    pq.write_table(generate(300, seed=6), d / "train.parquet")
    (d / "model.onnx").write_bytes(b"model bytes")
    (d / "shap.json").write_text("{}")
    (d / "manifest.yaml").write_text(
        "model: {name: credit-risk, version: 1.4.0}\nartifact: {path: model.onnx}\n"
        "code: {commit: 0123abc}\ntraining_data: {source: s3://b/t, path: train.parquet, "
        "snapshot_date: 2026-01-01}\ntrained_at: 2026-01-02T00:00:00Z\n"
        "explainability: shap.json\n"
    )
    (d / "card.md").write_text("# Model details\nA model.\n## Intended use\nLoans.\n")
    out = d / "ev.json"
    code = main(
        ["check", "run", "--data", str(d / "val.parquet"), "--label", "repaid",
         "--pred", "approved", "--score", "p_approve", "--sensitive", "sex,age_band",
         "--reference", str(d / "ref.parquet"), "--drift-columns", "income,age,employment",
         "--manifest", str(d / "manifest.yaml"), "--model-card", str(d / "card.md"),
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    ev: dict[str, Any] = json.loads(out.read_text())
    assert all(ev[s] is not None for s in ("performance", "fairness", "drift", "lineage"))
    return ev


def _policy_input(evidence: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": "warden.policy-input/v1",
        "model": {"name": "credit-risk", "version": "1.4.0", "stage": "production",
                  "n_features": 5, "artifact_sha256": evidence["lineage"]["model_sha256"]},
        "evidence": evidence,
        "approvals": [],
        "production": {"accuracy": 0.9, "hours_below_threshold": 0, "drift_alert": False,
                       "deployment_age_hours": 12.5},
        "now": "2026-03-01T00:00:00Z",
    }  # fmt: skip


def test_policy_input_schema_embeds_the_evidence_schema(real_evidence: dict[str, Any]) -> None:
    if not INPUT_SCHEMA.is_file():
        pytest.skip(f"{INPUT_SCHEMA} is absent")
    schema = json.loads(INPUT_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    ev_schema = evidence_schema()
    registry = referencing.Registry().with_resources(
        (s["$id"], DRAFT202012.create_resource(s)) for s in (ev_schema, schema)
    )
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    ref = schema["properties"]["evidence"]["$ref"]
    try:  # resolved as JSON Schema says: against the input schema's $id
        resolved = registry.resolver(base_uri=schema["$id"]).lookup(ref).contents
    except referencing.exceptions.Unresolvable:
        pytest.fail(
            f"{INPUT_SCHEMA.name}: evidence $ref {ref!r} resolves against $id "
            f"{schema.get('$id')!r} to a URI that is not the evidence schema's $id "
            f"{ev_schema['$id']!r}; use that $id as the $ref"
        )
    assert resolved == ev_schema
    good = _policy_input(real_evidence)
    validate_evidence(good["evidence"])
    validator.validate(good)
    bad = copy.deepcopy(good)
    del bad["evidence"]["drift"]  # the $ref is really applied: a broken evidence fails
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(bad)
