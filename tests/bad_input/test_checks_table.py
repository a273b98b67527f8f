"""Bad input to ``warden check run`` and ``warden profile build`` (issue 8, items 16-18, 21).

One table: each row is a command a user could type with a file that is wrong in one way, and
the one clear ``error:`` line (and hint) that must come back instead of a traceback or a
silently wrong result. ``{name}`` in an argument is the path of fixture file ``name``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.bad_input._table import Case, assert_refused, run_warden

RUN = ("check", "run", "--label", "y", "--pred", "p")

CASES = [
    # item 17: bytes that are not UTF-8, nested columns
    Case(
        "csv-latin1-sensitive-value",
        (*RUN, "--data", "{latin1.csv}", "--sensitive", "sex"),
        r"latin1\.csv: column 'sex', data row 3: value b'Fran\\xe7oise' is not valid UTF-8",
    ),
    Case(
        "csv-latin1-header",
        (*RUN, "--data", "{latin1_header.csv}"),
        r"latin1_header\.csv: the header line is not valid UTF-8 \(byte 0xe9 at offset 5\)",
    ),
    Case(
        "parquet-list-as-sensitive",
        (*RUN, "--data", "{nested.parquet}", "--sensitive", "tags"),
        r"nested\.parquet: column 'tags' has type list<element: int64>; .* must be scalar",
    ),
    Case(
        "parquet-struct-as-sensitive",
        (*RUN, "--data", "{nested.parquet}", "--sensitive", "point"),
        r"nested\.parquet: column 'point' has type struct<x: int64>; .* must be scalar",
    ),
    Case(
        "parquet-list-as-drift-column",
        (
            *RUN,
            "--data",
            "{nested.parquet}",
            "--reference",
            "{nested.parquet}",
            "--drift-columns",
            "y,tags",
        ),
        r"nested\.parquet: column 'tags' has type list<element: int64>; .*drift columns must",
    ),
    Case(
        "parquet-list-in-default-drift-columns",
        (*RUN, "--data", "{nested.parquet}", "--reference", "{nested.parquet}"),
        r"column 'tags' has type list.*\nhint: .*--drift-columns",
    ),
    Case(
        "profile-build-of-a-list-column",
        ("profile", "build", "{nested.parquet}", "--out", "{out}/ref.profile"),
        r"column 'tags' has type list.*\nhint: .*--columns",
    ),
    # item 18: a header that names a column twice
    Case(
        "csv-duplicate-column",
        (*RUN, "--data", "{dup.csv}"),
        r"dup\.csv: column 'y' appears 2 times in the header \(columns 1, 3\)",
    ),
    Case(
        "parquet-duplicate-column",
        (*RUN, "--data", "{dup.parquet}"),
        r"dup\.parquet: column 'y' appears 2 times",
    ),
    Case(
        "csv-duplicate-unused-column",
        ("profile", "build", "{dup.csv}", "--columns", "p", "--out", "{out}/ref.profile"),
        r"dup\.csv: column 'y' appears 2 times",
    ),
    # item 21: the hint fits the label
    Case(
        "three-valued-label",
        (*RUN, "--data", "{three.csv}"),
        r"column 'y' must be binary \(0/1\), found value 2\n"
        r"hint: the column has 3 values .*: use --task multiclass",
    ),
    Case(
        "two-valued-text-label",
        (*RUN, "--data", "{good_bad.csv}"),
        r"found value 'good'\nhint: pass --pos-label",
    ),
    # item 16: --out that is not a file name
    Case(
        "check-run-out-is-a-directory",
        (*RUN, "--data", "{ok.csv}", "--out", "{out}"),
        r"cannot write evidence: --out .*out: is a directory",
    ),
    Case(
        "check-run-out-under-a-file",
        (*RUN, "--data", "{ok.csv}", "--out", "{ok.csv}/evidence.json"),
        r"cannot write evidence: --out .*ok\.csv/evidence\.json: .*ok\.csv is not a directory",
    ),
    Case(
        "profile-build-out-is-a-directory",
        ("profile", "build", "{ok.csv}", "--out", "{out}"),
        r"cannot write profile: --out .*out: is a directory",
    ),
    Case(
        "profile-build-out-under-a-file",
        ("profile", "build", "{ok.csv}", "--out", "{ok.csv}/ref.profile"),
        r"cannot write profile: --out .*ok\.csv/ref\.profile: .*ok\.csv is not a directory",
    ),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bad files of the table, plus a good one and an empty output directory."""
    d = tmp_path_factory.mktemp("checks_bad_input")
    (d / "latin1.csv").write_bytes(b"y,p,sex\n1,1,F\n0,1,M\n1,0,Fran\xe7oise\n0,0,M\n")
    (d / "latin1_header.csv").write_bytes(b"y,p,g\xe9nero\n1,1,F\n0,0,M\n")
    (d / "dup.csv").write_text("y,p,y\n1,1,0\n0,1,1\n1,0,1\n0,0,0\n")
    pq.write_table(
        pa.table([pa.array([1, 0]), pa.array([1, 0]), pa.array([0, 1])], names=["y", "p", "y"]),
        d / "dup.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "y": [1, 0, 1, 0],
                "p": [1, 1, 0, 0],
                "tags": pa.array([[1, 2], [3], [], None]),
                "point": pa.array([{"x": 1}, {"x": 2}, {"x": 1}, None]),
            }
        ),
        d / "nested.parquet",
    )
    (d / "three.csv").write_text("y,p\n0,0\n1,1\n2,1\n1,0\n")
    (d / "good_bad.csv").write_text("y,p\ngood,good\nbad,bad\ngood,bad\n")
    (d / "ok.csv").write_text("y,p\n1,1\n0,1\n1,0\n0,0\n")
    (d / "out").mkdir()
    files = {p.name: p for p in d.iterdir() if p.is_file()}
    return {**files, "out": d / "out"}


def _argv(case: Case, inputs: dict[str, Path]) -> list[str]:
    out = []
    for arg in case.argv:
        for name, path in inputs.items():
            arg = arg.replace("{" + name + "}", str(path))
        out.append(arg)
    return out


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_checks_input_is_refused_clearly(
    case: Case, inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(p.name for p in inputs["out"].parent.rglob("*"))
    code, out, err = run_warden(_argv(case, inputs), capsys)
    assert_refused(case, code, err)
    assert out == ""  # no evidence, no "wrote ..." line
    # Nothing written: no output file, no temporary file, no directory left behind.
    assert sorted(p.name for p in inputs["out"].parent.rglob("*")) == before
