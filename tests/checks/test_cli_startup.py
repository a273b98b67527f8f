"""`warden` start-up: the check and profile groups load no numerical library until a command runs.

Every `warden` invocation (even `warden key ...`) builds every group's parser, so a heavy
import at module level in agent/checks/cli.py or profile_cli.py would slow down all of them.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent.data import DEFAULT_CHUNK_ROWS
from trust.cli.main import main

HEAVY = ["numpy", "scipy", "pyarrow", "sklearn", "onnxruntime", "pandas"]


def test_cli_modules_import_no_heavy_library() -> None:
    code = (
        "import agent.checks.cli, agent.checks.profile_cli; import sys; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {set(HEAVY)!r}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "[]", f"heavy modules imported at start-up: {proc.stdout}"


@pytest.mark.parametrize("group", ["check run", "profile build"])
def test_help_states_the_real_default_chunk_size(
    group: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The parsers cannot import agent.data (NumPy) for the constant; keep the text honest.
    with pytest.raises(SystemExit):
        main([*group.split(), "--help"])
    assert f"(default {DEFAULT_CHUNK_ROWS})" in " ".join(capsys.readouterr().out.split())
