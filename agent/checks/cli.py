"""``warden check``: run the checks on local data and print the evidence.

``warden check run`` streams the validation data through performance and fairness, compares
reference and current data for drift, verifies lineage and documentation, and prints one
evidence document (JSON, or a table for people). Progress goes to stderr only when stderr
is a terminal or ``--progress`` is given, so piping the JSON stays clean: a rich progress bar
on a terminal (cleared when done), a plain ``rows read: N so far`` line every
:data:`LOG_INTERVAL_S` seconds otherwise; a run that succeeds always ends it with the one
line ``rows read: N`` (N with thousands separators), whatever the timing.
``warden check schema`` prints the evidence JSON Schema the policy input follows. The table
is drawn by :mod:`agent.checks.evidence_table` (``render_table`` is re-exported here).

``--out`` is checked before any data is read (a directory, or a path under a file, is a
usage error and nothing is written); missing directories are created, and the file is
written atomically (temporary file, then rename).

Start-up stays light: every ``warden`` invocation builds this group's parser, so NumPy,
Arrow, SciPy and the check modules are imported inside the command handlers only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from agent.checks.evidence_table import render_table
from trust.cli._common import check_output_path, write_atomic
from trust.cli.main import add_command, add_group
from trust.cli.options import add_out_option
from trust.errors import UsageError

if TYPE_CHECKING:  # rich is imported only when a progress display is shown
    from rich.progress import Progress, TaskID

__all__ = [
    "register",
    "render_table",
    "check_out_path",
    "write_out",
    "DEFAULT_MIN_GROUP_SIZE",
    "LOG_INTERVAL_S",
]

#: Fairness groups with fewer rows are suppressed (reported by size, kept out of aggregates).
DEFAULT_MIN_GROUP_SIZE = 10

#: Seconds between plain progress lines when stderr is not a terminal (a log, a CI job).
LOG_INTERVAL_S = 10.0


def _add_file(group: argparse._ActionsContainer, flag: str, help: str) -> None:
    """An input file option: ``FILE``, parsed to a :class:`~pathlib.Path`, no default."""
    group.add_argument(flag, type=Path, metavar="FILE", help=help)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``check`` command group to ``warden``."""
    commands = add_group(
        subparsers,
        "check",
        "run validation checks (performance, fairness, drift, lineage, documentation)",
    )
    run = add_command(
        commands,
        "run",
        _cmd_run,
        "run the checks on local data and print the evidence (JSON or a table)",
        "warden check run --data val.parquet --label y --pred y_pred --score p "
        "--sensitive sex,race --reference ref.parquet --manifest manifest.yaml",
    )
    g = run.add_argument_group("validation data")
    _add_file(g, "--data", "validation set (.csv or .parquet)")
    g.add_argument("--label", metavar="COL", help="true label (or target) column")
    g.add_argument("--pred", metavar="COL", help="prediction column (or use --model)")
    g.add_argument(
        "--score",
        metavar="COL[,COL...]",
        help="probability of the positive class; one column per class for multiclass",
    )
    g.add_argument(
        "--task",
        choices=("binary", "multiclass", "regression"),
        default="binary",
        help="kind of model (default: binary)",
    )
    g.add_argument(
        "--pos-label", metavar="VALUE", help="positive class of a two-valued label that is not 0/1"
    )
    g.add_argument(
        "--classes", metavar="A,B,...", help="multiclass labels in the order of the --score columns"
    )
    g.add_argument(
        "--chunk-rows",
        type=int,
        metavar="N",
        # Not read from agent.data: importing it loads NumPy and Arrow for every `warden`
        # start-up. tests/checks/test_cli_startup.py keeps this text equal to the constant.
        help="rows per chunk (default 262144)",
    )
    g.add_argument(
        "--no-auc",
        action="store_true",
        help="skip ROC AUC so memory stays flat (AUC keeps the score column)",
    )
    m = run.add_argument_group("model (instead of --pred)")
    _add_file(m, "--model", "model artefact: .skops, .onnx, or .joblib/.pkl (with --trust-pickle)")
    m.add_argument("--features", metavar="A,B,...", help="feature columns in the model's order")
    m.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow joblib/pickle models: loading them RUNS CODE from the file",
    )
    m.add_argument(
        "--trust-type",
        action="append",
        default=[],
        metavar="TYPE",
        help="accept this type when loading a .skops file (repeatable)",
    )
    f = run.add_argument_group("fairness")
    f.add_argument(
        "--sensitive",
        metavar="A,B,...",
        help="sensitive feature columns (each alone, and their intersection)",
    )
    f.add_argument(
        "--no-intersectional",
        action="store_true",
        help="with several sensitive features, skip their intersection",
    )
    f.add_argument(
        "--min-group-size",
        type=int,
        default=DEFAULT_MIN_GROUP_SIZE,
        metavar="N",
        help="groups smaller than N (default %(default)s) are reported as suppressed, by "
        "size only, and excluded from the aggregates: their rates are not statistically "
        "reliable, and this keeps single-person groups out of the evidence (0 keeps all)",
    )
    f.add_argument(
        "--include-small-groups",
        action="store_true",
        help="keep small groups in the aggregates anyway",
    )
    d = run.add_argument_group("drift")
    _add_file(d, "--reference", "reference data")
    _add_file(
        d, "--profile", "reference profile from 'warden profile build' (instead of --reference)"
    )
    _add_file(d, "--current", "current data (default: --data)")
    d.add_argument("--drift-columns", metavar="A,B,...", help="columns to compare (default: all)")
    d.add_argument(
        "--drift-method",
        action="append",
        default=[],
        metavar="COL=METHOD",
        help="per-column method: ks, chisquare, z, jensenshannon, wasserstein, psi",
    )
    d.add_argument(
        "--drift-share",
        type=float,
        default=0.5,
        metavar="X",
        help="data set drifts when this share of columns drift (default 0.5)",
    )
    lg = run.add_argument_group("lineage and documentation")
    _add_file(lg, "--manifest", "model manifest (YAML)")
    _add_file(
        lg,
        "--training-data",
        "training data file to hash (default: the manifest's training_data.path)",
    )
    _add_file(lg, "--model-card", "model card (.md or .yaml)")
    _add_file(
        lg, "--explainability", "explainability artefact (default: the manifest's explainability)"
    )
    o = run.add_argument_group("output")
    o.add_argument("--format", choices=("json", "table"), default="json")
    add_out_option(o, required=False, help="also write the evidence JSON here")
    o.add_argument("--progress", action="store_true", help="show progress even when not a TTY")
    o.add_argument(
        "--no-data-hash",
        action="store_true",
        help="skip hashing the validation file (data.sha256 becomes null)",
    )

    add_command(
        commands,
        "schema",
        _cmd_schema,
        "print the JSON Schema of the evidence document",
        "warden check schema > evidence.schema.json",
    )


def _split(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _methods(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        col, sep, method = item.partition("=")
        if not sep or not col or not method:
            raise UsageError(f"--drift-method expects COL=METHOD, got {item!r}")
        out[col.strip()] = method.strip()
    return out


class _Progress:
    """Rows read so far, on ``stream``: the ``progress`` callback of ``run_checks``.

    On a terminal a rich progress bar (transient: it is cleared when the run ends); anywhere
    else, where a bar cannot be redrawn, one plain line every :data:`LOG_INTERVAL_S`
    seconds. :meth:`finish` prints the final ``rows read: N`` line, so what stays on
    stderr does not depend on timing; :meth:`abort` prints nothing, leaving the error line
    alone.
    """

    def __init__(self, total: int | None, stream: TextIO, *, terminal: bool) -> None:
        self.stream = stream
        self.done = 0
        self.last_line = time.monotonic()
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        if terminal:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("rows read: {task.completed:,}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                console=Console(file=stream, force_terminal=True),
                transient=True,
            )
            self._task = self._bar.add_task("rows", total=total)
            self._bar.start()

    def __call__(self, rows: int) -> None:
        """Count ``rows`` more rows read."""
        self.done += rows
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.done)
            return
        now = time.monotonic()
        if now - self.last_line >= LOG_INTERVAL_S:
            self.last_line = now
            self._line(f"rows read: {self.done:,} so far")

    def finish(self) -> None:
        """Clear the bar and print the final line: ``rows read: N``."""
        self._stop()
        self._line(f"rows read: {self.done:,}")

    def abort(self) -> None:
        """Clear the bar and print nothing (the run failed; its error is the message)."""
        self._stop()

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def check_out_path(out: Path, *, what: str, make_parents: bool = False) -> None:
    """Refuse an ``--out`` that cannot become a file, before any data is read.

    :func:`trust.cli._common.check_output_path` decides (a directory, or a file in a
    directory that does not exist, is refused); with ``make_parents`` missing directories
    are allowed (:func:`write_out` creates them) as long as the nearest existing one is a
    directory. The error says ``what`` was to be written (``evidence``, ``profile``).
    """
    ancestor = out.parent
    while not ancestor.exists():  # ends: the root directory exists
        ancestor = ancestor.parent
    try:
        if not ancestor.is_dir():
            raise UsageError(f"--out {out}: {ancestor} is not a directory")
        if not (make_parents and ancestor != out.parent):
            check_output_path(out)
    except UsageError as exc:
        raise UsageError(f"cannot write {what}: {exc.message}", hint=exc.hint) from None


def write_out(out: Path, data: bytes, *, make_parents: bool = False) -> None:
    """Write ``data`` to ``out`` atomically, first creating its directories if asked."""
    if make_parents:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out {out}: cannot create {out.parent} ({exc.strerror})") from None
    write_atomic(out, data)


def _cmd_run(args: argparse.Namespace) -> int:
    from agent import data as datamod
    from agent.checks.evidence import CheckSpec, run_checks

    chunk_rows = datamod.DEFAULT_CHUNK_ROWS if args.chunk_rows is None else args.chunk_rows
    if args.current and not (args.reference or args.profile):
        raise UsageError("--current needs --reference FILE or --profile FILE")
    if chunk_rows <= 0:
        raise UsageError(f"--chunk-rows must be positive, got {chunk_rows}")
    if args.min_group_size < 0:
        raise UsageError(f"--min-group-size must be >= 0, got {args.min_group_size}")
    if not 0.0 < args.drift_share <= 1.0:
        raise UsageError(f"--drift-share must be in (0, 1], got {args.drift_share}")
    if args.pred and args.model:
        raise UsageError("give either --pred or --model, not both")
    out = None if args.out is None else Path(args.out)
    if out is not None:
        check_out_path(out, what="evidence", make_parents=True)
    spec = CheckSpec(
        data=args.data,
        label=args.label,
        pred=args.pred,
        score=_split(args.score),
        sensitive=_split(args.sensitive),
        task=args.task,
        pos_label=args.pos_label,
        classes=_split(args.classes) or None,
        model=args.model,
        features=_split(args.features) or None,
        trust_pickle=args.trust_pickle,
        trusted_types=tuple(args.trust_type),
        intersectional=not args.no_intersectional,
        min_group_size=args.min_group_size,
        include_small_groups=args.include_small_groups,
        reference=args.reference,
        current=args.current,
        profile=args.profile,
        drift_columns=_split(args.drift_columns) or None,
        drift_methods=_methods(args.drift_method),
        drift_share=args.drift_share,
        manifest=args.manifest,
        training_data=args.training_data,
        model_card=args.model_card,
        explainability=args.explainability,
        chunk_rows=chunk_rows,
        keep_scores=not args.no_auc,
        hash_data=not args.no_data_hash,
    )
    bar = None
    terminal = sys.stderr.isatty()
    if args.data is not None and (args.progress or terminal):
        total = datamod.row_count(args.data) if args.data.is_file() else None
        bar = _Progress(total, sys.stderr, terminal=terminal)
    try:
        evidence = run_checks(spec, progress=bar)
    except BaseException:
        if bar is not None:
            bar.abort()
        raise
    if bar is not None:
        bar.finish()
    text = json.dumps(evidence, indent=2, sort_keys=False)
    if out is not None:
        write_out(out, (text + "\n").encode("utf-8"), make_parents=True)
    if args.format == "table":
        sys.stdout.write(render_table(evidence))
    else:
        sys.stdout.write(text + "\n")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from agent.checks.evidence import evidence_schema

    sys.stdout.write(json.dumps(evidence_schema(), indent=2) + "\n")
    return 0
