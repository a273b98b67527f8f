"""Issue 8, item 5: a YAML file that says one key twice is refused, wherever Warden reads YAML.

PyYAML keeps the last of two equal keys without a word, so ``min_accuracy: 0.88`` followed by
``min_accuracy: 0.10`` used to check, sign and show 0.1. Every reader here goes through
:func:`trust.strict_yaml.load` and refuses the file, naming the key and the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.checks.files import load_manifest, parse_model_card
from trust.errors import FormatError
from trust.policy.bundle import UnverifiedPolicyBundle, load_source, sign_source

from ._support import NOW, officer

REGO = "package t\n\ndeny contains msg if {\n\tinput.x\n\tmsg := \"x\"\n}\n"

# name -> the bundle.yaml text; each one repeats the key in the second field.
DUPLICATED_MANIFESTS = {
    "threshold-lowered-by-a-second-min_accuracy": (
        "min_accuracy",
        "name: t\nversion: 1\nexpires: 30d\nentrypoint: data.t.deny\ndecision: deny_rules\n"
        "data:\n  min_accuracy: 0.88\n  min_accuracy: 0.10\n",
    ),
    "second-name": (
        "name",
        "name: standard\nversion: 1\nexpires: 30d\nentrypoint: data.t.deny\n"
        "decision: deny_rules\nname: other\n",
    ),
    "second-version": (
        "version",
        "name: t\nversion: 9\nexpires: 30d\nentrypoint: data.t.deny\ndecision: deny_rules\n"
        "version: 1\n",
    ),
    "second-entrypoint": (
        "entrypoint",
        "name: t\nversion: 1\nexpires: 30d\nentrypoint: data.t.deny\ndecision: deny_rules\n"
        "entrypoint: data.t.allow\n",
    ),
    "nested-role-list-key": (
        "production",
        "name: t\nversion: 1\nexpires: 30d\nentrypoint: data.t.deny\ndecision: deny_rules\n"
        "data:\n  required_approvals:\n    production: [compliance]\n    production: []\n",
    ),
}


def _bundle_dir(tmp_path: Path, manifest: str) -> Path:
    d = tmp_path / "b"
    d.mkdir()
    (d / "bundle.yaml").write_text(manifest)
    (d / "p.rego").write_text(REGO)
    return d


@pytest.mark.parametrize(("key", "manifest"), DUPLICATED_MANIFESTS.values(),
                         ids=list(DUPLICATED_MANIFESTS))
def test_bundle_manifest_with_a_repeated_key_is_refused(tmp_path, key, manifest):
    d = _bundle_dir(tmp_path, manifest)
    pattern = rf"bundle\.yaml: found duplicate key '{key}' \(line \d+\)"
    with pytest.raises(FormatError, match=pattern):
        load_source(d)
    with pytest.raises(FormatError, match=pattern):
        UnverifiedPolicyBundle.from_source(d, now=NOW)
    with pytest.raises(FormatError, match=pattern):
        sign_source(d, [officer(0)], now=NOW)


def test_the_same_keys_once_each_still_load(tmp_path):
    d = _bundle_dir(
        tmp_path,
        "name: t\nversion: 1\nexpires: 30d\nentrypoint: data.t.deny\ndecision: deny_rules\n"
        "data:\n  min_accuracy: 0.88\n  max: {min_accuracy: 0.1}\n",
    )
    assert load_source(d).data["min_accuracy"] == 0.88


def test_duplicate_key_error_names_the_line_of_the_second_occurrence(tmp_path):
    d = _bundle_dir(tmp_path, DUPLICATED_MANIFESTS["threshold-lowered-by-a-second-min_accuracy"][1])
    with pytest.raises(FormatError) as info:
        load_source(d)
    assert str(d / "bundle.yaml") in info.value.message
    assert re.search(r"\(line 8\)", info.value.message), info.value.message


MODEL_MANIFESTS = {
    "manifest.yaml": 'model: {name: credit-risk, version: "1.4.0"}\n'
    'model: {name: other-model, version: "9"}\n',
    "nested.yaml": 'model:\n  name: credit-risk\n  version: "1.4.0"\n  version: "9"\n',
    "manifest.json": '{"model": {"name": "credit-risk", "version": "1.4.0", "version": "9"}}',
}


@pytest.mark.parametrize("filename", sorted(MODEL_MANIFESTS))
def test_model_manifest_with_a_repeated_key_is_refused(tmp_path, filename):
    p = tmp_path / filename
    p.write_text(MODEL_MANIFESTS[filename])
    key = "model" if filename == "manifest.yaml" else "version"
    with pytest.raises(FormatError, match=rf"{re.escape(str(p))}: .*duplicate .*key '{key}'"):
        load_manifest(p)


@pytest.mark.parametrize("filename", ["card.yaml", "card.yml", "card.json"])
def test_model_card_with_a_repeated_section_is_refused(tmp_path, filename):
    p = tmp_path / filename
    if filename.endswith(".json"):
        p.write_text('{"intended_use": "credit scoring", "intended_use": ""}')
    else:
        p.write_text("intended_use: credit scoring\nintended_use: ''\n")
    with pytest.raises(FormatError, match=rf"{re.escape(str(p))}: .*duplicate .*'intended_use'"):
        parse_model_card(p)
