"""Non-deterministic built-ins are refused however they are spelled, so a decision replays.

Two layers are tested apart: the text scan (located errors, ``warden policy check``) and the
compiled plan's built-in table (authoritative, catches spellings the scan cannot see).
"""

from __future__ import annotations

import json

import pytest

from trust.cli.main import main
from trust.errors import PolicyError
from trust.policy import _rego
from trust.policy.check import check_directory
from trust.policy.engine import PolicyEngine

from ._support import NOW, verified_bundle

# The reviewer's bypass: the scan used to reset its string state at each newline, so the
# closing backtick on line 4 re-opened a "string" that hid the call after it.
RAW_STRING_BYPASS = """package p
import rego.v1
s := `a
b`; t := time.now_ns()
allow if t > 0
"""

# A call for each refused built-in, with arguments rego-cpp accepts where it has the built-in.
CALLS = {
    "time.now_ns": "time.now_ns()",
    "rand.intn": 'rand.intn("seed", 10)',
    "uuid.rfc4122": 'uuid.rfc4122("k")',
    "http.send": 'http.send({"method": "get", "url": "http://x"})',
    "net.lookup_ip_addr": 'net.lookup_ip_addr("example.com")',
    "opa.runtime": "opa.runtime()",
    "trace": 'trace("x")',
    "io.jwt.decode_verify": 'io.jwt.decode_verify("t", {"secret": "s"})',
    "crypto.x509.parse_and_verify_certificates": 'crypto.x509.parse_and_verify_certificates("x")',
    "crypto.x509.parse_and_verify_certificates_with_options": (
        'crypto.x509.parse_and_verify_certificates_with_options("x", {})'
    ),
    "providers.aws.sign_req": "providers.aws.sign_req({}, {}, 0)",
}


def test_every_refused_builtin_has_a_case():
    assert set(CALLS) == _rego.NONDETERMINISTIC_BUILTINS


def _bundle(write_bundle, text: str):
    return write_bundle({"p.rego": text}, entrypoint="data.p.allow", decision="allow_rule")


def test_multiline_raw_string_does_not_hide_a_call(write_bundle):
    d = _bundle(write_bundle, RAW_STRING_BYPASS)
    with pytest.raises(PolicyError, match=r"p\.rego:4:10: built-in time\.now_ns\(\) is not"):
        check_directory(d)
    with pytest.raises(PolicyError, match=r"time\.now_ns\(\) is not allowed"):
        PolicyEngine(verified_bundle(d, now=NOW))


def test_multiline_raw_string_bypass_cli(write_bundle, tmp_path, capsys):
    d = _bundle(write_bundle, RAW_STRING_BYPASS)
    inp = tmp_path / "in.json"
    inp.write_text("{}")
    assert main(["policy", "check", str(d)]) == 2
    assert main(["policy", "eval", str(d), "--input", str(inp)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "time.now_ns() is not allowed" in err


@pytest.mark.parametrize("name", sorted(CALLS))
def test_each_refused_builtin_is_located(name):
    src = f"package p\nimport rego.v1\n\nx := {CALLS[name]}\n"
    problems = _rego.static_problems("p.rego", src)
    assert [(d.line, d.column, d.code) for d in problems] == [(4, 6, "nondeterministic_builtin")]
    assert f"built-in {name}()" in problems[0].message


@pytest.mark.parametrize(
    ("spelling", "where"),
    [
        ("x := time . now_ns ()", (2, 6)),
        ("x := time\n.now_ns()", (2, 6)),
        ("x := time.\n\tnow_ns\n()", (2, 6)),
        ("x := time.# a comment between tokens\nnow_ns()", (2, 6)),
        ('s := "a \\" b"; x := time.now_ns()', (2, 21)),
        ("s := `# not a comment`; x := time.now_ns()", (2, 30)),
        ("s := `a\n`; x := crypto . x509 .\nparse_and_verify_certificates(1)", (3, 9)),
    ],
)
def test_text_scan_sees_through_layout(spelling, where):
    problems = _rego.static_problems("p.rego", "package p\n" + spelling + "\n")
    assert [(d.line, d.column) for d in problems] == [where]


@pytest.mark.parametrize(
    "text",
    [
        'msg := "do not call time.now_ns() here"',
        "msg := `several\nlines time.now_ns()\nrand.intn(1)`",
        "# time.now_ns() in a comment",
        "x := data.time.now_ns(1)",  # a user function in package time, not the built-in
        "x := mytrace(1)",
    ],
)
def test_text_scan_ignores_strings_comments_and_other_names(text):
    assert _rego.static_problems("p.rego", "package p\n" + text + "\n") == []


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("time.now_ns", 'time["now_ns"]()'),
        ("rand.intn", 'rand["intn"]("s", 10)'),
        ("uuid.rfc4122", 'uuid["rfc4122"]("a")'),
        ("opa.runtime", 'opa["runtime"]()'),
        ("io.jwt.decode_verify", 'io.jwt["decode_verify"]("t", {})'),
        (
            "crypto.x509.parse_and_verify_certificates",
            'crypto.x509["parse_and_verify_certificates"]("x")',
        ),
    ],
)
def test_plan_table_catches_what_the_text_scan_cannot(name, call):
    # A bracket spelling hides the name in a string; rego-cpp still calls the built-in. The
    # function is not reachable from the entrypoint: the plan lists it all the same.
    src = f"package p\nimport rego.v1\nallow := true\nf(x) := {call} if x\n"
    assert _rego.static_problems("p.rego", src) == []
    with pytest.raises(_rego.CompileFailed) as info:
        _rego.compile_modules({"p.rego": src}, {}, ["p/allow"])
    (diag,) = info.value.diagnostics
    assert (diag.file, diag.line, diag.code) == ("p.rego", 4, "nondeterministic_builtin")
    assert f"built-in {name}()" in diag.message


def test_plan_table_lists_deterministic_builtins():
    src = 'package p\nimport rego.v1\nallow if count(input.x) > 0\ny := sprintf("%v", [1])\n'
    _, bundle = _rego.compile_modules({"p.rego": src}, {}, ["p/allow"])
    assert {"count", "gt", "sprintf"} <= _rego.plan_builtins(bundle)
    assert not _rego.plan_builtins(bundle) & _rego.NONDETERMINISTIC_BUILTINS


def test_standard_bundle_still_compiles(standard_bundle, passing_input):
    decision = PolicyEngine(standard_bundle).evaluate(passing_input)
    assert json.loads(json.dumps(decision.to_dict()))["allow"] is True
