"""The engine: v1 and v0 Rego, decision conventions, and errors that must never allow."""

from __future__ import annotations

import pytest

from trust.errors import PolicyError
from trust.policy.engine import PolicyEngine

from ._support import NOW, verified_bundle


def engine(write_bundle, files, **manifest) -> PolicyEngine:
    return PolicyEngine(verified_bundle(write_bundle(files, **manifest), now=NOW))


V1_DENY = """package t
import rego.v1
deny contains msg if { input.x > 1; msg := sprintf("x is %v, above 1", [input.x]) }
deny contains "b is set" if input.b
"""


def test_v1_deny_set(write_bundle):
    e = engine(write_bundle, {"p.rego": V1_DENY})
    d = e.evaluate({"x": 3, "b": True})
    assert d.allow is False
    assert [(v.rule, v.message, v.severity) for v in d.violations] == [
        ("t.deny", "b is set", "error"),
        ("t.deny", "x is 3, above 1", "error"),
    ]
    assert e.evaluate({"x": 0}).allow is True


def test_v0_partial_set(write_bundle):
    src = 'package t\nviolation[msg] { input.x > 1; msg := sprintf("x=%v", [input.x]) }\n'
    e = engine(write_bundle, {"p.rego": src}, entrypoint="data.t.violation")
    d = e.evaluate({"x": 2})
    assert (d.allow, [v.message for v in d.violations]) == (False, ["x=2"])
    assert e.evaluate({"x": 1}).allow is True


def test_document_convention_with_objects_and_warnings(write_bundle):
    src = """package t
import rego.v1
default allow := false
allow if count(violations) == 0
violations contains {"rule": "r.size", "message": "too big", "severity": "critical"} if input.x > 1
warn contains "watch x" if input.x > 0
"""
    e = engine(write_bundle, {"p.rego": src}, entrypoint="data.t", decision="document")
    d = e.evaluate({"x": 2})
    assert d.allow is False
    assert [v.to_dict() for v in d.violations] == [
        {"rule": "r.size", "message": "too big", "severity": "critical"}
    ]
    assert d.warnings == ("watch x",)
    ok = e.evaluate({"x": 0})
    assert ok.allow is True and ok.violations == () and ok.warnings == ()


def test_document_without_allow_denies(write_bundle):
    src = "package t\nimport rego.v1\ndeny contains 1 if false\nother := 1\n"
    e = engine(write_bundle, {"p.rego": src}, entrypoint="data.t", decision="document")
    d = e.evaluate({})
    assert d.allow is False and d.violations[0].message == "data.t.allow is undefined"


def test_allow_rule_undefined_denies(write_bundle):
    src = "package t\nimport rego.v1\nallow if input.ok == true\n"
    e = engine(write_bundle, {"p.rego": src}, entrypoint="data.t.allow", decision="allow_rule")
    assert e.evaluate({"ok": True}).allow is True
    d = e.evaluate({"ok": False})
    assert d.allow is False
    assert d.violations[0].message == "data.t.allow is undefined (no rule matched)"


def test_violations_force_deny_even_if_allow_true(write_bundle):
    src = 'package t\nimport rego.v1\nallow := true\ndeny contains "no" if true\n'
    e = engine(write_bundle, {"p.rego": src}, entrypoint="data.t", decision="document")
    assert e.evaluate({}).allow is False


def test_decision_is_deterministic(write_bundle):
    e = engine(write_bundle, {"p.rego": V1_DENY})
    a, b = e.evaluate({"b": True, "x": 5}), e.evaluate({"x": 5, "b": True})
    assert (a.violations, a.input_sha256, a.bundle_digest) == (
        b.violations,
        b.input_sha256,
        b.bundle_digest,
    )
    assert a.decision_id != b.decision_id
    fresh = engine(write_bundle, {"p.rego": V1_DENY}, name="again")
    assert fresh.evaluate({"x": 5, "b": True}).violations == a.violations


def test_data_is_visible_as_config(write_bundle):
    src = 'package t\nimport rego.v1\ndeny contains "low" if input.a < data.config.min_a\n'
    d = write_bundle({"p.rego": src}, data="{min_a: 0.5}")
    e = PolicyEngine(verified_bundle(d, now=NOW))
    assert e.evaluate({"a": 0.4}).allow is False
    assert e.evaluate({"a": 0.6}).allow is True


# --- bad input: each is a PolicyError, never an allow ---------------------------------------


def test_rego_syntax_error_names_file_and_line(write_bundle):
    bad = "package t\nimport rego.v1\n\ndeny contains msg if {\n  input.x >\n}\n"
    with pytest.raises(PolicyError, match=r"p\.rego:5:11: Invalid boolean operator"):
        engine(write_bundle, {"p.rego": bad})


def test_undefined_entrypoint(write_bundle):
    with pytest.raises(PolicyError, match="entrypoint data.t.nothing is not defined"):
        engine(write_bundle, {"p.rego": V1_DENY}, entrypoint="data.t.nothing")
    with pytest.raises(PolicyError, match="entrypoint data.other.deny is not defined"):
        engine(write_bundle, {"p.rego": V1_DENY}, entrypoint="data.other.deny", name="u2")


@pytest.mark.parametrize("value", [[1, 2], "text", 3, None, True])
def test_input_that_is_not_an_object(write_bundle, value):
    e = engine(write_bundle, {"p.rego": V1_DENY})
    with pytest.raises(PolicyError, match="must be a JSON object"):
        e.evaluate(value)


def test_input_with_nan_is_refused(write_bundle):
    e = engine(write_bundle, {"p.rego": V1_DENY})
    with pytest.raises(PolicyError, match="cannot be encoded"):
        e.evaluate({"x": float("nan")})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('allow if { x := 1 / input.zero; x > 0 }\ndeny contains "d" if false', "divide by zero"),
        ("allow := 1 if true\nallow := 2 if true", "multiple outputs"),
        ("allow if b\nb if allow", "Recursion detected"),
        ("allow if f(1)\nf(x) := y if { y := f(x) }", "Recursion detected"),
        ('allow if to_number("not a number") > 0', "invalid syntax"),
    ],
    ids=["divide_by_zero", "conflict", "rule_loop", "function_loop", "bad_builtin_arg"],
)
def test_runtime_errors_and_loops_are_policy_errors(write_bundle, body, message):
    src = f"package t\nimport rego.v1\n{body}\n"
    try:
        e = engine(write_bundle, {"p.rego": src}, entrypoint="data.t", decision="document")
    except PolicyError as exc:  # some are caught at compile time: just as good
        assert message.lower() in str(exc).lower() or "compil" in str(exc)
        return
    with pytest.raises(PolicyError) as info:
        e.evaluate({"zero": 0})
    assert message.lower() in str(info.value).lower()


def test_nondeterministic_builtin_is_refused(write_bundle):
    src = 'package t\nimport rego.v1\ndeny contains "late" if time.now_ns() > 0\n'
    with pytest.raises(
        PolicyError, match=r"p\.rego:3:\d+: built-in time\.now_ns\(\) is not allowed"
    ):
        engine(write_bundle, {"p.rego": src})


def test_whole_input_with_is_refused_not_crashing(write_bundle):
    # `with input as <rule>` aborts rego-cpp (see test_rego_crashes.py); refused with file:line.
    src = 'package t_test\nimport rego.v1\nh := {"a": 1}\ntest_x if { 1 == 1 with input as h }\n'
    with pytest.raises(PolicyError, match=r"x\.rego:4:20: 'with input as <reference>'"):
        engine(write_bundle, {"p.rego": V1_DENY + "\n", "p_test.rego": "", "x.rego": src})


def test_whole_input_with_a_literal_is_accepted(write_bundle):
    src = 'package t\nimport rego.v1\nt_ok if { input.a == 1 with input as {"a": 1} }\n'
    e = engine(write_bundle, {"p.rego": V1_DENY, "x.rego": src})
    assert e.query("data.t.t_ok", {}) is True


def test_query_ad_hoc(write_bundle):
    e = engine(write_bundle, {"p.rego": V1_DENY})
    assert sorted(e.query("data.t.deny", {"x": 2, "b": True})) == ["b is set", "x is 2, above 1"]
    assert e.query("data.t.nothing", {}) is None


QUERY_SRC = """package q
import rego.v1
default allow := false
allow if input.a == 1
nothing if input.never
n := null
"""


@pytest.mark.parametrize(
    ("query", "input_doc", "expected"),
    [
        ("data.q.allow", {}, False),  # rego-cpp alone reports a false query as undefined
        ("data.q.allow", {"a": 1}, True),
        ("data.q.allow == false", {}, True),
        ("data.q.allow == true", {}, False),
        ("data.q.n", {}, None),
        ("[x | some x in [1, 2]]", {}, [1, 2]),
        ("x := data.q.allow", {}, {"x": False}),  # bindings, not the `:=` expression's true
        ("x := data.q.allow; y := 2", {"a": 1}, {"x": True, "y": 2}),
        ("data.q.allow; data.q.n", {"a": 1}, True),
        ("data.q.nothing", {}, "UNDEFINED"),
        ("x := data.q.nothing", {}, "UNDEFINED"),
        ("input.missing", {}, "UNDEFINED"),
    ],
)
def test_query_values_false_and_undefined(write_bundle, query, input_doc, expected):
    e = engine(write_bundle, {"p.rego": V1_DENY, "q.rego": QUERY_SRC})
    value = e.query(query, input_doc, undefined="UNDEFINED")
    assert value == expected and type(value) is type(expected)


def test_query_errors_and_several_results(write_bundle):
    e = engine(write_bundle, {"p.rego": V1_DENY, "q.rego": QUERY_SRC})
    with pytest.raises(PolicyError, match="2 results"):
        e.query("some v in [1, 2]", {})
    with pytest.raises(PolicyError, match="query 'x := 1 / 0' failed"):
        e.query("x := 1 / 0", {})
