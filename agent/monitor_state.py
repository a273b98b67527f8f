"""The monitoring state of one model at a node: what was ingested, spooled, evaluated, recorded.

One JSON file, ``state_dir/monitoring/<model>/state.json`` (schema
``warden.monitor-state/v1``), owned by :class:`agent.monitoring.Monitor`; this module holds
its shape, reading and writing, and the interval arithmetic of windows. It imports nothing
heavy (the idle daemon loads it).

Invariants:

* The file is replaced whole (temporary file, fsync, rename, directory fsync): a crash leaves
  the previous state or the new one, never a torn file.
* A file that cannot be read, does not parse, or is not this schema raises
  :class:`~trust.errors.StorageUnavailableError` — never "nothing evaluated": starting
  afresh would re-ingest every batch and record every window a second time. A file that does
  not exist is the first run (nothing ingested yet).
* A write that fails is :class:`~trust.errors.StorageFullError` (no space, quota) or
  :class:`~trust.errors.StorageUnavailableError`; the state in memory is then ahead of the
  disk, so the caller must not act on it as committed.
* Times are whole microseconds since the Unix epoch (UTC) throughout; windows are half-open
  ``[start, end)`` and never overlap one another nor a finished (``done``) interval.
"""

from __future__ import annotations

import errno
import json
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from trust._internal.files import replace_file
from trust.errors import StorageFullError, StorageUnavailableError

__all__ = [
    "STATE_FORMAT",
    "STATE_VERSION",
    "FileState",
    "HistoryEntry",
    "MonitorState",
    "Part",
    "PoolEntry",
    "WindowState",
    "add_interval",
    "free_pieces",
    "from_us",
    "load_state",
    "save_state",
    "to_us",
]

STATE_FORMAT = "warden.monitor-state"
STATE_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(t: datetime) -> int:
    """Whole microseconds since the epoch of an aware datetime."""
    delta = t.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    """The aware UTC datetime of ``us`` microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=us)


def _storage_error(path: Path, exc: OSError, what: str) -> StorageUnavailableError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFullError(f"{path}: {what} ({reason})",
                                hint="free disk space; monitoring resumes on the next pass")
    return StorageUnavailableError(f"{path}: {what} ({reason})")


@dataclass
class Part:
    """One Parquet file of spooled rows (or labels), relative to the model's monitor dir."""

    file: str  # the batch or labels file the rows came from
    path: str
    rows: int


@dataclass
class FileState:
    """What was seen of one input file: identity, and what became of it."""

    size: int
    mtime_ns: int
    sha256: str | None
    status: str  # "ingested" | "rejected"
    last_end: int | None = None  # the latest end of a window it gave rows to


@dataclass
class PoolEntry:
    """A labels file kept for rows that arrive after it (labels join by id)."""

    file: str
    path: str
    rows: int
    ingested: int


@dataclass
class WindowState:
    """One window ``[start, end)`` with rows spooled and not yet fully recorded."""

    start: int
    end: int
    rows: int = 0
    parts: list[Part] = field(default_factory=list)
    # Batches with rows in this window that were refused (missing column, bad type): the
    # window's data is incomplete, so its verdicts are errors, never a partial "no drift".
    problems: list[str] = field(default_factory=list)
    # Columns in batches that the profile does not have: column -> first batch naming it.
    extra_columns: dict[str, str] = field(default_factory=dict)
    closed: bool = False
    drift_done: bool = False
    # Labels are no longer added once performance was evaluated (re-evaluation repeats it).
    perf_frozen: bool = False
    perf_done: bool = False
    labelled: int = 0
    label_parts: list[Part] = field(default_factory=list)
    relabelled: int = 0  # ids a later labels file labelled again (the first label is kept)
    unidentified: int = 0  # rows without an id: they can never be joined with a label

    @property
    def key(self) -> str:
        """The window's directory name under ``spool/``."""
        return f"w{self.start}_{self.end}"


@dataclass(frozen=True)
class HistoryEntry:
    """One recorded (committed) result, as production status needs it."""

    kind: str
    start: int
    end: int
    status: str
    evidence_sha256: str
    accuracy: float | None = None
    share_drifted: float | None = None
    dataset_drift: bool | None = None
    labelled_rows: int | None = None

    @property
    def window_start(self) -> datetime:
        """Start of the window (UTC)."""
        return from_us(self.start)

    @property
    def window_end(self) -> datetime:
        """End of the window (UTC, exclusive)."""
        return from_us(self.end)


@dataclass
class MonitorState:
    """Everything a monitor keeps between polls (and restarts)."""

    model: str
    high_water: int | None = None  # the latest ``now`` seen (the clock never goes back)
    files: dict[str, FileState] = field(default_factory=dict)
    label_files: dict[str, FileState] = field(default_factory=dict)
    windows: list[WindowState] = field(default_factory=list)  # sorted by start
    done: list[tuple[int, int]] = field(default_factory=list)  # merged, sorted intervals
    pool: list[PoolEntry] = field(default_factory=list)
    pending_inputs: list[dict[str, Any]] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)

    def window(self, start: int, end: int) -> WindowState | None:
        """The window with exactly these bounds, if any."""
        return next((w for w in self.windows if w.start == start and w.end == end), None)

    def occupied(self) -> list[tuple[int, int]]:
        """Sorted, merged intervals no new window may overlap (windows and done spans)."""
        out: list[tuple[int, int]] = []
        for s, e in [(w.start, w.end) for w in self.windows]:
            out = add_interval(out, s, e)
        for s, e in self.done:
            out = add_interval(out, s, e)
        return out

    def is_done(self, t: int) -> bool:
        """Whether time ``t`` lies in a window already fully recorded."""
        i = bisect_right([s for s, _ in self.done], t) - 1
        return i >= 0 and t < self.done[i][1]


def add_interval(intervals: list[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    """``intervals`` (sorted, disjoint) with ``[start, end)`` merged in; touching ones join."""
    out: list[tuple[int, int]] = []
    s, e = start, end
    placed = False
    for a, b in intervals:
        if b < s:
            out.append((a, b))
        elif e < a:
            if not placed:
                out.append((s, e))
                placed = True
            out.append((a, b))
        else:
            s, e = min(s, a), max(e, b)
    if not placed:
        out.append((s, e))
    out.sort()
    return out


def free_pieces(start: int, end: int, occupied: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``[start, end)`` that no interval of ``occupied`` covers, in order."""
    out: list[tuple[int, int]] = []
    cur = start
    for a, b in occupied:
        if b <= cur or a >= end:
            continue
        if a > cur:
            out.append((cur, a))
        cur = max(cur, b)
        if cur >= end:
            break
    if cur < end:
        out.append((cur, end))
    return out


# -- the file -------------------------------------------------------------------------------


def _part(d: dict[str, Any]) -> Part:
    return Part(file=str(d["file"]), path=str(d["path"]), rows=int(d["rows"]))


def _file_state(d: dict[str, Any]) -> FileState:
    sha = d.get("sha256")
    last = d.get("last_end")
    return FileState(size=int(d["size"]), mtime_ns=int(d["mtime_ns"]),
                     sha256=None if sha is None else str(sha), status=str(d["status"]),
                     last_end=None if last is None else int(last))


def _window_state(d: dict[str, Any]) -> WindowState:
    return WindowState(
        start=int(d["start"]), end=int(d["end"]), rows=int(d["rows"]),
        parts=[_part(p) for p in d["parts"]], problems=[str(p) for p in d["problems"]],
        extra_columns={str(k): str(v) for k, v in d["extra_columns"].items()},
        closed=bool(d["closed"]), drift_done=bool(d["drift_done"]),
        perf_frozen=bool(d["perf_frozen"]), perf_done=bool(d["perf_done"]),
        labelled=int(d["labelled"]), label_parts=[_part(p) for p in d["label_parts"]],
        relabelled=int(d["relabelled"]), unidentified=int(d["unidentified"]))


def _history(d: dict[str, Any]) -> HistoryEntry:
    def opt(key: str, kind: type) -> Any:
        v = d.get(key)
        return None if v is None else kind(v)

    return HistoryEntry(kind=str(d["kind"]), start=int(d["start"]), end=int(d["end"]),
                        status=str(d["status"]), evidence_sha256=str(d["evidence_sha256"]),
                        accuracy=opt("accuracy", float), share_drifted=opt("share_drifted", float),
                        dataset_drift=opt("dataset_drift", bool),
                        labelled_rows=opt("labelled_rows", int))


def _decode(doc: Any, model: str) -> MonitorState:
    if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
        raise ValueError(f"not a {STATE_FORMAT} document")
    if doc.get("version") != STATE_VERSION:
        raise ValueError(f"version {doc.get('version')!r}; this Warden reads {STATE_VERSION}")
    if doc.get("model") != model:
        raise ValueError(f"it is the state of model {doc.get('model')!r}, not {model!r}")
    hw = doc["high_water"]
    return MonitorState(
        model=model,
        high_water=None if hw is None else int(hw),
        files={str(k): _file_state(v) for k, v in doc["files"].items()},
        label_files={str(k): _file_state(v) for k, v in doc["label_files"].items()},
        windows=sorted((_window_state(w) for w in doc["windows"]), key=lambda w: w.start),
        done=[(int(a), int(b)) for a, b in doc["done"]],
        pool=[PoolEntry(file=str(p["file"]), path=str(p["path"]), rows=int(p["rows"]),
                        ingested=int(p["ingested"])) for p in doc["pool"]],
        pending_inputs=[dict(p) for p in doc["pending_inputs"]],
        history=[_history(h) for h in doc["history"]],
    )


def load_state(path: Path, model: str) -> MonitorState:
    """The state at ``path``; a fresh one if the file does not exist (see module invariants)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return MonitorState(model=model)
    except OSError as exc:
        raise _storage_error(path, exc, "cannot read the monitoring state") from None
    try:
        return _decode(json.loads(data.decode("utf-8")), model)
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        raise StorageUnavailableError(
            f"{path}: the monitoring state is damaged ({reason}); refusing to monitor rather "
            "than evaluate and record every window again",
            hint=f"restore {path}, or remove {path.parent} to start afresh (every batch still "
            "in the inputs directory is then ingested and its windows recorded again)",
        ) from None


def _encode(state: MonitorState) -> dict[str, Any]:
    def part(p: Part) -> dict[str, Any]:
        return {"file": p.file, "path": p.path, "rows": p.rows}

    def fstate(f: FileState) -> dict[str, Any]:
        return {"size": f.size, "mtime_ns": f.mtime_ns, "sha256": f.sha256, "status": f.status,
                "last_end": f.last_end}

    return {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "model": state.model,
        "high_water": state.high_water,
        "files": {k: fstate(v) for k, v in sorted(state.files.items())},
        "label_files": {k: fstate(v) for k, v in sorted(state.label_files.items())},
        "windows": [
            {"start": w.start, "end": w.end, "rows": w.rows, "parts": [part(p) for p in w.parts],
             "problems": w.problems, "extra_columns": w.extra_columns, "closed": w.closed,
             "drift_done": w.drift_done, "perf_frozen": w.perf_frozen, "perf_done": w.perf_done,
             "labelled": w.labelled, "label_parts": [part(p) for p in w.label_parts],
             "relabelled": w.relabelled, "unidentified": w.unidentified}
            for w in state.windows
        ],
        "done": [[a, b] for a, b in state.done],
        "pool": [{"file": p.file, "path": p.path, "rows": p.rows, "ingested": p.ingested}
                 for p in state.pool],
        "pending_inputs": state.pending_inputs,
        "history": [
            {"kind": h.kind, "start": h.start, "end": h.end, "status": h.status,
             "evidence_sha256": h.evidence_sha256, "accuracy": h.accuracy,
             "share_drifted": h.share_drifted, "dataset_drift": h.dataset_drift,
             "labelled_rows": h.labelled_rows}
            for h in state.history
        ],
    }


def save_state(path: Path, state: MonitorState) -> None:
    """Replace the state file whole and durably (see module invariants)."""
    data = json.dumps(_encode(state), sort_keys=True, separators=(",", ":"),
                      allow_nan=False).encode("utf-8") + b"\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, data)
    except OSError as exc:
        raise _storage_error(path, exc, "cannot save the monitoring state") from None
