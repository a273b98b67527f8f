"""``warden profile``: build and inspect reference profiles for drift checks.

A profile replaces the raw reference data at a node (see :mod:`agent.checks.profile` for
what it keeps and where it is exact). Building reads the file once in chunks, so a reference
far larger than memory can be profiled.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.checks.cli import check_out_path
from trust.cli._common import write_atomic
from trust.cli.main import add_command, add_group
from trust.cli.options import add_out_option
from trust.errors import UsageError

if TYPE_CHECKING:  # the CLI imports SciPy-heavy modules only when a command runs
    from agent.checks.profile import ReferenceProfile

__all__ = ["register"]


def _split(value: str | None) -> list[str]:
    return [] if not value else [v.strip() for v in value.split(",") if v.strip()]


def _build(args: argparse.Namespace) -> int:
    from agent.checks.profile import ReferenceProfile
    from agent.checks.profile_format import profile_to_bytes
    from agent.data import iter_chunks, schema_of

    columns = _split(args.columns) or None
    categorical = _split(args.categorical)
    numerical = _split(args.numerical)
    both = sorted(set(categorical) & set(numerical))
    if both:
        raise UsageError(f"column(s) {', '.join(both)} declared both --categorical and --numerical")
    schema = schema_of(args.reference)
    for name in [*categorical, *numerical]:
        if name not in schema:
            raise UsageError(
                f"{args.reference}: column {name!r} (from --categorical/--numerical) does not "
                f"exist; columns are {', '.join(schema)}"
            )
        if columns is not None and name not in columns:
            raise UsageError(f"column {name!r} is declared but not in --columns")
    types = {**{c: "cat" for c in categorical}, **{c: "num" for c in numerical}}
    if args.chunk_rows <= 0:
        raise UsageError(f"--chunk-rows must be positive, got {args.chunk_rows}")
    out = Path(args.out)
    check_out_path(out, what="profile")  # before the (possibly long) streaming pass
    profile = ReferenceProfile.build(
        iter_chunks(args.reference, columns, chunk_rows=args.chunk_rows), column_types=types
    )
    write_atomic(out, profile_to_bytes(profile))
    approx = [c.name for c in profile.columns if not c.exact]
    rows = max(c.n + c.dropped for c in profile.columns)
    print(
        f"wrote {out}: {len(profile.columns)} columns, {rows} rows; "
        + (f"approximate (sketched): {', '.join(approx)}" if approx else "exact for every method")
    )
    return 0


def _summary(profile: ReferenceProfile) -> list[dict[str, Any]]:
    rows = []
    for c in profile.columns:
        if c.counts is not None:
            kept = f"counts of {len(c.counts)} values"
        else:
            assert c.sketch_values is not None
            kept = f"sketch of {len(c.sketch_values)} points"
        rows.append(
            {
                "column": c.name,
                "dtype": c.dtype,
                "declared_type": c.column_type,
                "n": c.n,
                "dropped": c.dropped,
                "kept": kept,
                "exact": c.exact,
                "cdf_error_bound": c.error_bound,
                "min": c.minimum,
                "max": c.maximum,
            }
        )
    return rows


def _show(args: argparse.Namespace) -> int:
    from agent.checks.files import load_profile

    profile = load_profile(args.profile)
    rows = _summary(profile)
    if args.format == "json":
        json.dump({"profile": str(args.profile), "columns": rows}, sys.stdout, indent=2)
        print()
        return 0
    headers = [
        "column",
        "dtype",
        "declared_type",
        "n",
        "dropped",
        "kept",
        "exact",
        "cdf_error_bound",
    ]
    table = [[_cell(r[h]) for h in headers] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)))
    return 0


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "0" if v == 0 else f"{v:.2g}"
    return str(v)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``warden profile build`` and ``warden profile show``."""
    commands = add_group(
        subparsers,
        "profile",
        "build and inspect reference profiles for drift checks",
        "A reference profile holds what the drift check needs from reference data (counts,\n"
        "a quantile sketch, min/max/mean/std), so a node need not keep the raw reference.",
    )
    build = add_command(
        commands,
        "build",
        _build,
        "profile a reference CSV/Parquet file in one streaming pass",
        "warden profile build ref.parquet --out ref.profile --categorical region,product",
    )
    build.add_argument("reference", help="reference data (.csv, .csv.gz, .parquet)")
    add_out_option(build, help="where to write the profile (JSON)")
    build.add_argument("--columns", help="comma-separated columns to profile (default: all)")
    build.add_argument(
        "--categorical", help="comma-separated columns to treat as categorical, whatever dtype"
    )
    build.add_argument("--numerical", help="comma-separated columns to treat as numerical")
    build.add_argument(
        "--chunk-rows", type=int, default=262_144, help="rows read per chunk (default 262144)"
    )
    show = add_command(
        commands,
        "show",
        _show,
        "describe a reference profile: per column what it keeps and whether it is exact",
        "warden profile show ref.profile",
    )
    show.add_argument("profile", help="a file written by 'warden profile build'")
    show.add_argument("--format", choices=["table", "json"], default="table")
