"""Bad input to `warden agent decide` and to drift's reference data (issue 8, items 16, 21).

One table: each row is a command a user could type; it must end in exit 2 with one
``error:`` line naming what is wrong — no traceback, nothing written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent import _world
from tests.bad_input._table import Case, assert_refused, run_warden
from trust.cli.main import main

_DECIDE = (
    "agent", "decide", "--evidence", "{evidence}", "--bundle", "{bundle}", "--root", "{root}",
    "--model", "credit-risk", "--version", "1.4.0", "--stage", "staging",
    "--now", _world.NOW_TEXT,
)  # fmt: skip

CASES = [
    Case("decide-input-out-dot", (*_DECIDE, "--input-out", "."),
         r"--input-out \.: is a directory"),
    Case("decide-input-out-dir", (*_DECIDE, "--input-out", "{dir}"),
         r"--input-out .*: is a directory"),
    Case(
        "drift-reference-missing-a-current-column",
        ("check", "run", "--current", "{cur}", "--reference", "{ref}", "--out", "{dir}/ev.json"),
        r"ref\.csv: the reference data has no column 'c', which the current data .*cur\.csv has",
    ),
    Case(
        "drift-reference-missing-a-drift-column",
        ("check", "run", "--current", "{cur}", "--reference", "{ref}", "--drift-columns", "a,c",
         "--out", "{dir}/ev.json"),
        r"ref\.csv: no column 'c'",
    ),
]  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("bad-agent")
    release = _world.write_release(d, name="credit-risk", version="1.4.0")
    data = _world.write_validation_csv(d / "val.csv", rows=400)
    assert main(_world.check_argv(data, release, d / "ev.json")) == 0
    (d / "cur.csv").write_text("a,b,c\n" + "".join(f"{i % 3},{i % 5},{i % 7}\n" for i in range(60)))
    (d / "ref.csv").write_text("a,b\n" + "".join(f"{i % 3},{i % 4}\n" for i in range(60)))
    out = d / "out"
    out.mkdir()
    return {
        "evidence": str(d / "ev.json"),
        "bundle": str(_world.write_standard_bundle(d / "standard.bundle")),
        "root": str(_world.write_root(d / "root.json")),
        "cur": str(d / "cur.csv"),
        "ref": str(d / "ref.csv"),
        "dir": str(out),
    }


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_input_is_refused(
    case: Case,
    files: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    out_dir = Path(files["dir"])
    before = sorted(out_dir.iterdir()), sorted(tmp_path.iterdir())
    code, _, err = run_warden([a.format(**files) for a in case.argv], capsys)
    assert_refused(case, code, err)
    assert (sorted(out_dir.iterdir()), sorted(tmp_path.iterdir())) == before  # nothing written
