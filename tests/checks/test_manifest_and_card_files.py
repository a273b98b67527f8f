"""Unreadable or malformed manifest and model-card files: one-line errors naming the file.

Binary garbage, a directory, an impossible YAML date, mistyped or unquoted fields, bad dates and
digests: each is a DataError/FormatError naming the file (and the key), never a traceback. The
files are read at the I/O edge (:mod:`agent.checks.files`) and parsed by the pure lineage and
documentation modules.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.checks.files import load_manifest, parse_model_card
from trust.errors import DataError, FormatError

GARBAGE = bytes(range(256)) * 4  # not UTF-8 (0x80 is a lone continuation byte)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_manifest_binary_garbage_is_format_error(tmp_path: Path, suffix: str) -> None:
    p = tmp_path / f"manifest{suffix}"
    p.write_bytes(GARBAGE)
    with pytest.raises(FormatError, match=f"{p.name}: manifest is not UTF-8"):
        load_manifest(p)


def test_manifest_directory_is_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a directory"):
        load_manifest(tmp_path)


def test_manifest_impossible_yaml_date_is_format_error(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text("trained_at: 2025-13-45\n")  # PyYAML raises ValueError, not YAMLError
    with pytest.raises(FormatError, match=r"m\.yaml: not valid YAML \(month must be"):
        load_manifest(p)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("model: {name: 5}\n", "model.name"),
        ("model: {name: m, version: [1, 2]}\n", "model.version"),
        ("artifact: {path: 3}\n", "artifact.path"),
        ("code: {repository: {a: 1}}\n", "code.repository"),
        ("training_data: {rows: many}\n", "training_data.rows"),
        ("training_data: {rows: true}\n", "training_data.rows"),
        ("training_data: {snapshot_date: 5}\n", "training_data.snapshot_date"),
        ("explainability: [a, b]\n", "explainability"),
        ("trained_at: 20250101\n", "trained_at"),
    ],
)
def test_manifest_field_types_name_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(text)
    with pytest.raises(FormatError, match=rf"m\.yaml: manifest field '{key}' must be"):
        load_manifest(p)


@pytest.mark.parametrize(
    ("text", "key"),
    [("model: {version: 1.10}\n", "model.version"), ("code: {commit: 1234567}\n", "code.commit")],
)
def test_unquoted_version_and_commit_are_refused(tmp_path: Path, text: str, key: str) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(text)
    with pytest.raises(FormatError, match=rf"'{key}' must be a string") as info:
        load_manifest(p)
    assert info.value.hint is not None and "quote it in YAML" in info.value.hint


def test_manifest_bad_date_and_digest_name_the_file(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text("trained_at: notadate\n")
    with pytest.raises(FormatError, match=r"m\.yaml: manifest field 'trained_at' is not a date"):
        load_manifest(p)
    p.write_text("artifact: {sha256: abc}\n")
    with pytest.raises(FormatError, match=r"m\.yaml: manifest field 'artifact.sha256'"):
        load_manifest(p)


def test_manifest_section_must_be_mapping_names_type(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text("training_data: 7\n")
    with pytest.raises(FormatError, match="'training_data' must be a mapping, got int"):
        load_manifest(p)


def test_well_formed_manifest_still_loads(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(
        'model: {name: credit, version: "1.10"}\ncode: {commit: "1234567"}\n'
        "training_data: {rows: 5, snapshot_date: 2026-01-02}\ntrained_at: 2026-01-03\n"
    )
    m = load_manifest(p)
    assert m["model"]["version"] == "1.10" and m["code"]["commit"] == "1234567"


@pytest.mark.parametrize("name", ["card.md", "card.yaml", "card.json"])
def test_model_card_binary_garbage_is_format_error(tmp_path: Path, name: str) -> None:
    p = tmp_path / name
    p.write_bytes(GARBAGE)
    with pytest.raises(FormatError, match=f"{name}: model card is not UTF-8"):
        parse_model_card(p)


def test_model_card_directory_and_bad_date(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a directory"):
        parse_model_card(tmp_path)
    p = tmp_path / "card.yaml"
    p.write_text("model_details: {date: 2025-13-45}\n")
    with pytest.raises(FormatError, match=r"card\.yaml: not valid YAML"):
        parse_model_card(p)
