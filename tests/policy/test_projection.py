"""Input projections: path syntax, what a projection keeps, the static coverage check, and the
decision of the standard bundle with its projection against the same bundle without it."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from trust import dsse
from trust.canonical import canonical_json, sha256_hex
from trust.cli.main import main
from trust.errors import FormatError, PolicyError
from trust.policy.bundle import (
    BUNDLE_PAYLOAD_TYPE,
    PolicyBundle,
    UnverifiedPolicyBundle,
    build_payload,
    load_source,
    sign_source,
)
from trust.policy.check import check_directory
from trust.policy.engine import PolicyEngine
from trust.policy.projection import (
    InputProjection,
    ReadKind,
    check_projection,
    input_references,
    parse_path,
    uncovered_references,
)

from ._corpus import corpus, missing_metric_corpus
from ._support import NOW, PASSING_INPUT, POLICIES, make_root, officer, verified_bundle

EXAMPLE_INPUTS = POLICIES / "examples" / "inputs"

# --- path syntax --------------------------------------------------------------------------


def test_paths_split_on_dots_with_star_segments():
    assert parse_path("evidence.fairness.*.groups.*.n", what="t") == (
        "evidence", "fairness", "*", "groups", "*", "n",
    )  # fmt: skip
    assert parse_path("schema", what="t") == ("schema",)
    assert parse_path("sex-band_2", what="t") == ("sex-band_2",)


BAD_PATHS = {
    "empty": "",
    "leading dot": ".evidence",
    "trailing dot": "evidence.",
    "empty segment": "evidence..performance",
    "space": "evidence.per formance",
    "partial star": "evidence.fair*",
    "double star": "evidence.**",
    "bracket": "evidence[0]",
    "not a string": 3,
    "null": None,
}


@pytest.mark.parametrize("value", BAD_PATHS.values(), ids=BAD_PATHS.keys())
def test_bad_paths_are_refused_naming_the_source(value):
    with pytest.raises(FormatError, match=r"^bundle\.yaml: .*input_projection"):
        check_projection([value], what="bundle.yaml")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "non-empty list"),
        ("evidence", "non-empty list"),
        (None, "non-empty list"),
        (["model", "model"], "'model' is listed twice"),
    ],
)
def test_bad_lists_are_refused(value, message):
    with pytest.raises(FormatError, match=message):
        check_projection(value, what="bundle.yaml")


def test_source_errors_name_the_bundle_file_and_the_path(write_bundle):
    d = write_bundle({"p.rego": "package t\n"}, input_projection="[model, 'evidence..x']")
    with pytest.raises(FormatError) as err:
        load_source(d)
    assert str(d / "bundle.yaml") in err.value.message
    assert "'evidence..x'" in err.value.message


def test_an_empty_key_is_an_error_not_no_projection(write_bundle):
    d = write_bundle({"p.rego": "package t\n"}, input_projection="")
    with pytest.raises(FormatError, match="input_projection' must be a non-empty list"):
        load_source(d)


# --- what a projection keeps --------------------------------------------------------------


def project(paths: list[str], doc: Any) -> Any:
    return InputProjection.from_paths(paths).apply(doc)


DOC = {
    "a": {"x": 1, "y": {"deep": [1, 2]}, "z": None},
    "b": [{"n": 1, "r": 0.5}, {"n": 2, "r": 0.7}, 7],
    "c": "scalar",
    "d": {"k1": {"n": 1, "m": 2}, "k2": {"m": 3}, "k3": False},
}


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["a"], {"a": DOC["a"]}),
        (["a.x", "c"], {"a": {"x": 1}, "c": "scalar"}),
        (["a.missing"], {"a": {}}),  # a named key that is absent stays absent
        (["nowhere.x"], {}),
        (["b.*.n"], {"b": [{"n": 1}, {"n": 2}, 7]}),  # every element, scalars kept
        (["b.n"], {"b": []}),  # a key does not index an array
        (["c.x"], {"c": "scalar"}),  # a scalar is kept where a path reaches it
        (["d.*.n"], {"d": {"k1": {"n": 1}, "k2": {}, "k3": False}}),  # every key kept
        (["d.*.n", "d.k2.m"], {"d": {"k1": {"n": 1}, "k2": {"m": 3}, "k3": False}}),
        (["d.k1.m", "d.*.n"], {"d": {"k1": {"n": 1, "m": 2}, "k2": {}, "k3": False}}),
        (["a", "a.x"], {"a": DOC["a"]}),  # a whole subtree wins over a deeper path
        (["*"], DOC),
    ],
)
def test_apply_keeps_only_the_declared_subtrees(paths, expected):
    assert project(paths, DOC) == expected


def test_apply_does_not_change_its_input():
    doc = copy.deepcopy(DOC)
    project(["d.*.n", "b.*.r"], doc)
    assert doc == DOC


# --- the static coverage check ------------------------------------------------------------


def refs(text: str) -> list[tuple[str, tuple[str, ...], ReadKind]]:
    return [(r.text, r.segments, r.kind) for r in input_references({"p.rego": text})]


def test_references_are_read_to_their_static_end():
    text = """package t
import rego.v1
a if input.model.stage == "production"
b if input.evidence["fairness"][f].groups[g].n < 3
c if count(object.keys(input.evidence.drift.columns)) > 0
d if is_number(input.evidence.performance[m])
e if input.x [0]
# input.in_a_comment
s := "input.in_a_string"
"""
    assert refs(text) == [
        ("input.model.stage", ("model", "stage"), ReadKind.VALUE),
        (
            'input.evidence["fairness"][f].groups[g].n',
            ("evidence", "fairness", "*", "groups", "*", "n"),
            ReadKind.VALUE,
        ),
        ("input.evidence.drift.columns", ("evidence", "drift", "columns"), ReadKind.KEYS),
        ("input.evidence.performance[m]", ("evidence", "performance", "*"), ReadKind.TYPE),
        ("input.x", ("x",), ReadKind.VALUE),  # a space ends the reference: it reads more
    ]


def test_bare_and_dynamic_input_are_never_covered():
    text = "package t\nimport rego.v1\nx := input\ny := input[k]\nz if some k, v in input\n"
    missing = uncovered_references(
        InputProjection.from_paths(["model", "evidence"]), {"p.rego": text}
    )
    assert [(r.line, r.text) for r in missing] == [(3, "input"), (4, "input[k]"), (5, "input")]


def test_an_import_alias_reads_all_it_names():
    text = "package t\nimport rego.v1\nimport input.evidence as ev\nx := ev.performance.f1\n"
    paths = ["evidence.performance"]
    missing = uncovered_references(InputProjection.from_paths(paths), {"p.rego": text})
    assert [r.text for r in missing] == ["input.evidence"]


@pytest.mark.parametrize(
    ("paths", "covered"),
    [
        (["evidence"], True),
        (["evidence.fairness"], True),
        (["evidence.fairness.*"], True),
        (["evidence.fairness.*.groups.*.n"], True),
        (["evidence.fairness.*.groups.*.r"], False),  # another leaf
        (["evidence.fairness.sex.groups.*.n"], False),  # the policy reads every feature
        (["evidence.fairness.*.groups.F.n"], False),  # ... and every group
    ],
)
def test_a_variable_index_needs_a_star(paths, covered):
    text = "package t\nimport rego.v1\nw contains g if input.evidence.fairness[f].groups[g].n < 3\n"
    missing = uncovered_references(InputProjection.from_paths(paths), {"p.rego": text})
    assert (missing == []) is covered


@pytest.mark.parametrize(
    ("call", "paths", "covered"),
    [
        ("object.keys", ["a.*.n"], True),  # the keys of a are kept
        ("object.keys", ["a.k.n"], False),  # only a.k would be
        ("is_object", ["a.k.n"], True),  # presence and type are kept along a path
        ("count", ["a.*.n"], False),  # any other use reads the whole value
    ],
)
def test_keys_and_type_reads(call, paths, covered):
    text = f"package t\nimport rego.v1\nx if {call}(input.a)\n"
    missing = uncovered_references(InputProjection.from_paths(paths), {"p.rego": text})
    assert (missing == []) is covered


def test_tests_are_not_scanned():
    files = {"p.rego": "package t\nx := input.a\n", "p_test.rego": "package t\ny := input\n"}
    assert uncovered_references(InputProjection.from_paths(["a"]), files) == []


def _copy_standard(tmp_path: Path, *, drop: tuple[str, ...] = (), strip: bool = False) -> Path:
    """policies/standard and policies/lib under ``tmp_path``; drop projection paths, or strip
    the whole input_projection block."""
    shutil.copytree(POLICIES / "standard", tmp_path / "standard")
    shutil.copytree(POLICIES / "lib", tmp_path / "lib")
    manifest = tmp_path / "standard" / "bundle.yaml"
    lines = manifest.read_text().splitlines(keepends=True)
    out, inside = [], False
    for line in lines:
        if line.startswith("input_projection:"):
            inside = True
            if strip:
                continue
        elif inside and not line.startswith("  - "):
            inside = False
        if inside and (strip or line.strip()[2:] in drop):
            continue
        out.append(line)
    manifest.write_text("".join(out))
    return tmp_path / "standard"


def test_check_refuses_a_projection_missing_a_read_path(tmp_path):
    d = _copy_standard(tmp_path, drop=("evidence.fairness.*.groups.*.n", "production"))
    with pytest.raises(PolicyError) as err:
        check_directory(d)
    message = err.value.message
    assert message.startswith(f"{d / 'bundle.yaml'}: input_projection does not cover")
    # each reference is located in the file on disk, with what would cover it
    assert f"{tmp_path / 'lib' / 'fairness.rego'}:" in message
    assert "needs evidence.fairness.*.groups.*.n" in message
    assert f"{tmp_path / 'lib' / 'rollback.rego'}:" in message
    assert "input.production.drift_alert (value read) needs production.drift_alert" in message


def test_the_engine_refuses_an_uncovered_projection_even_when_signed(tmp_path):
    d = _copy_standard(tmp_path, drop=("approvals.*.role",))
    with pytest.raises(PolicyError, match=r"input\.approvals\[i\]\.role .* needs approvals"):
        PolicyEngine(verified_bundle(d))


def test_the_standard_bundle_declares_a_covering_projection():
    report = check_directory(POLICIES / "standard")
    assert report.projection is not None and "evidence.fairness.*.groups.*.n" in report.projection
    bundle = UnverifiedPolicyBundle.from_source(POLICIES / "standard")
    assert uncovered_references(InputProjection.from_paths(report.projection), bundle.modules) == []


# --- the signed manifest --------------------------------------------------------------------


def test_the_projection_is_signed_in_the_manifest(standard_bundle):
    payload = json.loads(standard_bundle.payload)
    assert payload["manifest"]["input_projection"] == list(
        standard_bundle.manifest.input_projection
    )


def test_a_bundle_without_a_projection_has_no_key(write_bundle):
    d = write_bundle({"p.rego": "package t\nimport rego.v1\ndeny contains 1 if input.x\n"})
    manifest = json.loads(build_payload(load_source(d), now=NOW))["manifest"]
    assert "input_projection" not in manifest


def test_a_bad_projection_in_a_signed_payload_is_refused(standard_source):
    officers = [officer(i) for i in range(3)]
    root = make_root(officers, officer(100))
    payload = json.loads(build_payload(load_source(standard_source), now=NOW))
    payload["manifest"]["input_projection"] = ["evidence..performance"]
    env = dsse.sign(BUNDLE_PAYLOAD_TYPE, canonical_json(payload), officers[:2])
    with pytest.raises(FormatError, match="'evidence..performance'"):
        PolicyBundle.from_envelope(env.to_json(), root, now=NOW)


# --- decisions with and without the projection ----------------------------------------------


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """(the standard bundle as shipped, the same without its projection)."""
    d = _copy_standard(tmp_path_factory.mktemp("plain"), strip=True)
    projected = PolicyEngine(verified_bundle(POLICIES / "standard"))
    plain = PolicyEngine(verified_bundle(d))
    assert projected.projection is not None and plain.projection is None
    yield projected, plain
    projected.close()
    plain.close()


def _inputs() -> list[dict[str, Any]]:
    examples = [json.loads(p.read_text()) for p in sorted(EXAMPLE_INPUTS.glob("*.json"))]
    return [
        copy.deepcopy(PASSING_INPUT),
        *examples,
        *corpus()[::4],
        *(doc for doc, _, _ in missing_metric_corpus()),
    ]


def test_projected_decisions_equal_unprojected_ones(engines):
    projected, plain = engines
    allowed = denied = 0
    for doc in _inputs():
        a, b = projected.evaluate(doc), plain.evaluate(doc)
        assert (a.allow, a.violations, a.warnings) == (b.allow, b.violations, b.warnings)
        assert a.input_sha256 == b.input_sha256
        allowed, denied = allowed + a.allow, denied + (not a.allow)
    assert allowed >= 3 and denied >= 10  # both outcomes are compared


def test_example_inputs_allow_and_deny(engines):
    projected, _ = engines
    decide = {
        p.stem: projected.evaluate(json.loads(p.read_text())) for p in EXAMPLE_INPUTS.glob("*.json")
    }
    assert decide["model-pass"].allow is True
    assert decide["model-unfair"].allow is False


def test_input_hashes(engines):
    projected, plain = engines
    doc = copy.deepcopy(PASSING_INPUT)
    d = projected.evaluate(doc)
    assert d.input_sha256 == sha256_hex(canonical_json(doc))  # the whole input, as given
    assert d.projection == projected.projection.paths
    assert d.projected_sha256 == sha256_hex(canonical_json(projected.projection.apply(doc)))
    assert d.projected_sha256 != d.input_sha256
    # stable: the same input in another key order hashes the same
    reordered = dict(reversed(list(copy.deepcopy(doc).items())))
    assert projected.evaluate(reordered).input_sha256 == d.input_sha256
    # a field the policy does not read changes the input hash, not what Rego saw
    doc["evidence"]["fairness"]["sex"]["groups"]["F"]["selection_rate"] = 0.123
    e = projected.evaluate(doc)
    assert e.input_sha256 != d.input_sha256 and e.projected_sha256 == d.projected_sha256
    assert (e.allow, e.violations) == (d.allow, d.violations)
    unprojected = plain.evaluate(doc)
    assert unprojected.projection is None and unprojected.projected_sha256 is None
    assert unprojected.to_dict()["input_projection"] is None
    assert e.to_dict()["input_projection"] == {
        "paths": list(projected.projection.paths),
        "sha256": e.projected_sha256,
    }


def test_query_sees_the_projected_input(engines):
    projected, plain = engines
    doc = copy.deepcopy(PASSING_INPUT)
    assert plain.query("input.model.name", doc) == "credit-risk"
    assert projected.query("input.model.name", doc) is None  # not in the projection: undefined
    assert projected.query("input.model.stage", doc) == "production"


def test_replay_with_policy_eval_gives_the_same_decision_and_hashes(tmp_path, capsys):
    officers = [officer(i) for i in range(3)]
    root = make_root(officers, officer(100))
    root_file = tmp_path / "root.json"
    root_file.write_bytes(root.envelope.to_json())
    bundle_file = tmp_path / "standard.bundle"
    # signed now (the CLI verifies against the real clock)
    bundle_file.write_bytes(sign_source(POLICIES / "standard", officers[:2]).to_json())
    bundle = PolicyBundle.from_envelope(bundle_file.read_bytes(), root)
    for name in ("model-pass", "model-unfair"):
        doc = json.loads((EXAMPLE_INPUTS / f"{name}.json").read_text())
        with PolicyEngine(bundle) as engine:
            recorded = engine.evaluate(doc).to_dict()
        code = main(
            ["policy", "eval", str(bundle_file), "--root", str(root_file),
             "--input", str(EXAMPLE_INPUTS / f"{name}.json")]
        )  # fmt: skip
        replay = json.loads(capsys.readouterr().out)
        assert code == (0 if recorded["allow"] else 1)
        for key in (
            "bundle",
            "allow",
            "violations",
            "warnings",
            "input_sha256",
            "input_projection",
        ):
            assert replay[key] == recorded[key], key
        assert replay["input_projection"]["paths"] == list(bundle.manifest.input_projection)


def test_an_input_that_cannot_be_encoded_whole_is_refused_though_rego_never_sees_it(engines):
    projected, _ = engines
    doc = copy.deepcopy(PASSING_INPUT)
    doc["evidence"]["fairness"]["sex"]["groups"]["F"]["selection_rate"] = float("nan")
    # the whole input is hashed while the worker evaluates; its failure is still the result
    with pytest.raises(PolicyError, match="policy input cannot be encoded"):
        projected.evaluate(doc)
    # ... and the worker's reply was consumed: the next decision is its own
    assert projected.evaluate(copy.deepcopy(PASSING_INPUT)).allow is True


def test_a_failure_meanwhile_is_raised_after_the_reply(engines):
    projected, _ = engines
    worker = projected._worker
    entry = projected.bundle.manifest.rego_entrypoint

    def fail() -> None:
        raise RuntimeError("meanwhile failed")

    with pytest.raises(RuntimeError, match="meanwhile failed"):
        worker.entrypoint(entry, "{}", meanwhile=fail)
    value = worker.entrypoint(entry, canonical_json(PASSING_INPUT).decode())
    assert value["allow"] is True
