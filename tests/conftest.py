"""Suite-wide test settings.

Hypothesis runs without per-example deadlines (the machine is shared by two xdist workers,
so wall-clock deadlines would be flaky) and with a bounded number of examples so the suite
stays well under its time budget.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

settings.register_profile(
    "warden",
    deadline=None,
    max_examples=int(os.environ.get("WARDEN_HYPOTHESIS_EXAMPLES", "100")),
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("warden")


@pytest.fixture(scope="session")
def warden_bin() -> str:
    """Path of the ``warden`` console script in the environment running the tests."""
    return str(Path(sys.executable).parent / "warden")


@pytest.fixture(scope="session")
def shared_vectors() -> Path:
    """``../shared/vectors``; tests that need it skip with a clear message when it is absent."""
    path = SHARED / "vectors"
    if not path.is_dir():
        pytest.skip(f"public test vectors not found at {path} (expected beside the repository)")
    return path
