"""An ad-hoc query (``warden policy eval --query``) may not call what a bundle may not.

Bundles refuse non-deterministic built-ins (clock, randomness, host) through the compiled
plan's built-in table; a query used to be evaluated with ``rego_query`` and skipped the check,
so ``opa.runtime()`` printed the host's environment and ``time.now_ns()`` gave a different
answer on every run. The query is now compiled into a plan and the same table is checked.
"""

from __future__ import annotations

import json

import pytest

from trust.cli.main import main
from trust.errors import PolicyError
from trust.policy.engine import PolicyEngine

from ._support import NOW, verified_bundle

_SRC = 'package t\nimport rego.v1\ndeny contains msg if { input.x > 1; msg := "x" }\n'

# (query, the built-in it calls): the four the review found, in each query form.
BANNED_QUERIES = [
    ("time.now_ns()", "time.now_ns"),
    ('rand.intn("seed", 100)', "rand.intn"),
    ('uuid.rfc4122("k")', "uuid.rfc4122"),
    ("opa.runtime()", "opa.runtime"),
    ("t := time.now_ns()", "time.now_ns"),  # a statement query
    ('x := opa.runtime().env["HOME"]', "opa.runtime"),
    ('time["now_ns"]()', "time.now_ns"),  # a spelling a text scan cannot see
]


@pytest.fixture
def source(write_bundle):
    return write_bundle({"p.rego": _SRC})


@pytest.mark.parametrize(("query", "builtin"), BANNED_QUERIES)
def test_query_calling_a_nondeterministic_builtin_is_refused(source, query, builtin):
    engine = PolicyEngine(verified_bundle(source, now=NOW))
    with pytest.raises(PolicyError, match=rf"built-in {builtin}\(\) is not allowed"):
        engine.query(query, {})


@pytest.mark.parametrize(("query", "builtin"), BANNED_QUERIES[:4])
def test_eval_query_with_a_nondeterministic_builtin_exits_2(
    source, tmp_path, capsys, query, builtin
):
    doc = tmp_path / "in.json"
    doc.write_text("{}")
    code = main(["policy", "eval", str(source), "--input", str(doc), "--query", query])
    out, err = capsys.readouterr()
    assert code == 2, out
    assert out == ""  # nothing was evaluated, so nothing (no host environment) is printed
    (error,) = [line for line in err.splitlines() if line.startswith("error: ")]
    assert f"built-in {builtin}() is not allowed" in error


def test_deterministic_queries_still_answer(source, tmp_path, capsys):
    engine = PolicyEngine(verified_bundle(source, now=NOW))
    assert engine.query("data.t.deny", {"x": 2}) == ["x"]
    assert engine.query("count(data.t.deny) == 0", {"x": 2}) is False
    assert engine.query("y := data.t.deny; z := 2", {"x": 0}) == {"y": [], "z": 2}
    doc = tmp_path / "in.json"
    doc.write_text(json.dumps({"x": 5}))
    code = main(["policy", "eval", str(source), "--input", str(doc), "--query", "data.t.deny"])
    assert code == 0 and json.loads(capsys.readouterr().out)["result"] == ["x"]
