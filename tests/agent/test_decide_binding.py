"""`warden agent decide` binds the evidence to the model version it decides on (issue 8).

Item 2: evidence whose lineage says ``credit-risk`` 1.4.0 must not promote ``other-model``
version 9, whatever approvals come with it; evidence naming no model is used only when the
user says so (``--allow-unnamed-evidence``). Item 16: ``--input-out`` naming a directory is a
clear error and nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.policy_input import ModelInfo, bind_evidence, build_policy_input
from tests.agent import _world
from trust.cli.main import main
from trust.errors import UsageError

NAME, VERSION = "credit-risk", "1.4.0"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("binding")
    release = _world.write_release(d, name=NAME, version=VERSION)
    data = _world.write_validation_csv(d / "val.csv")
    named = _world.check_argv(data, release, d / "ev.json")
    assert main(named) == 0
    unnamed = _world.check_argv(data, release, d / "unnamed.json")
    i = unnamed.index("--manifest")
    del unnamed[i : i + 2]  # no manifest: the evidence has no lineage, names no model
    assert main(unnamed) == 0
    return {
        "dir": d,
        "evidence": d / "ev.json",
        "unnamed": d / "unnamed.json",
        "root": _world.write_root(d / "root.json"),
        "bundle": _world.write_standard_bundle(d / "standard.bundle"),
        # The attacker's approvals are genuine — for the model they name.
        "risk_other": _world.write_approval(
            d / "risk-other.approval", _world.RISK, "risk_officer", "other-model:9"
        ),
        "compliance_other": _world.write_approval(
            d / "compliance-other.approval", _world.COMPLIANCE, "compliance", "other-model:9"
        ),
    }


def _run(
    world: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    *,
    evidence: str = "evidence",
    model: str = NAME,
    version: str = VERSION,
    stage: str = "staging",
    approvals: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
) -> tuple[int, str, str]:
    capsys.readouterr()
    argv = _world.decide_argv(
        world[evidence],
        root=world["root"],
        bundle=world["bundle"],
        model=model,
        version=version,
        stage=stage,
        approvals=tuple(world[a] for a in approvals),
        extra=extra,
    )
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_evidence_of_another_model_cannot_promote_it(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        world,
        capsys,
        model="other-model",
        version="9",
        stage="production",
        approvals=("risk_other", "compliance_other"),
    )
    # Before the fix: exit 0, ALLOW other-model v9 → production.
    assert code == 2 and out == ""
    assert err.startswith("error: ") and len(err.strip().splitlines()) <= 2
    assert str(world["evidence"]) in err
    assert "'credit-risk' version '1.4.0'" in err and "'other-model' version '9'" in err


def test_evidence_of_another_version_is_refused_naming_both(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(world, capsys, version="9")
    assert code == 2 and out == ""
    assert "'1.4.0'" in err and "'9'" in err


def test_allow_unnamed_does_not_excuse_a_mismatch(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(world, capsys, version="9", extra=("--allow-unnamed-evidence",))
    assert code == 2 and out == "" and "'9'" in err


def test_artifact_digest_other_than_the_evidence_is_refused(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(world, capsys, extra=("--artifact-sha256", "ab" * 32))
    assert code == 2 and out == "" and "ab" * 32 in err


def test_matching_evidence_still_decides(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(world, capsys)
    assert (code, err) == (0, ""), err
    assert json.loads(out)["allow"] is True


def test_unnamed_evidence_is_refused_unless_allowed(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(world, capsys, evidence="unnamed")
    assert code == 2 and out == ""
    assert "names no model" in err and "--allow-unnamed-evidence" in err
    # Said explicitly, the gate decides (and the standard bundle then judges the lineage).
    code, out, err = _run(world, capsys, evidence="unnamed", extra=("--allow-unnamed-evidence",))
    decision: dict[str, Any] = json.loads(out)
    assert code == 1 and decision["allow"] is False
    assert any(v["rule"].startswith("lineage.") for v in decision["violations"])


def test_evidence_naming_a_model_but_no_version_is_unnamed(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = json.loads(world["evidence"].read_text())
    doc["lineage"]["model_version"] = None
    path = tmp_path / "no-version.json"
    path.write_text(json.dumps(doc))
    world = {**world, "noversion": path}
    code, out, err = _run(world, capsys, evidence="noversion")
    assert code == 2 and out == "" and "names no model version" in err
    code, out, _ = _run(world, capsys, evidence="noversion", extra=("--allow-unnamed-evidence",))
    assert code in (0, 1) and "allow" in json.loads(out)


def test_bind_evidence_is_applied_by_build_policy_input() -> None:
    from datetime import UTC, datetime

    evidence = {"lineage": {"model_name": NAME, "model_version": VERSION}}
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(UsageError):
        build_policy_input(evidence, ModelInfo("other-model", "9", "production"), now=now)
    with pytest.raises(UsageError):
        build_policy_input({"lineage": None}, ModelInfo(NAME, VERSION, "staging"), now=now)
    bind_evidence(evidence, ModelInfo(NAME, VERSION, "staging"))  # matching: no error
    doc = build_policy_input(evidence, ModelInfo(NAME, VERSION, "staging"), now=now)
    assert doc["model"]["name"] == NAME


def test_help_documents_allow_unnamed_evidence(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["agent", "decide", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--allow-unnamed-evidence" in text and "names no model" in text


# ------------------------------------------------------------------------- item 16


@pytest.mark.parametrize("target", [".", "DIR"])
def test_input_out_directory_is_refused_and_nothing_is_written(
    world: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    path = str(tmp_path) if target == "DIR" else target
    code, out, err = _run(world, capsys, extra=("--input-out", path))
    assert code == 2 and out == "", err
    assert err.startswith("error: ") and "--input-out" in err and "is a directory" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
