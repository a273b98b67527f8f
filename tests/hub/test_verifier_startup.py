"""``warden hub serve`` says why its record-verifier processes cannot start, and exits 2.

Regression (issue 8, item 12): verifier processes that could not start made
``warden hub serve`` exit 0, silently.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import assert_refused_cleanly, make_world

_SERVE_WITH_BROKEN_SPAWN = """
import errno, multiprocessing, multiprocessing.popen_spawn_posix as pp, sys
from trust.cli.main import main
how = sys.argv[1]
if how == "no-interpreter":
    # The interpreter the workers are spawned with is gone (a venv removed under the hub).
    multiprocessing.set_executable("/nonexistent/python3")
else:
    # What a process limit (ulimit -u, a cgroup's pids.max) does to fork/spawn: EAGAIN.
    def launch(self, process_obj):
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
    pp.Popen._launch = launch
sys.exit(main(["hub", "serve", "--config", sys.argv[2], "--listen", "127.0.0.1:0"]))
"""


@pytest.mark.parametrize(
    ("how", "why"),
    [
        ("no-interpreter", r"the interpreter /nonexistent/python3 does not exist"),
        ("process-limit", r"Resource temporarily unavailable"),
    ],
)
def test_hub_serve_says_why_verifier_processes_cannot_start(
    tmp_path: Path, how: str, why: str,
) -> None:
    world = make_world(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", _SERVE_WITH_BROKEN_SPAWN, how, str(world.init.config)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "WARDEN_HUB_VERIFY_WORKERS": "2"},
    )
    assert_refused_cleanly(proc, rf"error: cannot start 2 record-verifier processes: {why}")
    assert "verify_workers: 0" in proc.stderr
