"""Canonical JSON (RFC 8785 / JCS): the bytes everything hashed or signed is made of.

Expected outputs are copied from RFC 8785 itself (§3.2.2 example, §3.2.3 sorting example,
Appendix B number samples), not computed with the library under test.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trust.canonical import canonical_json, loads_object, sha256_hex
from trust.errors import FormatError


def test_rfc8785_section_3_2_2_example() -> None:
    # RFC 8785 §3.2.2 input (as JSON text) and its canonical form.
    text = r"""{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"""
    expected = (
        '{"literals":[null,true,false],'
        '"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert canonical_json(json.loads(text)) == expected


def test_rfc8785_section_3_2_3_sorting_example() -> None:
    # Keys sort by UTF-16 code units: the emoji (surrogate D83D) precedes U+FB33.
    text = r"""{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }"""
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    ).encode("utf-8")
    assert canonical_json(json.loads(text)) == expected


def test_sorting_ignores_locale() -> None:
    # From the JCS reference test data: French collation would put "pêche" before "péché".
    obj = {"sin": 4, "pêche": 3, "péché": 2, "peach": 1}
    assert canonical_json(obj) == '{"peach":1,"péché":2,"pêche":3,"sin":4}'.encode()


# RFC 8785 Appendix B: IEEE-754 bit pattern → ECMAScript serialisation.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def _double(hex_bits: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(hex_bits))[0]
    return value


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_rfc8785_appendix_b_number(bits: str, expected: str) -> None:
    assert canonical_json([_double(bits)]) == f"[{expected}]".encode()


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_nan_and_infinity_are_refused(bits: str) -> None:
    value = _double(bits)
    assert math.isnan(value) or math.isinf(value)
    with pytest.raises(FormatError):
        canonical_json({"x": value})


@pytest.mark.parametrize(
    "value",
    [
        {1: "int key"},
        {"x": b"bytes"},
        {"x": object()},
        {"x": 2**53 + 1},  # not exactly representable as an IEEE double: JCS cannot carry it
    ],
    ids=["int-key", "bytes", "object", "unsafe-int"],
)
def test_values_outside_json_are_format_errors(value: Any) -> None:
    with pytest.raises(FormatError):
        canonical_json(value)


def test_integers_and_whole_floats_serialise_alike() -> None:
    assert canonical_json({"a": 1, "b": 1.0, "c": -0.0, "d": 2**53 - 1}) == (
        b'{"a":1,"b":1,"c":0,"d":9007199254740991}'
    )


def test_no_whitespace_and_utf8_not_escapes() -> None:
    out = canonical_json({"b": [1, 2, {"z": None}], "a": "é\u2028\x1f"})
    assert out == '{"a":"é\u2028\\u001f","b":[1,2,{"z":null}]}'.encode()


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    # whole floats ≥ 2**53 are covered by test_large_whole_numbers_round_trip below
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: abs(f) < 2**53)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(JSON_VALUES)
def test_canonical_form_is_a_fixed_point(value: Any) -> None:
    once = canonical_json(value)
    assert canonical_json(json.loads(once)) == once


@pytest.mark.parametrize("value", [2.0**53, 1e16, _double("4430000000000000")])
def test_large_whole_numbers_round_trip(value: float) -> None:
    # JCS numbers are IEEE doubles; a verifier that parses canonical bytes with Python's json
    # gets an int back, and must be able to re-canonicalise it to the same bytes.
    once = canonical_json({"x": value})
    assert canonical_json(json.loads(once)) == once


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=6), st.integers(-1000, 1000), max_size=8), st.randoms())
def test_insertion_order_does_not_matter(obj: dict[str, int], rnd: Any) -> None:
    items = list(obj.items())
    rnd.shuffle(items)
    assert canonical_json(dict(items)) == canonical_json(obj)


def test_sha256_hex_known_answer() -> None:
    assert sha256_hex(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert sha256_hex(b"") == ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [(b"[1, 2]", "expected a JSON object"), (b"{nope", "not valid JSON"), (b"\xff\xfe{", "")],
)
def test_loads_object_names_the_source(data: bytes, fragment: str) -> None:
    with pytest.raises(FormatError) as info:
        loads_object(data, what="policy.json")
    assert "policy.json" in str(info.value)
    assert fragment in str(info.value)


@pytest.mark.parametrize("digits", [20, 5000])
def test_huge_integers_are_a_format_error_never_a_crash(digits: int) -> None:
    from trust.canonical import loads_strict
    from trust.errors import FormatError

    text = '{"a": ' + "1" * digits + "}"
    if digits > 4300:
        with pytest.raises(FormatError, match="doc.json"):
            loads_strict(text, what="doc.json")
    else:
        assert loads_strict(text, what="doc.json") == {"a": float("1" * digits)}
