"""Fixtures shared by the trust-core tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_ambient_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    """A passphrase in the developer's environment must not change what the tests see."""
    monkeypatch.delenv("WARDEN_KEY_PASSPHRASE", raising=False)
