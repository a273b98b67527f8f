"""``--eval-timeout`` / ``--eval-memory`` set the bounds of ``policy eval`` and ``policy test``.

The bounds themselves are tested in ``test_eval_bounds.py`` through the engine; here the flags
reach it: a tighter timeout than the default ends the catastrophic regex in about a second, and
limits that bound nothing are usage errors before any worker starts.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.policy.test_eval_bounds import CATASTROPHIC, REGEX_BOMB
from trust.cli.main import main


def test_eval_timeout_flag_bounds_the_evaluation(write_bundle, tmp_path, capsys):
    source = write_bundle({"p.rego": REGEX_BOMB})
    doc = tmp_path / "in.json"
    doc.write_text(json.dumps(CATASTROPHIC))
    started = time.monotonic()
    code = main(["policy", "eval", str(source), "--input", str(doc), "--eval-timeout", "1"])
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert "could not decide: policy evaluation exceeded the 1 s time limit" in err, err
    assert elapsed < 8  # the default 10 s was not used


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--eval-memory", "1MiB"), "memory_bytes must be at least 64 MiB"),
        (("--eval-memory", "lots"), "--eval-memory: 'lots' is not a size"),
        (("--eval-timeout", "0"), "--eval-timeout: 0 is not a positive"),
        (("--eval-timeout", "nan"), "--eval-timeout: nan is not a positive"),
    ],
    ids=["memory-too-small", "memory-not-a-size", "timeout-zero", "timeout-nan"],
)
def test_limits_that_bound_nothing_are_usage_errors(write_bundle, tmp_path, capsys, flags,
                                                     message):
    source = write_bundle({"p.rego": REGEX_BOMB})
    doc = tmp_path / "in.json"
    doc.write_text("{}")
    try:
        code = main(["policy", "eval", str(source), "--input", str(doc), *flags])
    except SystemExit as exc:  # argparse refuses bad types itself
        code = exc.code
    _, err = capsys.readouterr()
    assert code == 2
    assert message in err, err
    assert "Traceback" not in err
