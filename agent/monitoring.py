"""Production monitoring: inference batches → time windows → drift (and performance) results.

A :class:`Monitor` watches one model in production at the node. Publishers drop inference
batches (``.parquet``/``.pq``/``.csv``/``.csv.gz``/``.csv.bz2``) into ``MonitorConfig.inputs``
— written elsewhere, then renamed in: names starting with ``.`` or ending in ``.tmp`` or
``.partial`` are not looked at — and, optionally, ground-truth label files into
``MonitorConfig.labels``. :meth:`Monitor.poll` turns them into :class:`WindowResult` objects;
the daemon records each one and then calls :meth:`Monitor.commit`.

What happens to a batch (once per file; identity = name, size, mtime_ns, SHA-256 of the bytes
read, the bytes parsed being exactly the bytes hashed):

* its rows are split into windows ``[start, end)`` of ``window_s`` seconds aligned to the Unix
  epoch (UTC), by ``time_column`` (ISO-8601 text — an offset or ``Z``, or none, read as UTC —
  or a Parquet timestamp/date; numbers are refused: seconds or milliseconds?). Windows exist
  only where rows are: an hour without traffic gives no result;
* the columns drift compares (``columns``, default the profile's), and the id and
  prediction (``ModelConfig.pred``) columns when labels are configured, are **spooled** as
  one Parquet part per batch and window under ``state_dir/monitoring/<model>/spool/`` (the
  node's own disk: a restart needs no input file again; nothing row-level leaves the node);
* a column the profile does not know is not compared and becomes a note of the window's
  results; a batch lacking a needed column, or holding text where the profile has numbers,
  is **refused**: an ``input`` result names the file and the column, and every window it had
  rows in gets *error* results — its data is incomplete, so no "no drift" verdict is given;
* a batch that cannot be placed in a window (unreadable, garbled, no or unparsable time
  column — the error names file, column and a data row) gets an ``input`` result only; so
  does a batch with the same bytes as one already ingested (not counted twice), a batch
  rewritten under a name already ingested (the new content is not ingested) and a file
  with an unknown suffix. Rows whose window was already evaluated arrive *late*: they are
  dropped and named in an ``input`` result; rows for a window never seen before make a
  new window, evaluated at once if it is already closed (a backlog at start-up).

A window is **closed** when ``now ≥ end + grace_s``; from then on no row is added, so the
window's numbers never change. At close it gets one ``drift`` result: against the reference
profile (:mod:`agent.checks.profile`; evidently 0.7 ``DataDriftPreset`` rules), aggregates
only; ``too_small`` without a verdict below ``min_rows`` rows. With ``labels`` configured it
also gets one ``performance`` result (binary classification of ``ModelConfig.pred`` against
``ModelConfig.label``, ``pos_label`` as in validation): at close when every row's id already
has a label (both results in one poll), else once every row is labelled, or at the latest
``labels_wait_s`` after close — on the labelled rows (``labels_status`` ``"partial"``), or
``labels_missing`` when none arrived. Labels join by ``id_column`` compared as text (whole
numbers and text ids match: ``7`` = ``"7"``); a labels file that names an id twice is refused
whole (an ``input`` result naming the file and the id: which label is true?), and the
windows keep waiting for a corrected file. Labels are kept ``labels_wait_s`` for rows that
arrive after them; an id labelled again by a later file keeps its first label (counted in a
note); rows without an id are never labelled (a note).

Exactly once, across restarts: a window's verdict is fixed when it is first evaluated (its
rows at close, its labels when performance is evaluated), and that is saved before the
result is returned. :meth:`Monitor.commit` — called after the record is in the outbox —
marks the result done (state file replaced atomically); a result not committed is returned
again by every later poll (after a restart: evaluated again from the spool, with the same
numbers and digest). A window's spool is removed once all its results are committed. The
state file (:mod:`agent.monitor_state`) unreadable or damaged is
:class:`~trust.errors.StorageUnavailableError`, never "nothing evaluated".

Layout under ``state_dir/monitoring/<model>/``: ``state.json`` (files seen, open and
pending windows, finished intervals, pending input results, the committed history that
:meth:`Monitor.production_status` reads); ``spool/w<start_us>_<end_us>/`` (one
``<batch sha256>.parquet`` per batch, ``labels-*.parquet`` with the window's labels);
``pool/<labels sha256>.parquet`` (labels files as (id, 0/1 label), kept ``labels_wait_s``).
Spool files are written whole (temporary file, fsync, rename) before the state names them;
what the state does not name is removed at start-up.

A changed ``window_s`` keeps the windows that exist; new rows fill the new grid around them
(a new window is the grid window minus what existing and finished windows cover), so no two
windows ever overlap and no time span is evaluated twice.

Light: importing this module, and a poll with nothing new and nothing due, import no NumPy,
pyarrow or SciPy (the idle daemon polls); they load with the first batch.
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agent.formats import data_format
from agent.monitor_state import (
    FileState,
    HistoryEntry,
    MonitorState,
    Part,
    PoolEntry,
    WindowState,
    add_interval,
    free_pieces,
    from_us,
    load_state,
    save_state,
    to_us,
)
from trust._internal.files import replace_file
from trust._internal.frozen import freeze, thaw
from trust.canonical import canonical_json, sha256_hex
from trust.config_file import check_section, coerce_value, resolve_path
from trust.errors import (
    ConfigError,
    DataError,
    FormatError,
    NotFoundError,
    StorageFullError,
    StorageUnavailableError,
    UsageError,
    WardenError,
)
from trust.timeutil import format_time, parse_time

if TYPE_CHECKING:  # heavy, or importing agent.config (which imports this module): types only
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

    from agent.checks.profile import ReferenceProfile
    from agent.config import ModelConfig
    from agent.policy_input import ProductionStatus

__all__ = [
    "MONITORING_SCHEMA",
    "MonitorConfig",
    "Monitor",
    "ResultKind",
    "ResultStatus",
    "WindowResult",
    "parse_monitoring",
]

MONITORING_SCHEMA = "warden.monitoring/v1"
ResultKind = Literal["drift", "performance", "input"]
ResultStatus = Literal["evaluated", "too_small", "labels_missing", "error"]
LabelsStatus = Literal["complete", "partial", "missing"]

#: Committed results kept for production status (older ones are dropped).
HISTORY_S = 90 * 86_400
HISTORY_MAX = 20_000
_IGNORED_SUFFIXES = (".tmp", ".partial")
_MAX_ERROR = 2000  # characters of one result's error text


# -- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitorConfig:
    """How one model is monitored in production (the ``monitoring`` section of a model).

    Invariants (checked when built): ``window_s`` is a whole number of seconds ≥ 1; the other
    durations are finite and ≥ 0; ``min_rows`` ≥ 1; ``0 < drift_share ≤ 1``; the time and id
    columns differ and are not drift columns; ``columns`` holds no duplicate; ``labels`` is
    not the ``inputs`` directory.
    """

    inputs: Path
    profile: Path
    window_s: float = 3600.0
    grace_s: float = 60.0
    time_column: str = "timestamp"
    id_column: str = "id"
    labels: Path | None = None
    labels_wait_s: float = 86_400.0
    min_rows: int = 100
    columns: tuple[str, ...] | None = None
    drift_share: float = 0.5

    def __post_init__(self) -> None:
        where = "monitoring"
        if not math.isfinite(self.window_s) or self.window_s < 1 or self.window_s % 1:
            raise ConfigError(f"{where}: window_s must be a whole number of seconds ≥ 1, "
                              f"got {self.window_s}")
        for name in ("grace_s", "labels_wait_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{where}: {name} must be a finite number of seconds ≥ 0, "
                                  f"got {value}")
        if self.min_rows < 1:
            raise ConfigError(f"{where}: min_rows must be ≥ 1, got {self.min_rows}")
        if not 0 < self.drift_share <= 1:
            raise ConfigError(f"{where}: drift_share must be in (0, 1], got {self.drift_share}")
        if not self.time_column or not self.id_column:
            raise ConfigError(f"{where}: time_column and id_column must not be empty")
        if self.time_column == self.id_column:
            raise ConfigError(f"{where}: time_column and id_column are both "
                              f"{self.time_column!r}")
        if self.columns is not None:
            if not self.columns:
                raise ConfigError(f"{where}: columns must name at least one column "
                                  "(omit it for the profile's columns)")
            for c in self.columns:
                if self.columns.count(c) > 1:
                    raise ConfigError(f"{where}: columns lists {c!r} twice")
                if c in (self.time_column, self.id_column):
                    raise ConfigError(f"{where}: columns names {c!r}, the time or id column")
        if self.labels is not None and self.labels == self.inputs:
            raise ConfigError(f"{where}: labels and inputs are the same directory "
                              f"({self.inputs}); a labels file would be read as a batch")

    @property
    def window_us(self) -> int:
        """``window_s`` in microseconds."""
        return int(self.window_s) * 1_000_000


_KEYS = frozenset(f.name for f in fields(MonitorConfig))
_REQUIRED = ("inputs", "profile")


def parse_monitoring(value: Any, *, at: str, where: str, base: Path) -> MonitorConfig:
    """The ``monitoring`` mapping of a model in ``agent.yaml`` as a :class:`MonitorConfig`.

    Keys (relative paths are taken from ``base``, the directory of ``agent.yaml``):

    - ``inputs`` (path, required): directory of inference batches, ``.parquet``/``.pq``/
      ``.csv``/``.csv.gz``/``.csv.bz2``. Write a batch elsewhere (or under a name starting
      with ``.`` or ending in ``.tmp``/``.partial``) and rename it in when complete.
    - ``profile`` (path, required): the model's reference profile (``warden profile build``).
    - ``window_s`` (whole seconds ≥ 1, default 3600): window length; windows are aligned to
      the Unix epoch in UTC (3600: each hour, 86400: each UTC day).
    - ``grace_s`` (seconds ≥ 0, default 60): a window ``[start, end)`` closes, and is
      evaluated, once ``now ≥ end + grace_s``; rows for it that arrive later are dropped.
    - ``time_column`` (string, default ``timestamp``): the inference time of each row,
      ISO-8601 text (without an offset read as UTC) or a Parquet timestamp/date.
    - ``id_column`` (string, default ``id``): joins inference rows with labels (as text).
    - ``labels`` (path, default none): directory of label files holding ``id_column`` and
      the model's ``label`` column; none: no performance monitoring.
    - ``labels_wait_s`` (seconds ≥ 0, default 86400): how long after a window closes its
      labels are waited for; then performance is evaluated on the rows labelled, or
      recorded as labels missing. Also how long labels wait for their inference rows.
    - ``min_rows`` (whole number ≥ 1, default 100): a window with fewer rows (or labelled
      rows, for performance) is recorded as too small, without a verdict.
    - ``columns`` (list of strings, default: the profile's columns): the columns drift
      compares; each must be in the profile.
    - ``drift_share`` (number in (0, 1], default 0.5): the share of drifted columns at or
      above which the window's ``dataset_drift`` is true (evidently's ``drift_share``).
    """
    value = check_section(value, at=at, where=where, known=_KEYS, required=_REQUIRED,
                          shape="inputs and profile", what="monitoring")
    out: dict[str, Any] = {}
    for key in ("inputs", "profile", "labels"):
        if value.get(key) is not None:
            out[key] = resolve_path(coerce_value(f"{at}.{key}", Path, value[key], where=where),
                                    base)
    for key in ("window_s", "grace_s", "labels_wait_s", "drift_share"):
        if value.get(key) is not None:
            out[key] = coerce_value(f"{at}.{key}", float, value[key], where=where)
    for key in ("time_column", "id_column"):
        if value.get(key) is not None:
            out[key] = coerce_value(f"{at}.{key}", str, value[key], where=where)
    if value.get("min_rows") is not None:
        out["min_rows"] = coerce_value(f"{at}.min_rows", int, value["min_rows"], where=where)
    if value.get("columns") is not None:
        cols = value["columns"]
        if not isinstance(cols, Sequence) or isinstance(cols, str) or not all(
            isinstance(c, str) and c for c in cols
        ):
            raise ConfigError(f"{where}: {at}.columns must be a list of column names, "
                              f"got {cols!r}")
        out["columns"] = tuple(cols)
    try:
        return MonitorConfig(**out)
    except ConfigError as exc:
        raise ConfigError(exc.message.replace("monitoring:", f"{where}: {at}:", 1),
                          hint=exc.hint) from None


# -- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowResult:
    """One evaluated window (``drift`` or ``performance``), or one refused input file.

    ``drift`` is the drift evidence section (``columns``, ``share_drifted``,
    ``dataset_drift``, ...), ``performance`` the binary performance section (``accuracy``,
    ``f1``, ...), both exactly as in ``warden.evidence/v1``, aggregates only. An ``input``
    result names the file (``source``, inputs/… or labels/…) and what was wrong; its window
    is the one the file was found in. ``status``: ``evaluated`` (numbers present),
    ``too_small``, ``labels_missing`` or ``error`` (``error`` says why).
    """

    model: str
    kind: ResultKind
    window_start: datetime
    window_end: datetime
    rows: int
    status: ResultStatus
    drift: Mapping[str, Any] | None = None
    performance: Mapping[str, Any] | None = None
    labels_status: LabelsStatus | None = None
    labelled_rows: int | None = None
    error: str | None = None
    notes: tuple[str, ...] = ()
    source: str | None = None
    source_sha256: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "drift", freeze(self.drift))
        object.__setattr__(self, "performance", freeze(self.performance))

    @property
    def result_id(self) -> str:
        """What :meth:`Monitor.commit` marks done: one per window and kind, or per file."""
        if self.kind == "input":
            return f"input:{self.source}:{self.source_sha256 or 'unread'}"
        return f"{self.kind}:{to_us(self.window_start)}:{to_us(self.window_end)}"

    def to_evidence(self) -> dict[str, Any]:
        """The JSON document of this result (schema ``warden.monitoring/v1``), aggregates only."""
        return {
            "schema": MONITORING_SCHEMA,
            "model": self.model,
            "kind": self.kind,
            "window": {"start": format_time(self.window_start),
                       "end": format_time(self.window_end)},
            "rows": self.rows,
            "status": self.status,
            "drift": thaw(self.drift),
            "performance": thaw(self.performance),
            "labels": None if self.labels_status is None else {
                "status": self.labels_status, "labelled_rows": self.labelled_rows},
            "error": self.error,
            "notes": list(self.notes),
            "source": None if self.source is None else {
                "file": self.source, "sha256": self.source_sha256},
        }

    @property
    def evidence_sha256(self) -> str:
        """SHA-256 of the RFC 8785 canonical JSON of :meth:`to_evidence`."""
        return sha256_hex(canonical_json(self.to_evidence()))

    def as_check_evidence(self) -> dict[str, Any]:
        """This window's drift/performance as a validated ``warden.evidence/v1`` document
        (``generated_at`` = the window's end), for a policy input; imports the checks."""
        from agent.checks.evidence import build_evidence

        return build_evidence(drift=thaw(self.drift), performance=thaw(self.performance),
                              generated_at=self.window_end)

    @classmethod
    def from_evidence(cls, doc: Mapping[str, Any]) -> WindowResult:
        """The result :meth:`to_evidence` describes (the state keeps input results so)."""
        labels = doc.get("labels") or {}
        source = doc.get("source") or {}
        return cls(
            model=str(doc["model"]), kind=doc["kind"],
            window_start=parse_time(doc["window"]["start"], what="window.start"),
            window_end=parse_time(doc["window"]["end"], what="window.end"),
            rows=int(doc["rows"]), status=doc["status"], drift=doc.get("drift"),
            performance=doc.get("performance"), labels_status=labels.get("status"),
            labelled_rows=labels.get("labelled_rows"), error=doc.get("error"),
            notes=tuple(doc.get("notes") or ()), source=source.get("file"),
            source_sha256=source.get("sha256"))


def _short(text: str) -> str:
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


# -- the monitor ----------------------------------------------------------------------------


@dataclass
class _Batch:
    """A batch read and checked: what goes to the spool, and what was noted about it."""

    table: Any  # pa.Table: the spooled columns
    times: Any  # np.ndarray int64: microseconds since the epoch, one per row
    extra: list[str] = field(default_factory=list)


class _Refused(DataError):
    """A batch refused after its rows were placed in time: they make windows incomplete."""

    def __init__(self, message: str, times: Any, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.times = times


def _aware_us(now: datetime) -> int:
    if now.tzinfo is None:
        raise UsageError("monitoring needs a timezone-aware 'now' (UTC)")
    return to_us(now)


def _storage(path: Path, exc: OSError, what: str) -> StorageUnavailableError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFullError(f"{path}: {what} ({reason})",
                                hint="free disk space; monitoring resumes on the next pass")
    return StorageUnavailableError(f"{path}: {what} ({reason})")


class Monitor:
    """Monitoring of one model: :meth:`poll` for results, :meth:`commit` once recorded.

    One process owns ``state_dir`` (the daemon's outbox lock), so the state has one writer.
    Results of a poll come in window order, input results first; each is returned by every
    poll until committed.
    """

    def __init__(self, model: ModelConfig, cfg: MonitorConfig, state_dir: Path) -> None:
        """Check the configuration against the model; nothing is read yet."""
        for what, col in (("time_column", cfg.time_column), ("id_column", cfg.id_column)):
            if col in (model.label, model.pred):
                raise ConfigError(f"model {model.name!r}: monitoring {what} {col!r} is the "
                                  "model's label or prediction column")
        self.model = model
        self.cfg = cfg
        self.dir = Path(state_dir) / "monitoring" / model.name
        self.state_path = self.dir / "state.json"
        self._state: MonitorState | None = None
        self._results: dict[str, WindowResult] = {}
        self._profile: tuple[tuple[int, int], ReferenceProfile] | None = None

    # -- public ---------------------------------------------------------------------------

    def poll(self, now: datetime) -> list[WindowResult]:
        """Ingest new batches and labels, evaluate what is due, return every uncommitted result.

        Raises :class:`StorageUnavailableError` (state or spool unreadable or unwritable),
        :class:`DataError` (an inputs or labels directory that does not exist), or the
        profile's :class:`FormatError`/:class:`ConfigError` — never for a bad batch, which
        becomes a result.
        """
        now_us = _aware_us(now)
        st = self._load()
        hw = max(now_us, st.high_water if st.high_water is not None else now_us)
        changed = st.high_water != hw
        st.high_water = hw
        changed |= self._scan_inputs(st, hw)
        if self.cfg.labels is not None:
            changed |= self._scan_labels(st, hw)
            changed |= self._prune_pool(st, hw)
        grace = _seconds_us(self.cfg.grace_s)
        for w in st.windows:
            if not w.closed and w.end + grace <= hw:
                w.closed = True
                changed = True
        due: list[tuple[WindowState, ResultKind]] = []
        for w in st.windows:
            if not w.closed:
                continue
            if not w.drift_done and _window_id("drift", w) not in self._results:
                due.append((w, "drift"))
            if (self.cfg.labels is not None and not w.perf_done
                    and _window_id("performance", w) not in self._results
                    and (w.perf_frozen or self._labels_due(w, hw))):
                changed |= not w.perf_frozen
                w.perf_frozen = True  # no label is added from now on
                due.append((w, "performance"))
        if changed:
            self._save(st)
        for w, kind in due:
            result = self._evaluate(w, kind)
            self._results[result.result_id] = result
        return self._pending(st)

    def commit(self, result: WindowResult) -> None:
        """Mark ``result`` recorded: it is not returned again, even after a restart.

        Idempotent. A window whose results are all committed leaves the state, and its
        spool is removed. Raises :class:`NotFoundError` for a result this monitor never gave.
        """
        st = self._load()
        rid = result.result_id
        if result.model != self.model.name:
            raise NotFoundError(f"result {rid} is about model {result.model!r}, not "
                                f"{self.model.name!r}")
        if result.kind == "input":
            before = len(st.pending_inputs)
            st.pending_inputs = [d for d in st.pending_inputs
                                 if WindowResult.from_evidence(d).result_id != rid]
            if len(st.pending_inputs) != before:
                self._save(st)
            return
        start, end = to_us(result.window_start), to_us(result.window_end)
        w = st.window(start, end)
        if w is None:
            if any(a <= start and end <= b for a, b in st.done):
                return  # committed before
            raise NotFoundError(f"model {self.model.name!r}: no monitoring window "
                                f"{format_time(result.window_start)}–"
                                f"{format_time(result.window_end)}")
        if result.kind == "drift":
            if w.drift_done:
                return
            w.drift_done = True
        else:
            if w.perf_done:
                return
            w.perf_done = True
        st.history.append(_history_entry(result))
        self._trim_history(st)
        finished = w.drift_done and (w.perf_done or self.cfg.labels is None)
        if finished:
            st.windows.remove(w)
            st.done = add_interval(st.done, w.start, w.end)
        self._save(st)
        self._results.pop(rid, None)
        if finished:
            shutil.rmtree(self.dir / "spool" / w.key, ignore_errors=True)

    def history(self, kind: ResultKind | None = None) -> tuple[HistoryEntry, ...]:
        """Committed results (the last 90 days), oldest window first."""
        st = self._load()
        return tuple(h for h in st.history if kind is None or h.kind == kind)

    def production_status(
        self, *, min_accuracy: float | None, now: datetime, since: datetime | None = None
    ) -> ProductionStatus:
        """What the recorded windows say about the version in production, for the policy.

        Only windows starting at or after ``since`` count (pass the time the production
        pointer last moved, so a rolled-back version's windows do not count against the
        one now deployed). ``accuracy``: that of the latest window with a performance
        value. ``hours_below_threshold``: with ``min_accuracy``, the hours covered by the
        latest run of consecutive measured windows whose accuracy is below it (0 when the
        latest is not below); windows without a performance value (labels missing, too
        small, error) neither count nor break the run — so the figure never counts time
        nothing was measured. ``deployment_age_hours``: ``now - since``. ``drift_alert``
        is left unset: whether a window's drift is an alert is the policy's drift rule's
        decision, on the ``drift`` result's evidence.
        """
        from agent.policy_input import ProductionStatus

        floor = None if since is None else to_us(since)
        measured = [h for h in self._load().history
                    if h.kind == "performance" and h.accuracy is not None
                    and (floor is None or h.start >= floor)]
        measured.sort(key=lambda h: h.start)
        accuracy = measured[-1].accuracy if measured else None
        hours = None
        if min_accuracy is not None and measured:
            below_us = 0
            for h in reversed(measured):
                assert h.accuracy is not None
                if h.accuracy >= min_accuracy:
                    break
                below_us += h.end - h.start
            hours = below_us / 3.6e9
        age = None if since is None else max(0.0, (to_us(now) - to_us(since)) / 3.6e9)
        return ProductionStatus(accuracy=accuracy, hours_below_threshold=hours,
                                deployment_age_hours=age)

    def validate(self) -> None:
        """Load the profile and check ``columns`` against it (imports the checks)."""
        self._reference()

    def window_table(self, result: WindowResult, columns: Sequence[str]) -> pa.Table:
        """The spooled rows of ``result``'s window (``columns`` only), for a report on the
        same rows the result judged. Only until the result is committed: the spool of a
        finished window is removed. Raises :class:`NotFoundError` for a window not held."""
        import pyarrow as pa

        w = self._load().window(to_us(result.window_start), to_us(result.window_end))
        if w is None or result.kind == "input":
            raise NotFoundError(f"model {self.model.name!r}: no spooled window "
                                f"{format_time(result.window_start)}–"
                                f"{format_time(result.window_end)}")
        return pa.table({c: _window_column(self.dir, w.parts, c) for c in columns})

    # -- state ----------------------------------------------------------------------------

    def _load(self) -> MonitorState:
        if self._state is None:
            st = load_state(self.state_path, self.model.name)
            self._clean_orphans(st)
            self._state = st
        return self._state

    def _save(self, st: MonitorState) -> None:
        save_state(self.state_path, st)

    def _clean_orphans(self, st: MonitorState) -> None:
        """Remove spool directories and pool files the state does not name (a crash between
        saving the state and removing them, or parts written before a crash)."""
        spool = self.dir / "spool"
        keep = {w.key for w in st.windows}
        if spool.is_dir():
            for entry in spool.iterdir():
                if entry.name not in keep:
                    shutil.rmtree(entry, ignore_errors=True)
        pool = self.dir / "pool"
        keep_pool = {Path(p.path).name for p in st.pool}
        if pool.is_dir():
            for entry in pool.iterdir():
                if entry.name not in keep_pool:
                    entry.unlink(missing_ok=True)

    def _trim_history(self, st: MonitorState) -> None:
        if st.high_water is not None:
            floor = st.high_water - HISTORY_S * 1_000_000
            st.history = [h for h in st.history if h.end >= floor]
        st.history.sort(key=lambda h: (h.start, h.kind))
        del st.history[:-HISTORY_MAX]

    def _pending(self, st: MonitorState) -> list[WindowResult]:
        inputs = [WindowResult.from_evidence(d) for d in st.pending_inputs]
        order = {"drift": 0, "performance": 1}
        windows = sorted(self._results.values(),
                         key=lambda r: (r.window_start, r.window_end, order[r.kind]))
        return inputs + windows

    def _input_result(self, st: MonitorState, hw: int, *, source: str, sha: str | None,
                      error: str, rows: int = 0, notes: Sequence[str] = ()) -> None:
        w_us = self.cfg.window_us
        start = (hw // w_us) * w_us
        result = WindowResult(model=self.model.name, kind="input", window_start=from_us(start),
                              window_end=from_us(start + w_us), rows=rows, status="error",
                              error=_short(error), notes=tuple(notes), source=source,
                              source_sha256=sha)
        rid = result.result_id
        if all(WindowResult.from_evidence(d).result_id != rid for d in st.pending_inputs):
            st.pending_inputs.append(result.to_evidence())

    # -- scanning -------------------------------------------------------------------------

    def _listing(self, directory: Path, what: str) -> dict[str, os.stat_result]:
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            raise DataError(f"{directory}: the monitoring {what} directory does not exist",
                            hint="create it, or fix the model's monitoring section") from None
        except NotADirectoryError:
            raise DataError(f"{directory}: monitoring {what} is not a directory") from None
        except OSError as exc:
            raise DataError(f"{directory}: cannot list the monitoring {what} "
                            f"({exc.strerror or exc})") from None
        out: dict[str, os.stat_result] = {}
        for e in entries:
            if e.name.startswith(".") or e.name.endswith(_IGNORED_SUFFIXES):
                continue
            try:
                if not e.is_file():
                    continue
                out[e.name] = e.stat()
            except FileNotFoundError:
                continue  # renamed away while listing
        return out

    def _scan_inputs(self, st: MonitorState, hw: int) -> bool:
        listing = self._listing(self.cfg.inputs, "inputs")
        changed = False
        for name, stat, known in _new_or_touched(listing, st.files):
            changed = True
            self._ingest(st, hw, name, stat, known)
        # Forget files gone from the directory once every window they fed is closed: a
        # copy published again can then only bring late rows, never a second count.
        grace = _seconds_us(self.cfg.grace_s)
        for name in [n for n in st.files if n not in listing]:
            f = st.files[name]
            if f.last_end is None or f.last_end + grace <= hw:
                del st.files[name]
                changed = True
        return changed

    def _read_bytes(self, path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            return None

    def _ingest(self, st: MonitorState, hw: int, name: str, stat: os.stat_result,
                known: FileState | None) -> None:
        source = f"inputs/{name}"
        path = self.cfg.inputs / name
        try:
            data = self._read_bytes(path)
        except OSError as exc:
            st.files[name] = FileState(stat.st_size, stat.st_mtime_ns, None, "rejected")
            self._input_result(st, hw, source=source, sha=None,
                               error=f"{path}: cannot read ({exc.strerror or exc})")
            return
        if data is None:
            return  # gone since the listing: nothing to do
        sha = hashlib.sha256(data).hexdigest()
        state = FileState(len(data), stat.st_mtime_ns, sha, "rejected")
        st.files[name] = state
        if known is not None and known.sha256 == sha:
            state.status, state.last_end = known.status, known.last_end  # touched, same bytes
            return
        if known is not None and known.status == "ingested":
            state.status, state.last_end = known.status, known.last_end
            self._input_result(st, hw, source=source, sha=sha, error=(
                f"{path} changed after it was ingested (sha256 {known.sha256} → {sha}); the "
                "new content is not ingested: publish new rows under a new name"))
            return
        twin = next((n for n, f in st.files.items()
                     if n != name and f.sha256 == sha and f.status == "ingested"), None)
        if twin is not None:
            self._input_result(st, hw, source=source, sha=sha, error=(
                f"{path} has the same content as batch {twin!r}, already ingested; "
                "not counted twice"))
            return
        fmt = data_format(name)
        if fmt is None:
            self._input_result(st, hw, source=source, sha=sha, error=(
                f"{path}: not a batch (expected .parquet, .pq, .csv, .csv.gz or .csv.bz2); "
                "ignored"))
            return
        profile = self._reference()
        try:
            batch = _read_batch(path, data, fmt, self, profile)
        except _Refused as exc:
            self._refuse_rows(st, hw, name, exc)
            self._input_result(st, hw, source=source, sha=sha, error=exc.message,
                               rows=len(exc.times))
            return
        except DataError as exc:
            self._input_result(st, hw, source=source, sha=sha, error=exc.message)
            return
        state.status = "ingested"
        self._spool(st, hw, name, sha, batch, state)

    def _targets(self, st: MonitorState, times: Any) -> tuple[list[tuple[int, int, Any]], Any]:
        """Where each time goes: existing windows, done spans (late) or new windows.

        New windows are the epoch-aligned grid windows minus what is already occupied, so
        windows never overlap (even after ``window_s`` changed).
        """
        import numpy as np

        w_us = self.cfg.window_us
        grid = np.unique(times // w_us)
        occupied = st.occupied()
        targets: list[tuple[int, int, Any]] = [(w.start, w.end, w) for w in st.windows]
        targets += [(a, b, None) for a, b in st.done]
        for g in grid.tolist():
            for a, b in free_pieces(g * w_us, (g + 1) * w_us, occupied):
                targets.append((a, b, "new"))
        targets.sort(key=lambda t: t[0])
        starts = np.array([t[0] for t in targets], dtype=np.int64)
        pos = np.searchsorted(starts, times, side="right") - 1
        return targets, pos

    def _refuse_rows(self, st: MonitorState, hw: int, name: str, exc: _Refused) -> None:
        """Mark every open window the refused batch had rows in as incomplete."""
        import numpy as np

        if not len(exc.times):
            return
        targets, pos = self._targets(st, exc.times)
        problem = f"batch {name!r} was refused: {exc.message}"
        for i in np.unique(pos).tolist():
            start, end, target = targets[i]
            if target is None or (isinstance(target, WindowState) and target.closed):
                continue  # late anyway: the window's verdict stands
            w = target if isinstance(target, WindowState) else self._new_window(st, start, end)
            if problem not in w.problems:
                w.problems.append(problem)
            f = st.files[name]
            f.last_end = max(f.last_end or end, end)

    def _new_window(self, st: MonitorState, start: int, end: int) -> WindowState:
        w = WindowState(start=start, end=end)
        st.windows.append(w)
        st.windows.sort(key=lambda x: x.start)
        return w

    def _spool(self, st: MonitorState, hw: int, name: str, sha: str, batch: _Batch,
               fstate: FileState) -> None:
        import numpy as np

        times = batch.times
        if not len(times):
            return
        targets, pos = self._targets(st, times)
        late_rows = 0
        late_windows: list[str] = []
        for i in np.unique(pos).tolist():
            start, end, target = targets[i]
            rows = np.flatnonzero(pos == i)
            if target is None or (isinstance(target, WindowState) and target.closed):
                late_rows += len(rows)
                late_windows.append(f"{format_time(from_us(start))}–{format_time(from_us(end))}")
                continue
            w = target if isinstance(target, WindowState) else self._new_window(st, start, end)
            table = batch.table if len(rows) == len(times) else batch.table.take(rows)
            rel = f"spool/{w.key}/{sha[:32]}.parquet"
            _write_parquet(self.dir / rel, table)
            w.parts.append(Part(file=name, path=rel, rows=table.num_rows))
            w.rows += table.num_rows
            for col in batch.extra:
                w.extra_columns.setdefault(col, name)
            if self.cfg.labels is not None and self.cfg.id_column in table.column_names:
                w.unidentified += table.column(self.cfg.id_column).null_count
                if not w.perf_frozen:
                    for entry in st.pool:  # labels that arrived before these rows
                        self._match(w, _read_parquet(self.dir / entry.path),
                                    tag=f"{Path(entry.path).stem}-{sha[:16]}", source=entry.file)
                    self._count_labelled(w)
            fstate.last_end = max(fstate.last_end or end, end)
        if late_rows:
            self._input_result(st, hw, source=f"inputs/{name}", sha=sha, rows=late_rows, error=(
                f"{self.cfg.inputs / name}: {late_rows} rows fall in windows already "
                "evaluated; they arrived after the window closed and are not evaluated"),
                notes=[f"late window {w}" for w in late_windows[:20]])

    # -- labels ---------------------------------------------------------------------------

    def _scan_labels(self, st: MonitorState, hw: int) -> bool:
        assert self.cfg.labels is not None
        listing = self._listing(self.cfg.labels, "labels")
        changed = False
        for name, stat, known in _new_or_touched(listing, st.label_files):
            changed = True
            self._ingest_labels(st, hw, name, stat, known)
        for name in [n for n in st.label_files if n not in listing]:
            del st.label_files[name]  # labels dedupe by id per window: a re-publication
            changed = True            # can never count twice
        return changed

    def _ingest_labels(self, st: MonitorState, hw: int, name: str, stat: os.stat_result,
                       known: FileState | None) -> None:
        assert self.cfg.labels is not None
        source = f"labels/{name}"
        path = self.cfg.labels / name
        try:
            data = self._read_bytes(path)
        except OSError as exc:
            st.label_files[name] = FileState(stat.st_size, stat.st_mtime_ns, None, "rejected")
            self._input_result(st, hw, source=source, sha=None,
                               error=f"{path}: cannot read ({exc.strerror or exc})")
            return
        if data is None:
            return
        sha = hashlib.sha256(data).hexdigest()
        state = FileState(len(data), stat.st_mtime_ns, sha, "rejected")
        st.label_files[name] = state
        if known is not None and known.sha256 == sha:
            state.status = known.status
            return
        fmt = data_format(name)
        if fmt is None:
            self._input_result(st, hw, source=source, sha=sha, error=(
                f"{path}: not a labels file (expected .parquet, .pq, .csv, .csv.gz or "
                ".csv.bz2); ignored"))
            return
        try:
            labels = _read_labels(path, data, fmt, self)
        except DataError as exc:
            self._input_result(st, hw, source=source, sha=sha, error=exc.message)
            return
        state.status = "ingested"
        rel = f"pool/{sha[:32]}.parquet"
        _write_parquet(self.dir / rel, labels)
        st.pool = [p for p in st.pool if p.path != rel]
        st.pool.append(PoolEntry(file=name, path=rel, rows=labels.num_rows, ingested=hw))
        for w in st.windows:
            if not w.perf_frozen and w.parts and self._match(w, labels, tag=sha[:32],
                                                             source=name):
                self._count_labelled(w)

    def _prune_pool(self, st: MonitorState, hw: int) -> bool:
        keep_us = _seconds_us(self.cfg.labels_wait_s)
        old = [p for p in st.pool if p.ingested + keep_us < hw]
        for p in old:
            (self.dir / p.path).unlink(missing_ok=True)
        st.pool = [p for p in st.pool if p not in old]
        return bool(old)

    def _match(self, w: WindowState, labels: Any, *, tag: str, source: str) -> bool:
        """Add to ``w`` the labels of its ids it does not have yet; whether any were added.

        A window whose spooled rows have no id column (labels configured after they were
        spooled) takes no label: its performance result says why.
        """
        import pyarrow.compute as pc

        try:
            ids = _window_column(self.dir, w.parts, self.cfg.id_column).combine_chunks()
        except DataError:
            return False
        mine = labels.filter(pc.is_in(labels.column("id"), value_set=ids.unique()))
        if not mine.num_rows:
            return False
        have = _window_labels(self.dir, w)
        if have is not None:
            known = have.column("id").combine_chunks()
            again = pc.is_in(mine.column("id"), value_set=known)
            if pc.any(again).as_py():
                seen = mine.filter(again)
                first = have.column("label").take(pc.index_in(seen.column("id"), value_set=known))
                w.relabelled += int(pc.sum(pc.not_equal(first, seen.column("label"))).as_py()
                                    or 0)
                mine = mine.filter(pc.invert(again))
            if not mine.num_rows:
                return False
        rel = f"spool/{w.key}/labels-{tag}.parquet"
        _write_parquet(self.dir / rel, mine)
        w.label_parts.append(Part(file=source, path=rel, rows=mine.num_rows))
        return True

    def _count_labelled(self, w: WindowState) -> None:
        import pyarrow.compute as pc

        have = _window_labels(self.dir, w)
        if have is None:
            w.labelled = 0
            return
        try:
            ids = _window_column(self.dir, w.parts, self.cfg.id_column).combine_chunks()
        except DataError:
            return
        known = have.column("id").combine_chunks()
        w.labelled = int(pc.sum(pc.is_in(ids, value_set=known)).as_py() or 0)

    def _labels_due(self, w: WindowState, hw: int) -> bool:
        if w.problems or w.rows < self.cfg.min_rows or w.labelled >= w.rows:
            return True
        deadline = w.end + _seconds_us(self.cfg.grace_s) + _seconds_us(self.cfg.labels_wait_s)
        return hw >= deadline

    # -- evaluation -----------------------------------------------------------------------

    def _reference(self) -> ReferenceProfile:
        """The profile (reloaded when its file changes), restricted to ``columns``."""
        from agent.checks.files import load_profile
        from agent.checks.profile import ReferenceProfile

        try:
            stat = self.cfg.profile.stat()
        except OSError as exc:
            raise FormatError(f"{self.cfg.profile}: cannot read the reference profile of "
                              f"model {self.model.name!r} ({exc.strerror or exc})") from None
        key = (stat.st_size, stat.st_mtime_ns)
        if self._profile is not None and self._profile[0] == key:
            return self._profile[1]
        profile = load_profile(self.cfg.profile)
        for what, col in (("time_column", self.cfg.time_column),
                          ("id_column", self.cfg.id_column)):
            if col in profile.names and (self.cfg.columns is None or col in self.cfg.columns):
                raise ConfigError(
                    f"model {self.model.name!r}: the reference profile {self.cfg.profile} has "
                    f"column {col!r}, the monitoring {what}; drift on it means nothing",
                    hint="set monitoring.columns to the columns to compare, or rebuild the "
                    "profile without it")
        if self.cfg.columns is not None:
            missing = [c for c in self.cfg.columns if c not in profile.names]
            if missing:
                raise ConfigError(
                    f"model {self.model.name!r}: monitoring column {missing[0]!r} is not in "
                    f"the reference profile {self.cfg.profile} (it has "
                    f"{', '.join(profile.names)})",
                    hint="rebuild the profile with that column, or fix monitoring.columns")
            profile = ReferenceProfile(
                tuple(c for c in profile.columns if c.name in self.cfg.columns))
        self._profile = (key, profile)
        return profile

    def _base(self, w: WindowState, kind: ResultKind, **kw: Any) -> WindowResult:
        notes = [f"column {c!r} is not in the reference profile; not compared (first seen in "
                 f"batch {f!r})" for c, f in sorted(w.extra_columns.items())]
        if kind == "performance":
            if w.unidentified:
                notes.append(f"{w.unidentified} rows have no {self.cfg.id_column!r}; they "
                             "cannot be joined with labels")
            if w.relabelled:
                notes.append(f"{w.relabelled} ids were labelled differently by a later labels "
                             "file; the first label was kept")
        return WindowResult(model=self.model.name, kind=kind, window_start=from_us(w.start),
                            window_end=from_us(w.end), rows=w.rows, notes=tuple(notes), **kw)

    def _evaluate(self, w: WindowState, kind: ResultKind) -> WindowResult:
        if w.problems:
            return self._base(w, kind, status="error", error=_short("; ".join(w.problems)))
        if kind == "drift":
            if w.rows < self.cfg.min_rows:
                return self._base(w, kind, status="too_small")
            profile = self._reference()
            try:
                drift = _window_drift(self.dir, w, profile, self.cfg.drift_share)
            except WardenError as exc:
                if isinstance(exc, StorageUnavailableError | ConfigError):
                    raise
                return self._base(w, kind, status="error", error=_short(exc.message))
            return self._base(w, kind, status="evaluated", drift=drift)
        labels_status: LabelsStatus = (
            "missing" if w.labelled == 0 else "complete" if w.labelled >= w.rows else "partial")
        if w.rows < self.cfg.min_rows:
            return self._base(w, kind, status="too_small", labels_status=labels_status,
                              labelled_rows=w.labelled)
        if w.labelled == 0:
            return self._base(w, kind, status="labels_missing", labels_status="missing",
                              labelled_rows=0)
        try:
            perf, labelled = _window_performance(self.dir, w, self)
        except WardenError as exc:
            if isinstance(exc, StorageUnavailableError | ConfigError):
                raise
            return self._base(w, kind, status="error", error=_short(exc.message),
                              labels_status=labels_status, labelled_rows=w.labelled)
        if labelled < self.cfg.min_rows:
            return self._base(w, kind, status="too_small", labels_status=labels_status,
                              labelled_rows=labelled)
        return self._base(w, kind, status="evaluated", performance=perf,
                          labels_status=labels_status, labelled_rows=labelled)


def _window_id(kind: str, w: WindowState) -> str:
    return f"{kind}:{w.start}:{w.end}"


def _seconds_us(seconds: float) -> int:
    return int(round(seconds * 1_000_000))


def _history_entry(result: WindowResult) -> HistoryEntry:
    perf = result.performance or {}
    drift = result.drift or {}
    accuracy = perf.get("accuracy")
    share = drift.get("share_drifted")
    dataset = drift.get("dataset_drift")
    return HistoryEntry(
        kind=result.kind, start=to_us(result.window_start), end=to_us(result.window_end),
        status=result.status, evidence_sha256=result.evidence_sha256,
        accuracy=None if accuracy is None else float(accuracy),
        share_drifted=None if share is None else float(share),
        dataset_drift=None if dataset is None else bool(dataset),
        labelled_rows=result.labelled_rows)


# -- reading batches and labels (heavy: pyarrow and NumPy are imported here) --------------


def _write_parquet(path: Path, table: pa.Table) -> None:
    """Write ``table`` whole and durably (the state names only parts that exist)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    # Uncompressed, dictionaries for text only: the spool is short-lived and local, and
    # trying dictionaries and compression on float columns costs 3x the write for ~5 %.
    text = [f.name for f in table.schema if pa.types.is_string(f.type)]
    pq.write_table(table, sink, compression="none", use_dictionary=text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, sink.getvalue().to_pybytes())
    except OSError as exc:
        raise _storage(path, exc, "cannot write the monitoring spool") from None


def _read_parquet(path: Path, columns: Sequence[str] | None = None, *,
                  batch: str | None = None) -> pa.Table:
    """A spooled part (only ``columns``); a column the part lacks is a DataError naming
    ``batch``, the file its rows came from."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        if columns is not None:
            names = pf.schema_arrow.names
            for name in columns:
                if name not in names:
                    raise DataError(f"batch {batch!r}: its spooled rows have no column {name!r} "
                                    "(was the profile or monitoring.columns changed since?)")
        return pf.read(columns=list(columns) if columns is not None else None)
    except FileNotFoundError:
        raise DataError(f"{path}: spooled rows are missing (removed by hand?); the window "
                        "cannot be evaluated") from None
    except OSError as exc:
        raise _storage(path, exc, "cannot read the monitoring spool") from None
    except pa.ArrowInvalid as exc:
        raise DataError(f"{path}: the spooled rows are damaged ({str(exc).splitlines()[0]})") \
            from None


def _window_column(mdir: Path, parts: Sequence[Part], name: str) -> pa.ChunkedArray:
    """One column of every part of a window, as one chunked array (types unified)."""
    import pyarrow as pa

    chunks = [_read_parquet(mdir / p.path, [name], batch=p.file).column(0) for p in parts]
    if not chunks:
        return pa.chunked_array([], type=pa.string())
    types = {c.type for c in chunks}
    if len(types) > 1:
        target = pa.string() if any(pa.types.is_string(t) for t in types) else pa.float64()
        chunks = [c.cast(target) for c in chunks]
    return pa.chunked_array([piece for c in chunks for piece in c.chunks], type=chunks[0].type)


def _window_labels(mdir: Path, w: WindowState) -> pa.Table | None:
    """The labels the window holds (id, label), or None without any."""
    import pyarrow as pa

    if not w.label_parts:
        return None
    return pa.concat_tables([_read_parquet(mdir / p.path) for p in w.label_parts])


def _decompressed(path: Path, data: bytes) -> bytes:
    import bz2
    import gzip
    import zlib

    lowered = path.name.lower()
    try:
        if lowered.endswith(".gz"):
            return gzip.decompress(data)
        if lowered.endswith(".bz2"):
            return bz2.decompress(data)
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise DataError(f"{path}: cannot decompress ({exc})") from None
    return data


def _read_table(path: Path, data: bytes, fmt: str, wanted: Sequence[str],
                as_text: Sequence[str]) -> tuple[pa.Table, list[str]]:
    """The ``wanted`` columns that exist (``as_text`` read as text from CSV) and all names."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from agent.columns import check_unique

    if not data:
        raise DataError(f"{path}: file is empty")
    if fmt == "parquet":
        try:
            pf = pq.ParquetFile(pa.BufferReader(data))
            names = list(pf.schema_arrow.names)
            check_unique(path, names)
            cols = [c for c in wanted if c in names]
            return pf.read(columns=cols), names
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{path}: not a readable Parquet file "
                            f"({str(exc).splitlines()[0]})") from None
    raw = _decompressed(path, data)
    try:
        names = list(pacsv.open_csv(pa.BufferReader(raw)).schema.names)
    except UnicodeDecodeError:
        raise DataError(f"{path}: the header line is not valid UTF-8") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: cannot read CSV: {str(exc).splitlines()[0]}") from None
    check_unique(path, names)
    cols = [c for c in wanted if c in names]
    try:
        table = pacsv.read_csv(pa.BufferReader(raw), convert_options=pacsv.ConvertOptions(
            include_columns=cols, column_types={c: pa.string() for c in as_text if c in cols},
            null_values=[""], strings_can_be_null=True))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: cannot read CSV: {str(exc).splitlines()[0]}") from None
    return table, names


def _times(path: Path, column: str, arr: pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """Microseconds since the epoch for each row; DataError naming a row otherwise."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if arr.null_count:
        row = int(pc.index(pc.is_null(arr), True).as_py())
        raise DataError(f"{path}: column {column!r}, data row {row + 1}: no time",
                        hint="every inference row needs its time")
    t = arr.type
    if pa.types.is_timestamp(t):
        per_us = {"s": 1_000_000, "ms": 1000, "us": 1, "ns": -1000}[t.unit]
        raw: npt.NDArray[np.int64] = np.asarray(arr.cast(pa.int64()).to_numpy(), np.int64)
        return raw // 1000 if per_us < 0 else raw * per_us
    if pa.types.is_date32(t):
        days: npt.NDArray[np.int64] = np.asarray(arr.cast(pa.int32()).to_numpy(), np.int64)
        return days * 86_400_000_000
    if pa.types.is_date64(t):
        ms: npt.NDArray[np.int64] = np.asarray(arr.cast(pa.int64()).to_numpy(), np.int64)
        return ms * 1000
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise DataError(f"{path}: column {column!r} has type {t}; the inference time must "
                        "be ISO-8601 text or a timestamp",
                        hint="numbers are refused: seconds or milliseconds since the epoch?")
    for target in (pa.timestamp("us", tz="UTC"), pa.timestamp("us")):  # offsets, or none
        try:
            return np.asarray(arr.cast(target).cast(pa.int64()).to_numpy())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue  # not all in this form: try the next, then value by value below
    # Mixed forms, or something that is not a time: one value at a time, naming the row.
    out = np.empty(len(arr), dtype=np.int64)
    for i, text in enumerate(arr.to_pylist()):
        try:
            when = datetime.fromisoformat(text.strip())
        except ValueError:
            raise DataError(f"{path}: column {column!r}, data row {i + 1}: {text!r} is not an "
                            "ISO-8601 time", hint="write times like 2026-05-01T12:00:00Z") \
                from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        out[i] = to_us(when)
    return out


def _new_or_touched(
    listing: Mapping[str, os.stat_result], known: Mapping[str, FileState]
) -> list[tuple[str, os.stat_result, FileState | None]]:
    """The listed files, in name order, that are new or whose size or mtime changed since
    they were last looked at (with what is known of them)."""
    out = []
    for name in sorted(listing):
        stat, seen = listing[name], known.get(name)
        if seen is None or (seen.size, seen.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
            out.append((name, stat, seen))
    return out


def _as_ids(path: Path, column: str, arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """Ids as text: whole numbers and text match (``7`` and ``"7"``); others refused."""
    import pyarrow as pa

    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t) \
            or pa.types.is_null(t):
        return arr.cast(pa.string())
    raise DataError(f"{path}: column {column!r} has type {t}; ids must be text or whole numbers",
                    hint="a float id (1.0) would not match the same id written as 1")


def _conform(path: Path, column: str, arr: pa.ChunkedArray, dtype: str) -> pa.ChunkedArray:
    """A drift column in the kind the profile has for it (text or numbers), or refused."""
    import pyarrow as pa

    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    t = arr.type
    if pa.types.is_nested(t):
        raise DataError(f"{path}: column {column!r} has type {t}; drift columns must be scalar")
    if pa.types.is_null(t):
        return arr.cast(pa.string() if dtype == "str" else pa.float64())
    if dtype == "str":
        try:
            return arr.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DataError(f"{path}: column {column!r} has type {t}, which cannot be read as "
                            "the text the reference profile has for it") from None
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        return arr
    if pa.types.is_decimal(t):
        return arr.cast(pa.float64())
    raise DataError(f"{path}: column {column!r} has type {t}, but the reference profile has "
                    f"numbers ({dtype}) for it",
                    hint="the column's meaning changed, or the batch is not this model's")


def _read_batch(path: Path, data: bytes, fmt: str, monitor: Monitor,
                profile: ReferenceProfile) -> _Batch:
    """Read and check one inference batch (see the module docstring for what is refused)."""
    import pyarrow as pa

    from agent.columns import check_scalar, missing_column

    cfg, model = monitor.cfg, monitor.model
    drift_cols = list(profile.names)
    with_labels = cfg.labels is not None
    keep = list(dict.fromkeys([*drift_cols, *([cfg.id_column, model.pred] if with_labels
                                                else [])]))
    wanted = [cfg.time_column, *[c for c in keep if c != cfg.time_column]]
    table, names = _read_table(path, data, fmt, wanted, [cfg.time_column, cfg.id_column])
    if cfg.time_column not in names:
        raise missing_column(path, cfg.time_column, names)
    check_scalar(path, table.schema, [cfg.time_column])
    times = _times(path, cfg.time_column, table.column(cfg.time_column))
    for col in keep:
        if col not in names:
            exc = missing_column(path, col, names)
            raise _Refused(exc.message, times, hint=exc.hint)
    try:
        check_scalar(path, table.schema, keep)
        dtypes = {c.name: c.dtype for c in profile.columns}
        columns = {c: _conform(path, c, table.column(c), dtypes[c]) for c in drift_cols}
        if with_labels:
            columns[cfg.id_column] = _as_ids(path, cfg.id_column, table.column(cfg.id_column))
            columns.setdefault(model.pred, table.column(model.pred))
    except DataError as exc:
        raise _Refused(exc.message, times, hint=exc.hint) from None
    known = {*profile.names, *(cfg.columns or ()), cfg.time_column, cfg.id_column, model.label,
             model.pred, *model.sensitive}
    extra = [n for n in names if n not in known]
    return _Batch(table=pa.table(columns), times=times, extra=extra)


def _read_labels(path: Path, data: bytes, fmt: str, monitor: Monitor) -> pa.Table:
    """A labels file as (id text, label 0/1); duplicate or missing ids refused."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from agent.columns import Unconvertible, array_values, check_scalar, missing_column
    from agent.labels import binary_labels

    cfg, model = monitor.cfg, monitor.model
    table, names = _read_table(path, data, fmt, [cfg.id_column, model.label], [cfg.id_column])
    for col in (cfg.id_column, model.label):
        if col not in names:
            raise missing_column(path, col, names)
    check_scalar(path, table.schema, [cfg.id_column, model.label])
    ids = _as_ids(path, cfg.id_column, table.column(cfg.id_column)).combine_chunks()
    if ids.null_count:
        row = int(pc.index(pc.is_null(ids), True).as_py())
        raise DataError(f"{path}: column {cfg.id_column!r}, data row {row + 1}: no id")
    counts = pc.value_counts(ids)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(repeated):
        example = repeated.field("values")[0].as_py()
        rows = np.flatnonzero(pc.equal(ids, example).to_numpy(zero_copy_only=False)) + 1
        shown = ", ".join(str(r) for r in rows[:5].tolist())
        raise DataError(
            f"{path}: id {example!r} appears {len(rows)} times (data rows {shown}); "
            f"{len(repeated)} ids are repeated, and a labels file must label each id once",
            hint="publish a corrected labels file under a new name; the windows wait for it")
    try:
        values = array_values(table.column(model.label))
    except Unconvertible as exc:
        raise DataError(f"{path}: column {model.label!r} {exc.reason}") from None
    y = binary_labels(values, column=model.label, source=path, pos_label=model.pos_label)
    return pa.table({"id": ids, "label": pa.array(np.asarray(y, dtype=np.int8))})


def _window_drift(mdir: Path, w: WindowState, profile: ReferenceProfile,
                  drift_share: float) -> dict[str, Any]:
    """Drift of the window's rows against the profile: the same statistics as
    :meth:`ReferenceProfile.compare`, column by column from the spool.

    Text columns go to the statistics as Arrow arrays (``RawSide`` takes them so): the
    profile's ``compare`` takes NumPy, which would turn a million strings into Python
    objects and back (~0.2 s a column); tests check both give the same evidence.
    """
    import pyarrow as pa

    from agent.checks.drift import (
        RawSide,
        clean_column,
        column_drift,
        resolve_column_type,
        summarise,
    )
    from agent.checks.evidence import build_evidence
    from agent.checks.profile import ProfileSide
    from agent.columns import Unconvertible, array_values

    out: dict[str, dict[str, Any]] = {}
    for col in profile.columns:
        values = _window_column(mdir, w.parts, col.name)
        declared = {col.name: col.column_type} if col.column_type else None
        if pa.types.is_string(values.type) and col.column_type in (None, "cat"):
            text = values.combine_chunks().drop_null()
            if not len(text):
                raise DataError(f"column {col.name!r} in the current data has no usable values "
                                "(all missing or infinite)")
            cur: Any = RawSide(text)
            ctype = "cat"
        else:
            try:
                arr = array_values(values)
            except Unconvertible as exc:
                raise DataError(f"column {col.name!r} {exc.reason}") from None
            ctype = resolve_column_type(col.name, arr, declared)
            cur = clean_column(arr, ctype, name=col.name, side="current")
            del arr
        del values
        entry = column_drift(col.name, ProfileSide(col), cur, ctype, None, None)
        entry["exact"] = col.exact
        out[col.name] = entry
        del cur
    section: dict[str, Any] = build_evidence(drift=summarise(out, drift_share))["drift"]
    return section


def _window_performance(mdir: Path, w: WindowState, monitor: Monitor
                        ) -> tuple[dict[str, Any], int]:
    """Binary performance on the window's labelled rows, and how many rows that is."""
    import numpy as np
    import pyarrow.compute as pc

    from agent.checks.evidence import build_evidence
    from agent.checks.performance import ClassificationAccumulator
    from agent.columns import Unconvertible, array_values
    from agent.labels import binary_labels

    cfg, model = monitor.cfg, monitor.model
    ids = _window_column(mdir, w.parts, cfg.id_column).combine_chunks()
    pred = _window_column(mdir, w.parts, model.pred).combine_chunks()
    have = _window_labels(mdir, w)
    if have is None:
        return {}, 0
    pos = pc.index_in(ids, value_set=have.column("id").combine_chunks())
    mask = pc.is_valid(pos)
    labelled = int(pc.sum(mask).as_py() or 0)
    if not labelled:
        return {}, 0
    y = have.column("label").take(pos.filter(mask)).to_numpy().astype(np.int8)
    try:
        raw = array_values(pred.filter(mask))
    except Unconvertible as exc:
        raise DataError(f"column {model.pred!r} {exc.reason}") from None
    source = f"window {format_time(from_us(w.start))}–{format_time(from_us(w.end))}"
    p = binary_labels(raw, column=model.pred, source=source, pos_label=model.pos_label)
    acc = ClassificationAccumulator("binary", keep_scores=False)
    acc.update(y, p)
    section: dict[str, Any] = build_evidence(performance=acc.evidence())["performance"]
    return section, labelled
