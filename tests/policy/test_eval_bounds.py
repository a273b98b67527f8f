"""Policy evaluation is bounded in time and memory, and a blow-up is "could not decide".

The review found two policies that pass ``warden policy check`` and take the host down:
``count(numbers.range(1, 100000000))`` grew to 23.8 GB (a machine-wide OOM kill) and
``regex.match("^(a+)+$", …)`` on 33 characters ran for more than 100 s. Evaluation now runs in
a worker process with an address-space ceiling and a wall-clock timeout; hitting either is an
:class:`EvaluationLimitError` (exit 2), never an allow, and the next evaluation gets a fresh
worker. The ceilings here (256 MiB, 2 s) are far below the machine's memory and the tests'
own time budget.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from trust.cli.main import main
from trust.errors import ConfigError, PolicyError
from trust.policy import worker as worker_mod
from trust.policy.engine import PolicyEngine
from trust.policy.testing import Outcome, run_tests
from trust.policy.worker import (
    EvaluationCrashError,
    EvaluationLimitError,
    EvaluationLimits,
    PolicyWorker,
)

from ._support import NOW, verified_bundle

MiB = 2**20
CEILING = 256 * MiB
# The memory test gets a long timeout so that it is the memory bound that stops it.
MEMORY = EvaluationLimits(timeout_s=60.0, memory_bytes=CEILING)
TIME = EvaluationLimits(timeout_s=2.0, memory_bytes=CEILING)

RANGE_BOMB = """package t
import rego.v1
deny contains "too many numbers" if count(numbers.range(1, 100000000)) > 0
deny contains "x above 1" if input.x > 1
"""
REGEX_BOMB = """package t
import rego.v1
deny contains "backtracked" if regex.match("^(a+)+$", input.s)
deny contains "x above 1" if input.x > 1
"""
CATASTROPHIC = {"s": "a" * 32 + "!"}  # 33 characters: 2^32 ways to split the a's


def _engine(write_bundle: Any, src: str, limits: EvaluationLimits) -> PolicyEngine:
    bundle = verified_bundle(write_bundle({"p.rego": src}), now=NOW)
    return PolicyEngine(bundle, limits=limits)


def _own_peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def test_numbers_range_bomb_hits_the_memory_ceiling_not_the_host(write_bundle):
    engine = _engine(write_bundle, RANGE_BOMB, MEMORY)
    pid = engine.worker_pid
    assert pid is not None
    footprint = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    host_before = _own_peak_rss()
    started = time.monotonic()
    with pytest.raises(EvaluationLimitError) as info:
        engine.evaluate({"x": 0})
    assert time.monotonic() - started < 30
    err = info.value
    assert isinstance(err, PolicyError) and err.exit_code == 2
    assert err.limit == "memory"
    assert err.message.startswith(
        "could not decide: policy evaluation exceeded the 256 MiB memory limit"
    )
    # The worker's measured peak stayed at its start-up footprint plus the ceiling, plus what
    # it could allocate between two looks of the watchdog (rego-cpp's allocator grows the
    # resident set inside address space it reserved at start, so the parent's look is what
    # stops it; on a loaded machine the parent may look late) — far below the host's 24 GiB,
    # where the unbounded evaluation reached 23.8 GB.
    assert err.peak_rss_bytes is not None
    assert err.peak_rss_bytes < footprint + CEILING + 1024 * MiB, (footprint, err.peak_rss_bytes)
    # ... and the test process itself never grew.
    assert _own_peak_rss() - host_before < 64 * MiB


def test_catastrophic_regex_hits_the_time_limit_and_the_worker_recovers(write_bundle):
    engine = _engine(write_bundle, REGEX_BOMB, TIME)
    assert [v.message for v in engine.evaluate({"x": 0, "s": "aaa"}).violations] == ["backtracked"]
    first = engine.worker_pid
    started = time.monotonic()
    with pytest.raises(EvaluationLimitError) as info:
        engine.evaluate(CATASTROPHIC)
    elapsed = time.monotonic() - started
    assert 2.0 <= elapsed < 10.0
    assert info.value.limit == "time" and info.value.exit_code == 2
    assert info.value.message.startswith(
        "could not decide: policy evaluation exceeded the 2 s time limit"
    )
    # A fresh worker, compiled again, gives the same decisions as before the kill.
    decision = engine.evaluate({"x": 2, "s": "b"})
    assert [v.message for v in decision.violations] == ["x above 1"]
    assert engine.evaluate({"x": 0, "s": "b"}).allow is True
    assert engine.worker_pid != first
    assert engine.query("data.t.deny", {"x": 5, "s": "b"}) == ["x above 1"]


def test_query_is_bounded_too(write_bundle):
    engine = _engine(write_bundle, REGEX_BOMB, TIME)
    with pytest.raises(EvaluationLimitError, match="2 s time limit"):
        engine.query('regex.match("^(a+)+$", input.s)', CATASTROPHIC)
    assert engine.query("data.t.deny", {"x": 0, "s": "b"}) == []


def test_a_worker_that_dies_by_a_signal_is_a_typed_error():
    # rego-cpp overflows its stack (SIGSEGV) walking a deep enough input; the canonical encoder
    # refuses such an input first, so it is sent to the worker as raw JSON.
    src = "package p\nimport rego.v1\nx := count(walk(input))\ny := 1\n"
    limits = EvaluationLimits(timeout_s=20.0, memory_bytes=512 * MiB)
    with PolicyWorker({"p.rego": src}, {}, ["p/x", "p/y"], limits=limits, what="test") as w:
        assert w.entrypoint("p/x", "[[]]") == 2
        depth = 60_000
        # With an unlimited stack it is the memory or time bound that ends it instead.
        with pytest.raises((EvaluationCrashError, EvaluationLimitError)) as info:
            w.entrypoint("p/x", "[" * depth + "]" * depth)
        assert info.value.exit_code == 2
        assert info.value.message.startswith("could not decide: ")
        if isinstance(info.value, EvaluationCrashError):
            assert "SIGSEGV" in info.value.message
        assert w.entrypoint("p/x", "[[]]") == 2  # respawned


def test_a_worker_killed_mid_evaluation_is_a_typed_error(write_bundle):
    engine = _engine(write_bundle, REGEX_BOMB, EvaluationLimits(timeout_s=60.0))
    pid = engine.worker_pid
    errors: list[BaseException] = []

    def evaluate() -> None:
        try:
            engine.evaluate(CATASTROPHIC)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=evaluate)
    thread.start()
    # Wait until the worker is running the policy (state R), then crash it.
    deadline = time.monotonic() + 20
    while Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "R":
        assert time.monotonic() < deadline, "the worker never started evaluating"
        time.sleep(0.01)
    os.kill(pid, signal.SIGSEGV)
    thread.join(20)
    assert not thread.is_alive()
    (err,) = errors
    assert isinstance(err, EvaluationCrashError), err
    assert "SIGSEGV" in err.message and err.exit_code == 2
    assert engine.evaluate({"x": 0, "s": "b"}).allow is True


def test_a_worker_that_died_while_idle_is_replaced(write_bundle):
    engine = _engine(write_bundle, REGEX_BOMB, TIME)
    os.kill(engine.worker_pid, signal.SIGKILL)
    os.waitid(os.P_PID, engine.worker_pid, os.WEXITED | os.WNOWAIT)
    assert engine.evaluate({"x": 2, "s": "b"}).allow is False


@pytest.mark.parametrize(
    "bad",
    [
        {"timeout_s": 0},
        {"timeout_s": -1},
        {"timeout_s": float("nan")},
        {"timeout_s": float("inf")},
        {"timeout_s": True},
        {"memory_bytes": 1024},
        {"memory_bytes": 2.5e9},
        {"startup_timeout_s": 0},
    ],
)
def test_limits_that_bound_nothing_are_refused(bad):
    with pytest.raises(ConfigError):
        EvaluationLimits(**bad)


# --- the CLI gates: exit 2 with the message ---------------------------------------------------


@pytest.fixture
def quick_limits(monkeypatch):
    """The CLI uses the default limits (10 s, 2 GiB); shrink them so the test stays fast."""
    monkeypatch.setattr(worker_mod, "DEFAULT_LIMITS", TIME)


@pytest.mark.parametrize(
    ("src", "input_doc", "message"),
    [
        (RANGE_BOMB, {"x": 0}, "could not decide: policy evaluation exceeded the "),
        (REGEX_BOMB, CATASTROPHIC, "could not decide: policy evaluation exceeded the 2 s time"),
    ],
    ids=["numbers-range-bomb", "catastrophic-regex"],
)
def test_policy_eval_of_a_bomb_exits_2(
    write_bundle, tmp_path, capsys, quick_limits, src, input_doc, message
):
    source = write_bundle({"p.rego": src})
    doc = tmp_path / "in.json"
    doc.write_text(json.dumps(input_doc))
    assert main(["policy", "check", str(source)]) == 0  # it compiles; only evaluation blows up
    capsys.readouterr()
    code = main(["policy", "eval", str(source), "--input", str(doc)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    lines = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert lines[0].startswith("error: " + message), err
    assert len(lines) == 2 and lines[1].startswith("hint: ")  # no traceback


# --- policy test and policy check are bounded as well -----------------------------------------


def test_a_test_that_blows_up_is_an_error_not_a_dead_host(monkeypatch):
    files = {
        "p.rego": "package t\nimport rego.v1\nok := true\n",
        "p_test.rego": (
            "package t_test\nimport rego.v1\n"
            'test_bomb if regex.match("^(a+)+$", "' + CATASTROPHIC["s"] + '")\n'
            "test_ok if data.t.ok\n"
        ),
    }
    results = run_tests(files, {}, limits=TIME)
    by_name = {r.name: r for r in results}
    assert by_name["data.t_test.test_bomb"].outcome is Outcome.ERROR
    assert "could not decide: policy evaluation exceeded the 2 s time limit" in (
        by_name["data.t_test.test_bomb"].detail
    )
    assert by_name["data.t_test.test_ok"].outcome is Outcome.PASS  # the worker came back
