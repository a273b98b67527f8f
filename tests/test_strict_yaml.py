"""``trust.strict_yaml``: a repeated key is refused, a merge override is not (issue 8, item 5)."""

from __future__ import annotations

import pytest

from trust import strict_yaml
from trust.errors import ConfigError, FormatError


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("min_accuracy: 0.88\nmin_accuracy: 0.10\n", "min_accuracy", 2),
        ("data:\n  x: 1\n  x: 2\n", "x", 3),
        ("- {a: 1, a: 2}\n", "a", 1),
    ],
    ids=["top-level", "nested", "flow-mapping-in-a-list"],
)
def test_a_repeated_key_is_refused_naming_key_and_line(text: str, key: str, line: int) -> None:
    with pytest.raises(FormatError) as info:
        strict_yaml.load(text, source="bundle.yaml")
    assert info.value.message == f"bundle.yaml: found duplicate key {key!r} (line {line})"


def test_a_key_overriding_a_merged_one_is_valid_yaml() -> None:
    text = "base: &b {k: 1, j: 3}\nm:\n  <<: *b\n  k: 2\n"
    assert strict_yaml.load(text, source="f.yaml") == {"base": {"k": 1, "j": 3},
                                                       "m": {"k": 2, "j": 3}}


def test_the_callers_error_class_is_raised() -> None:
    with pytest.raises(ConfigError, match=r"hub\.yaml: not valid YAML"):
        strict_yaml.load("a: [\n", source="hub.yaml", error=ConfigError)


def test_booleans_are_yaml_1_2_so_on_and_no_stay_words() -> None:
    text = "on: [drift_alert]\ncountry: NO\nanswer: yes\nflag: true\nother: False\n"
    doc = strict_yaml.load(text, source="agent.yaml")
    assert doc == {"on": ["drift_alert"], "country": "NO", "answer": "yes", "flag": True,
                   "other": False}
    import yaml

    assert yaml.safe_load("on: 1") == {True: 1}  # PyYAML's own loader is left as it is
