"""The `with input as` / `with data as` forms that crash rego-cpp, and the refusal that matches.

Each form is fed to rego-cpp directly (no Warden checks) in a subprocess, so a crash kills the
child, not the test run. If a regopy upgrade stops crashing on a refused form, the first test
fails: narrow the refusal in trust/policy/_rego.py then.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from trust.policy import _rego

_SCRIPT = textwrap.dedent(
    """
    import sys
    from regopy import Interpreter, LogLevel
    from regopy import rego_shared as rs

    interp = Interpreter()
    interp.log_level = LogLevel.NONE
    interp.add_module("p.rego", sys.argv[1])
    interp.add_data_json('{"config": {"k": 1}}')
    bundle = interp.build(None, ["p/test_x"])
    runner = Interpreter()
    runner.log_level = LogLevel.NONE
    runner.set_input_term("{}")
    out = rs.rego_bundle_query_entrypoint(runner._impl, bundle._impl, "p/test_x")
    print(rs.rego_output_string(out))
    """
)

_HEADER = 'package p\nimport rego.v1\nf := input.a\nh := {"a": 1}\n'

# (rule, crashes): the exact forms tried against rego-cpp 1.5.2.
FORMS = [
    ('test_x if { data.config.k == 2 with data as {"config": {"k": 2}} }', True),
    ("test_x if { true with data as {} }", True),
    ("test_x if { f == 1 with input as h }", True),  # a rule reference
    ("test_x if { f == 1 with input as h.a }", True),
    ("test_x if { f == 1 with input as data.config }", True),  # a data reference
    ('test_x if { f == 1 with input as {"a": 1} }', False),  # literals work
    ('test_x if { f == 1 with input as {"a": h.a} }', False),  # refs inside a literal too
    ('test_x if { f == 1 with input as\n  {"a": 1} }', False),
    ("test_x if { input == [1] with input as [h.a] }", False),
    ('test_x if { input == "s" with input as "s" }', False),
    ("test_x if { input == 3 with input as 3 }", False),
    ("test_x if { f == 1 with input.a as 1 }", False),  # field replacement always works
]


def _run(rule: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT, _HEADER + rule + "\n"],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("rule", "crashes"), FORMS)
def test_rego_cpp_behaviour_on_with_forms(rule, crashes):
    proc = _run(rule)
    if crashes:
        assert proc.returncode < 0, (
            f"rego-cpp no longer crashes on {rule!r} (exit {proc.returncode}): narrow the "
            "refusal in trust/policy/_rego.py"
        )
    else:
        assert proc.returncode == 0, proc.stderr[-500:]
        assert proc.stdout.strip() == '{"expressions":[true]}'


@pytest.mark.parametrize(("rule", "crashes"), FORMS)
def test_warden_refuses_exactly_the_crashing_forms(rule, crashes):
    problems = _rego.static_problems("p.rego", _HEADER + rule + "\n")
    assert [d.code for d in problems] == (["unsupported_with"] if crashes else [])
    if crashes:
        assert problems[0].line == 5


def test_refusal_spans_lines_and_comments():
    src = _HEADER + "test_x if { f == 1 with input # the whole input\n  as h }\n"
    (diag,) = _rego.static_problems("p.rego", src)
    assert (diag.line, diag.column, diag.code) == (5, 20, "unsupported_with")
    assert "with input as <reference>" in diag.message
    src = _HEADER + "test_x if { true with data\n as {} }\n"
    assert [d.code for d in _rego.static_problems("p.rego", src)] == ["unsupported_with"]
