"""Fixtures for policy tests: three officers, a trust root, signed bundles, model inputs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trust.keys import SigningKey
from trust.policy.bundle import PolicyBundle
from trust.root import TrustRoot

from ._support import NOW, PASSING_INPUT, POLICIES, make_root, officer, verified_bundle


@pytest.fixture(scope="session")
def officers() -> list[SigningKey]:
    """Three policy officers."""
    return [officer(i) for i in range(3)]


@pytest.fixture(scope="session")
def root_key() -> SigningKey:
    """The single root-role key of the test root."""
    return officer(100)


@pytest.fixture(scope="session")
def root(officers: list[SigningKey], root_key: SigningKey) -> TrustRoot:
    """Root with the policy role 2-of-3."""
    return make_root(officers, root_key)


@pytest.fixture(scope="session")
def standard_source() -> Path:
    """The shipped standard bundle directory."""
    return POLICIES / "standard"


@pytest.fixture(scope="session")
def standard_bundle(standard_source: Path) -> PolicyBundle:
    """The standard bundle, signed and verified (engine tests)."""
    return verified_bundle(standard_source, now=NOW)


@pytest.fixture
def passing_input() -> dict[str, Any]:
    """A model that meets every rule of the standard bundle."""
    return copy.deepcopy(PASSING_INPUT)


@pytest.fixture
def write_bundle(tmp_path: Path) -> Callable[..., Path]:
    """Write a bundle source directory: ``write_bundle(files, **manifest)``."""

    def write(files: dict[str, str], name: str = "t", **manifest: Any) -> Path:
        d = tmp_path / name
        d.mkdir()
        lines = [f"name: {manifest.pop('bundle_name', 'test')}"]
        manifest.setdefault("version", 1)
        manifest.setdefault("expires", "30d")
        manifest.setdefault("entrypoint", "data.t.deny")
        manifest.setdefault("decision", "deny_rules")
        for key, value in manifest.items():
            lines.append(f"{key}: {value}")
        (d / "bundle.yaml").write_text("\n".join(lines) + "\n")
        for path, text in files.items():
            (d / path).parent.mkdir(parents=True, exist_ok=True)
            (d / path).write_text(text)
        return d

    return write
