"""``warden agent validate`` through the real ``warden`` console script: exit 0 when the
version is allowed, 1 when denied, 2 when it cannot be decided — one ``error:`` line, no
traceback — and the policy input it writes replays to the same decision."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from agent.validation import STAGE_RULE
from tests.agent import _world
from tests.agent.test_validation import NAME, World, predictions_csv, publish
from tests.agent.test_validation import world as world  # noqa: F401 - the shared fixture


def run(warden_bin: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([warden_bin, "agent", "validate", *argv], capture_output=True,
                          text=True, timeout=120)


def flags(world: World, model_dir: Path, *extra: str, data: Path | None = None) -> list[str]:
    return ["--model-dir", str(model_dir), "--bundle", str(world.bundle_file),
            "--root", str(world.root), "--data", str(data or world.data), "--label", "repaid",
            "--sensitive", "sex", "--now", _world.NOW_TEXT, *extra]


def assert_refused(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    assert fragment in proc.stderr, proc.stderr


def test_allowed_version_exits_0_and_its_input_replays(
    tmp_path: Path, world: World, warden_bin: str
) -> None:
    d = publish(world, tmp_path / "models", "1")
    saved = tmp_path / "input.json"
    proc = run(warden_bin, *flags(world, d, "--format", "json", "--input-out", str(saved)))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["allow"] is True and out["violations"] == []
    assert out["model"]["name"] == NAME and out["model"]["stage"] == "staging"
    assert out["bundle"]["digest"] == world.bundle.digest
    # The file is the exact input evaluated: its SHA-256 is the decision's input digest ...
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == out["input_sha256"]
    # ... and an auditor holding it and the bundle gets the same decision.
    replay = subprocess.run([warden_bin, "policy", "eval", str(world.bundle_file), "--root",
                             str(world.root), "--input", str(saved)],
                            capture_output=True, text=True, timeout=120)
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout)["input_sha256"] == out["input_sha256"]


def test_denied_version_exits_1_naming_the_violations(
    tmp_path: Path, world: World, warden_bin: str
) -> None:
    d = publish(world, tmp_path / "models", "p",
                artefact=("predictions.csv", predictions_csv(world)))
    proc = run(warden_bin, *flags(world, d))
    assert proc.returncode == 1, proc.stderr
    first, *rest = proc.stdout.splitlines()
    assert first.startswith(f"DENY  {NAME} vp → staging  (policy standard v")
    text = "\n".join(rest)
    assert f"bundle digest  {world.bundle.digest}" in text
    assert "input sha256   " in text
    assert "performance.min_roc_auc" in text  # predictions carry no scores


@pytest.mark.parametrize("case", ["data without the label column", "missing manifest",
                                  "no READY marker", "both ways of naming the version"])
def test_undecidable_version_exits_2_with_one_error_line(
    tmp_path: Path, world: World, warden_bin: str, case: str
) -> None:
    models = tmp_path / "models"
    if case == "data without the label column":
        d = publish(world, models, "1", artefact=("predictions.csv", predictions_csv(world)))
        assert_refused(run(warden_bin, *flags(world, d, data=world.nolabel)), "'repaid'")
    elif case == "missing manifest":
        d = publish(world, models, "1", write_manifest=False)
        assert_refused(run(warden_bin, *flags(world, d)), "no such manifest file")
    elif case == "no READY marker":
        d = publish(world, models, "1", ready=False)
        assert_refused(run(warden_bin, *flags(world, d)), "READY")
    else:
        d = publish(world, models, "1")
        assert_refused(run(warden_bin, *flags(world, d, "--config", str(tmp_path / "a.yaml"))),
                       "either --model-dir or --config")


def test_config_form_takes_the_nodes_settings_and_stages(
    tmp_path: Path, world: World, warden_bin: str
) -> None:
    models = tmp_path / "models"
    publish(world, models, "p", stage="production",
            artefact=("predictions.csv", predictions_csv(world)))
    config = tmp_path / "agent.yaml"
    config.write_text(
        "node_id: emea-1\nhub: 127.0.0.1:7443\ninsecure: true\nregistry: models\n"
        f"models:\n  - {{name: {NAME}, data: {world.data}, label: repaid, sensitive: [sex], "
        "stages: [staging]}\n"
    )
    proc = run(warden_bin, "--config", str(config), "--model", NAME, "--version", "p",
               "--bundle", str(world.bundle_file), "--root", str(world.root),
               "--now", _world.NOW_TEXT, "--format", "json")
    # This node may not promote to production: a denial, as the daemon's block record.
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["allow"] is False
    assert [v["rule"] for v in out["violations"]] == [STAGE_RULE]
    # Model settings come from the node's config; a flag beside it is refused.
    proc = run(warden_bin, "--config", str(config), "--model", NAME, "--version", "p",
               "--label", "repaid")
    assert_refused(proc, "--label")
