"""Production monitoring (agent/monitoring.py): batches → windows → drift and performance.

Real files in temporary directories: a reference profile built as ``warden profile build``
builds it, Parquet and CSV batches renamed into an inputs directory, label files, and the
monitor's own state and spool on disk; restarts are new :class:`Monitor` objects on the same
state directory. Times are explicit (``poll(now)``), so no test sleeps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agent.checks.evidence import validate_evidence
from agent.checks.profile import ReferenceProfile
from agent.checks.profile_format import profile_to_bytes
from agent.config import ModelConfig
from agent.monitor_state import add_interval, free_pieces
from agent.monitoring import Monitor, MonitorConfig, WindowResult, parse_monitoring
from trust.canonical import canonical_json, sha256_hex
from trust.errors import ConfigError, NotFoundError, StorageUnavailableError

T0 = datetime(2026, 5, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
REPO = Path(__file__).resolve().parents[2]


def at(minutes: float) -> datetime:
    """``minutes`` after T0."""
    return T0 + timedelta(minutes=minutes)


@pytest.fixture(scope="module")
def profile_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(1)
    n = 3000
    ref = {"x": rng.normal(0.0, 1.0, n),
           "c": rng.choice(np.array(["a", "b", "c"], dtype=object), n, p=[0.5, 0.3, 0.2])}
    path = tmp_path_factory.mktemp("profile") / "ref.profile"
    path.write_bytes(profile_to_bytes(ReferenceProfile.build([ref])))
    return path


class World:
    """An inputs and a labels directory, a model, and monitors on one state directory."""

    def __init__(self, root: Path, profile: Path, **cfg: Any) -> None:
        self.root = root
        self.inputs = root / "inputs"
        self.labels = root / "labels"
        self.inputs.mkdir()
        self.labels.mkdir()
        self.state_dir = root / "state"
        self.model = ModelConfig(name="credit", data=root / "validation.csv", label="y")
        cfg.setdefault("labels", self.labels)
        if cfg["labels"] is None:
            del cfg["labels"]
        self.cfg = MonitorConfig(inputs=self.inputs, profile=profile, **cfg)
        self.rng = np.random.default_rng(7)
        self.next_id = 0

    def monitor(self) -> Monitor:
        return Monitor(self.model, self.cfg, self.state_dir)

    @property
    def spool(self) -> Path:
        return self.state_dir / "monitoring" / "credit" / "spool"

    def rows(self, minutes: Sequence[float], *, shift: float = 0.0) -> dict[str, Any]:
        n = len(minutes)
        ids = np.arange(self.next_id, self.next_id + n)
        self.next_id += n
        c = self.rng.choice(np.array(["a", "b", "c"], dtype=object), n,
                            p=[0.2, 0.3, 0.5] if shift else [0.5, 0.3, 0.2])
        return {
            "timestamp": [at(m) for m in minutes],
            "id": ids,
            "x": self.rng.normal(shift, 1.0, n),
            "c": c,
            "prediction": self.rng.integers(0, 2, n),
        }

    def publish(self, name: str, cols: dict[str, Any]) -> Path:
        """Write a batch elsewhere-then-rename, as publishers do (Parquet or CSV by name)."""
        tmp = self.inputs / f".{name}.tmp"
        if name.endswith(".csv"):
            n = len(next(iter(cols.values())))
            lines = [",".join(cols)]
            for i in range(n):
                cells = []
                for v in cols.values():
                    cell = v[i]
                    cells.append(cell.isoformat().replace("+00:00", "Z")
                                 if isinstance(cell, datetime) else str(cell))
                lines.append(",".join(cells))
            tmp.write_text("\n".join(lines) + "\n")
        else:
            table = {k: (pa.array(v, pa.timestamp("us", tz="UTC")) if k == "timestamp"
                         and isinstance(v[0], datetime) else v) for k, v in cols.items()}
            pq.write_table(pa.table(table), tmp)
        target = self.inputs / name
        tmp.rename(target)
        return target

    def label(self, name: str, ids: Sequence[Any], ys: Sequence[int]) -> Path:
        tmp = self.labels / f".{name}.partial"
        pq.write_table(pa.table({"id": list(ids), "y": list(ys)}), tmp)
        target = self.labels / name
        tmp.rename(target)
        return target


@pytest.fixture
def world(tmp_path: Path, profile_path: Path) -> World:
    return World(tmp_path, profile_path)


def minutes(start: float, end: float, n: int) -> list[float]:
    return list(np.linspace(start, end, n, endpoint=False))


def by_kind(results: list[WindowResult], kind: str) -> list[WindowResult]:
    return [r for r in results if r.kind == kind]


# -- windows, drift, evidence ---------------------------------------------------------------


def test_rows_go_to_windows_by_time_and_only_closed_windows_are_evaluated(world: World) -> None:
    # Rows over three hours in one batch; the third hour is still open at 02:30.
    world.publish("b1.parquet", world.rows(minutes(0, 180, 1200)))
    m = world.monitor()
    assert m.poll(at(59)) == []  # nothing closed yet (grace: 60 s after 01:00)
    results = m.poll(at(150))
    drift = by_kind(results, "drift")
    assert [(r.window_start, r.window_end, r.rows) for r in drift] == [
        (T0, T0 + HOUR, 400), (T0 + HOUR, T0 + 2 * HOUR, 400)]
    assert by_kind(results, "performance") == []  # labels configured, none arrived yet
    r = drift[0]
    assert r.status == "evaluated" and r.error is None and r.labels_status is None
    assert set(r.drift["columns"]) == {"x", "c"}  # type: ignore[index]
    assert r.drift["dataset_drift"] is False  # type: ignore[index]
    doc = r.to_evidence()
    assert doc["schema"] == "warden.monitoring/v1"
    assert doc["window"] == {"start": "2026-05-01T00:00:00Z", "end": "2026-05-01T01:00:00Z"}
    assert r.evidence_sha256 == sha256_hex(canonical_json(json.loads(json.dumps(doc))))
    validate_evidence(r.as_check_evidence())
    assert "prediction" not in json.dumps(doc)  # aggregates only: no row, no raw column


def test_window_drift_equals_the_profiles_compare_on_the_same_rows(world: World,
                                                                   profile_path: Path) -> None:
    rows = world.rows(minutes(0, 60, 400), shift=0.8)
    world.publish("a.parquet", {k: v[:250] for k, v in rows.items()})
    world.publish("b.csv", {k: v[250:] for k, v in rows.items()})
    (result,) = world.monitor().poll(at(62))
    from agent.checks.evidence import build_evidence
    from agent.checks.files import load_profile

    expected = build_evidence(drift=load_profile(profile_path).compare(
        {"x": np.asarray(rows["x"]), "c": np.asarray(rows["c"], dtype=object)}))["drift"]
    assert result.to_evidence()["drift"] == expected
    assert result.drift["dataset_drift"] is True  # type: ignore[index]
    assert result.drift["columns"]["x"]["drifted"] is True  # type: ignore[index]


def test_iso_text_with_offsets_and_without_all_place_rows_in_utc_windows(world: World) -> None:
    rows = world.rows(minutes(0, 150, 150))
    texts = []
    for i, t in enumerate(rows["timestamp"]):
        if i % 3 == 0:
            texts.append(t.isoformat().replace("+00:00", "Z"))
        elif i % 3 == 1:
            texts.append(t.astimezone(__import__("datetime").timezone(timedelta(hours=2)))
                         .isoformat())
        else:
            texts.append(t.replace(tzinfo=None).isoformat())  # no offset: UTC
    rows["timestamp"] = texts
    world.publish("mixed.csv", rows)
    drift = by_kind(world.monitor().poll(at(130)), "drift")
    assert [(r.window_start, r.rows) for r in drift] == [(T0, 60), (T0 + HOUR, 60)]


def test_a_window_below_min_rows_is_recorded_too_small_without_a_verdict(world: World) -> None:
    world.publish("few.parquet", world.rows(minutes(0, 60, 40)))
    results = world.monitor().poll(at(62))
    assert [(r.kind, r.status, r.rows, r.drift) for r in results] == [
        ("drift", "too_small", 40, None), ("performance", "too_small", 40, None)]


def test_a_backlog_at_first_start_is_evaluated_not_dropped(world: World) -> None:
    world.publish("old.parquet", world.rows(minutes(0, 120, 300)))
    results = world.monitor().poll(T0 + timedelta(days=3))
    assert [(r.kind, r.window_start) for r in by_kind(results, "drift")] == [
        ("drift", T0), ("drift", T0 + HOUR)]
    # Labels never came for these windows, and their wait is long over.
    assert {r.status for r in by_kind(results, "performance")} == {"labels_missing"}


# -- exactly once ---------------------------------------------------------------------------


def test_restart_returns_uncommitted_results_again_never_committed_ones(world: World) -> None:
    world.cfg = MonitorConfig(inputs=world.inputs, profile=world.cfg.profile)  # no labels
    world.publish("b1.parquet", world.rows(minutes(0, 120, 300)))
    m = world.monitor()
    first, second = m.poll(at(125))
    m.commit(first)
    m.commit(first)  # idempotent
    assert not (world.spool / f"w{_us(T0)}_{_us(T0 + HOUR)}").exists()  # fully done: removed
    assert (world.spool / f"w{_us(T0 + HOUR)}_{_us(T0 + 2 * HOUR)}").is_dir()

    # A restart: the committed window is not evaluated again; the other one is, from the
    # spool (the input file is gone), with the same numbers and digest.
    (world.inputs / "b1.parquet").unlink()
    again = world.monitor().poll(at(130))
    assert [r.result_id for r in again] == [second.result_id]
    assert again[0].evidence_sha256 == second.evidence_sha256
    restarted = world.monitor()
    restarted.commit(restarted.poll(at(131))[0])
    assert world.monitor().poll(at(140)) == []
    assert not any(world.spool.iterdir())

    # Rows for a window already recorded arrive late: dropped, and said so.
    world.publish("late.parquet", world.rows(minutes(10, 20, 20)))
    (late,) = world.monitor().poll(at(141))
    assert late.kind == "input" and late.rows == 20 and "already evaluated" in (late.error or "")
    assert late.source == "inputs/late.parquet"
    with pytest.raises(NotFoundError):
        world.monitor().commit(WindowResult(
            model="credit", kind="drift", window_start=T0 + 5 * HOUR, window_end=T0 + 6 * HOUR,
            rows=1, status="evaluated"))


def _us(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000


def test_a_damaged_state_file_is_refused_not_taken_as_nothing_evaluated(world: World) -> None:
    world.publish("b1.parquet", world.rows(minutes(0, 60, 150)))
    m = world.monitor()
    m.poll(at(30))
    state = world.state_dir / "monitoring" / "credit" / "state.json"
    state.write_text(state.read_text()[:40])
    with pytest.raises(StorageUnavailableError, match="damaged"):
        world.monitor().poll(at(62))
    state.write_text(json.dumps({"format": "warden.monitor-state", "version": 99}))
    with pytest.raises(StorageUnavailableError, match="version 99"):
        world.monitor().poll(at(62))


def test_ignored_names_wait_until_renamed_and_each_batch_is_read_once(world: World) -> None:
    rows = world.rows(minutes(0, 60, 150))
    pq.write_table(pa.table({**rows, "timestamp": pa.array(rows["timestamp"],
                                                           pa.timestamp("us", tz="UTC"))}),
                   world.inputs / "b1.parquet.partial")
    (world.inputs / ".hidden.parquet").write_bytes(b"garbage")
    (world.inputs / "b2.parquet.tmp").write_bytes(b"garbage")
    m = world.monitor()
    assert m.poll(at(30)) == []
    (world.inputs / "b1.parquet.partial").rename(world.inputs / "b1.parquet")
    m.poll(at(31))
    os.utime(world.inputs / "b1.parquet")  # touched, same bytes: not read twice
    (world.inputs / "copy.parquet").write_bytes((world.inputs / "b1.parquet").read_bytes())
    results = world.monitor().poll(at(62))
    (dup,) = by_kind(results, "input")
    assert "same content as batch 'b1.parquet'" in (dup.error or "")
    assert by_kind(results, "drift")[0].rows == 150


# -- bad input ------------------------------------------------------------------------------


def test_a_batch_missing_a_column_is_refused_and_its_window_gets_no_verdict(world: World) -> None:
    world.publish("good.parquet", world.rows(minutes(0, 60, 150)))
    bad = world.rows(minutes(0, 60, 150))
    del bad["c"]
    world.publish("bad.parquet", bad)
    results = world.monitor().poll(at(62))
    (refused,) = by_kind(results, "input")
    assert refused.source == "inputs/bad.parquet" and refused.rows == 150
    assert "bad.parquet" in (refused.error or "") and "'c'" in (refused.error or "")
    (drift,) = by_kind(results, "drift")
    assert drift.status == "error" and drift.drift is None
    assert "batch 'bad.parquet' was refused" in (drift.error or "")
    assert drift.rows == 150  # the good batch is spooled, but no partial verdict is given
    (perf,) = by_kind(results, "performance")
    assert perf.status == "error"


def test_a_new_column_is_ignored_with_a_note_and_drift_uses_the_profiles_columns(
        world: World) -> None:
    world.publish("b1.parquet", {**world.rows(minutes(0, 60, 150)), "channel": ["web"] * 150})
    (drift,) = by_kind(world.monitor().poll(at(62)), "drift")
    assert drift.status == "evaluated"
    assert set(drift.drift["columns"]) == {"x", "c"}  # type: ignore[index]
    assert any("'channel' is not in the reference profile" in n for n in drift.notes)


def test_unparsable_times_name_the_file_column_and_row(world: World) -> None:
    rows = world.rows(minutes(0, 60, 150))
    rows["timestamp"] = [t.isoformat() for t in rows["timestamp"]]
    rows["timestamp"][41] = "yesterday noon"
    world.publish("b1.csv", rows)
    (bad,) = world.monitor().poll(at(62))
    assert bad.kind == "input"
    assert "b1.csv" in (bad.error or "") and "'timestamp'" in (bad.error or "")
    assert "data row 42" in (bad.error or "") and "'yesterday noon'" in (bad.error or "")


def test_epoch_numbers_as_times_are_refused_as_ambiguous(world: World) -> None:
    rows = world.rows(minutes(0, 60, 150))
    rows["timestamp"] = [int(t.timestamp()) for t in rows["timestamp"]]
    world.publish("b1.parquet", rows)
    (bad,) = world.monitor().poll(at(62))
    assert "ISO-8601 text or a timestamp" in (bad.error or "")


def test_a_garbled_batch_becomes_an_input_result_and_others_go_on(world: World) -> None:
    (world.inputs / "garbled.parquet").write_bytes(b"PAR1 this is not parquet at all")
    world.publish("good.parquet", world.rows(minutes(0, 60, 150)))
    results = world.monitor().poll(at(62))
    (garbled,) = by_kind(results, "input")
    assert garbled.source == "inputs/garbled.parquet"
    assert "not a readable Parquet file" in (garbled.error or "")
    assert by_kind(results, "drift")[0].status == "evaluated"
    # Reported once: committed, it stays quiet while the file does not change.
    m = world.monitor()
    m.commit(garbled)
    assert by_kind(m.poll(at(63)), "input") == []


def test_text_where_the_profile_has_numbers_is_refused(world: World) -> None:
    rows = world.rows(minutes(0, 60, 150))
    rows["x"] = ["high"] * 150
    world.publish("b1.parquet", rows)
    results = world.monitor().poll(at(62))
    assert "'x'" in (by_kind(results, "input")[0].error or "")
    assert by_kind(results, "drift")[0].status == "error"


def test_a_batch_rewritten_after_ingestion_is_not_ingested_again(world: World) -> None:
    path = world.publish("b1.parquet", world.rows(minutes(0, 60, 150)))
    m = world.monitor()
    m.poll(at(10))
    pq.write_table(pa.table({"x": [1.0]}), path)
    (changed,) = m.poll(at(20))
    assert "changed after it was ingested" in (changed.error or "")
    (drift,) = by_kind(m.poll(at(62)), "drift")
    assert drift.rows == 150


# -- labels and performance -----------------------------------------------------------------


def _accuracy(pred: Sequence[int], y: Sequence[int]) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(y)))


def test_performance_joins_labels_by_id_once_every_row_is_labelled(world: World) -> None:
    rows = world.rows(minutes(0, 60, 200))
    world.publish("b1.parquet", rows)
    y = world.rng.integers(0, 2, 200)
    m = world.monitor()
    m.poll(at(30))
    # Half the labels before close (ids as text in the labels, whole numbers in the batch).
    world.label("l1.parquet", [str(i) for i in rows["id"][:100]], y[:100])
    results = m.poll(at(62))
    assert [r.kind for r in results] == ["drift"]  # performance waits for the other half
    world.label("l2.parquet", [str(i) for i in rows["id"][100:]], y[100:])
    results = world.monitor().poll(at(90))  # after a restart, too
    (perf,) = by_kind(results, "performance")
    assert perf.status == "evaluated" and perf.labels_status == "complete"
    assert perf.labelled_rows == 200
    assert perf.performance["accuracy"] == pytest.approx(  # type: ignore[index]
        _accuracy(rows["prediction"], y))
    assert perf.performance["confusion_matrix"]["tp"] == int(  # type: ignore[index]
        np.sum((rows["prediction"] == 1) & (y == 1)))
    validate_evidence(perf.as_check_evidence())


def test_drift_and_performance_come_together_when_labels_are_in_at_close(world: World) -> None:
    rows = world.rows(minutes(0, 60, 150))
    world.publish("b1.parquet", rows)
    world.label("l1.parquet", rows["id"], world.rng.integers(0, 2, 150))
    results = world.monitor().poll(at(62))
    assert [(r.kind, r.status) for r in results] == [("drift", "evaluated"),
                                                     ("performance", "evaluated")]


def test_labels_published_before_their_rows_are_kept_for_them(world: World) -> None:
    rows = world.rows(minutes(0, 60, 150))
    y = world.rng.integers(0, 2, 150)
    m = world.monitor()
    m.poll(at(0))
    world.label("early.parquet", rows["id"], y)
    m.poll(at(5))
    world.publish("b1.parquet", rows)
    perf = by_kind(m.poll(at(62)), "performance")[0]
    assert (perf.labels_status, perf.labelled_rows) == ("complete", 150)


def test_labels_that_never_arrive_are_recorded_missing_after_the_wait(world: World) -> None:
    world.publish("b1.parquet", world.rows(minutes(0, 60, 150)))
    m = world.monitor()
    m.commit(by_kind(m.poll(at(62)), "drift")[0])
    assert m.poll(at(60 + 23 * 60)) == []  # still waiting (labels_wait_s: one day)
    (perf,) = m.poll(at(61 + 24 * 60 + 1))
    assert (perf.kind, perf.status, perf.performance) == ("performance", "labels_missing", None)
    assert (perf.labels_status, perf.labelled_rows) == ("missing", 0)
    m.commit(perf)
    assert not any(world.spool.iterdir())  # both results recorded: the spool is gone


def test_partial_labels_at_the_deadline_give_performance_on_the_labelled_rows(
        world: World) -> None:
    rows = world.rows(minutes(0, 60, 300))
    world.publish("b1.parquet", rows)
    y = world.rng.integers(0, 2, 300)
    world.label("l1.parquet", rows["id"][:200], y[:200])
    m = world.monitor()
    assert by_kind(m.poll(at(62)), "performance") == []
    (perf,) = by_kind(m.poll(at(62 + 24 * 60)), "performance")
    assert (perf.status, perf.labels_status, perf.labelled_rows) == ("evaluated", "partial", 200)
    assert perf.performance["accuracy"] == pytest.approx(  # type: ignore[index]
        _accuracy(rows["prediction"][:200], y[:200]))
    # The verdict is fixed: labels arriving now change nothing, even after a restart.
    world.label("l2.parquet", rows["id"][200:], y[200:])
    (again,) = by_kind(world.monitor().poll(at(63 + 24 * 60)), "performance")
    assert again.evidence_sha256 == perf.evidence_sha256


def test_a_labels_file_with_duplicate_ids_is_refused_and_the_window_waits(world: World) -> None:
    rows = world.rows(minutes(0, 60, 150))
    world.publish("b1.parquet", rows)
    y = world.rng.integers(0, 2, 150)
    dup_ids = [*rows["id"][:149], rows["id"][3]]
    world.label("dup.parquet", dup_ids, y)
    m = world.monitor()
    results = m.poll(at(62))
    (refused,) = by_kind(results, "input")
    assert refused.source == "labels/dup.parquet"
    assert "dup.parquet" in (refused.error or "") and f"id '{rows['id'][3]}'" in (
        refused.error or "")
    assert "appears 2 times" in (refused.error or "")
    assert by_kind(results, "performance") == []  # waits for a corrected file
    world.label("fixed.parquet", rows["id"], y)
    perf = by_kind(m.poll(at(70)), "performance")[0]
    assert perf.labels_status == "complete"
    assert perf.performance["accuracy"] == pytest.approx(  # type: ignore[index]
        _accuracy(rows["prediction"], y))


def test_a_labels_file_without_the_label_column_is_refused(world: World) -> None:
    pq.write_table(pa.table({"id": [1, 2]}), world.labels / "nolabel.parquet")
    (refused,) = world.monitor().poll(at(1))
    assert "nolabel.parquet" in (refused.error or "") and "'y'" in (refused.error or "")


# -- production status ----------------------------------------------------------------------


def test_hours_below_threshold_counts_the_latest_run_of_low_accuracy_windows(
        world: World) -> None:
    world.cfg = MonitorConfig(inputs=world.inputs, profile=world.cfg.profile,
                              labels=world.labels, labels_wait_s=0)
    # Five hourly windows; accuracy by hour: good, bad, (no labels), bad, bad.
    accuracy_good = [True, False, None, False, False]
    for h, good in enumerate(accuracy_good):
        rows = world.rows(minutes(60 * h, 60 * h + 60, 120))
        world.publish(f"h{h}.parquet", rows)
        if good is not None:
            pred = np.asarray(rows["prediction"])
            y = pred if good else 1 - pred
            world.label(f"l{h}.parquet", rows["id"], y)
    m = world.monitor()
    for r in m.poll(at(5 * 60 + 2)):
        m.commit(r)
    status = m.production_status(min_accuracy=0.8, now=at(5 * 60 + 2))
    assert status.accuracy == 0.0
    assert status.hours_below_threshold == pytest.approx(3.0)  # hours 1, 3, 4 (2 unmeasured)
    assert status.drift_alert is None
    assert m.production_status(min_accuracy=0.0, now=at(302)).hours_below_threshold == 0.0
    # Since a redeployment at 03:00 only hours 3 and 4 count, and the age is known.
    since = m.production_status(min_accuracy=0.8, now=at(302), since=T0 + 3 * HOUR)
    assert (since.hours_below_threshold, since.deployment_age_hours) == (2.0, pytest.approx(
        2 + 2 / 60))
    assert [h.kind for h in world.monitor().history("performance")] == ["performance"] * 5
    assert m.production_status(min_accuracy=None, now=at(302)).hours_below_threshold is None


# -- configuration and footprint ------------------------------------------------------------


def test_parse_monitoring_resolves_paths_and_applies_defaults(tmp_path: Path) -> None:
    cfg = parse_monitoring({"inputs": "inference", "profile": "ref.profile", "labels": "/l",
                            "window_s": 900, "columns": ["x", "c"]},
                           at="models[0].monitoring", where="agent.yaml", base=tmp_path)
    assert cfg.inputs == tmp_path / "inference" and cfg.profile == tmp_path / "ref.profile"
    assert cfg.labels == Path("/l") and cfg.window_s == 900 and cfg.columns == ("x", "c")
    assert (cfg.grace_s, cfg.time_column, cfg.id_column, cfg.min_rows) == (60, "timestamp",
                                                                           "id", 100)


@pytest.mark.parametrize(("value", "message"), [
    ({"inputs": "i"}, "missing key models[0].monitoring.profile"),
    ({"inputs": "i", "profile": "p", "window": 60}, "unknown key models[0].monitoring.window"),
    ({"inputs": "i", "profile": "p", "window_s": 90.5}, "whole number of seconds"),
    ({"inputs": "i", "profile": "p", "window_s": 0}, "whole number of seconds"),
    ({"inputs": "i", "profile": "p", "grace_s": -1}, "grace_s must be"),
    ({"inputs": "i", "profile": "p", "min_rows": 2.5}, "whole number"),
    ({"inputs": "i", "profile": "p", "drift_share": 0}, "drift_share"),
    ({"inputs": "i", "profile": "p", "labels": "i"}, "same directory"),
    ({"inputs": "i", "profile": "p", "columns": ["x", "x"]}, "twice"),
    ({"inputs": "i", "profile": "p", "columns": "x"}, "list of column names"),
    ({"inputs": "i", "profile": "p", "id_column": "timestamp"}, "both"),
    ("i", "must be a mapping"),
])
def test_parse_monitoring_refuses_bad_values_naming_file_and_key(
        tmp_path: Path, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match="agent.yaml") as exc:
        parse_monitoring(value, at="models[0].monitoring", where="agent.yaml", base=tmp_path)
    assert message in exc.value.message


def test_monitoring_columns_must_be_in_the_profile(tmp_path: Path, profile_path: Path) -> None:
    w = World(tmp_path, profile_path, columns=("x", "income"))
    w.publish("b1.parquet", w.rows(minutes(0, 60, 150)))
    with pytest.raises(ConfigError, match="'income' is not in the reference profile"):
        w.monitor().poll(at(62))


def test_a_missing_inputs_directory_is_an_error_not_silence(world: World) -> None:
    world.inputs.rmdir()
    with pytest.raises(Exception, match="does not exist"):
        world.monitor().poll(at(1))


def test_importing_and_an_idle_poll_load_nothing_heavy(world: World) -> None:
    world.publish("b1.parquet", world.rows(minutes(0, 60, 150)))
    m = world.monitor()
    for r in m.poll(at(62 + 24 * 60)):
        m.commit(r)
    code = """
import sys
from datetime import datetime, UTC
from pathlib import Path
import agent.monitoring as mon
from agent.config import ModelConfig
heavy = ("numpy", "pyarrow", "scipy", "pandas")
assert not [h for h in heavy if h in sys.modules], "import"
inputs, profile, labels, state = map(Path, sys.argv[1:])
cfg = mon.MonitorConfig(inputs=inputs, profile=profile, labels=labels)
m = mon.Monitor(ModelConfig(name="credit", data=Path("/x"), label="y"), cfg, state)
assert m.poll(datetime(2026, 5, 3, tzinfo=UTC)) == []
print(sorted(h for h in heavy if h in sys.modules))
"""
    args = [str(p) for p in (world.inputs, world.cfg.profile, world.labels, world.state_dir)]
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_intervals_merge_and_new_windows_never_overlap_old_ones() -> None:
    assert add_interval([(0, 10), (20, 30)], 10, 20) == [(0, 30)]
    assert add_interval([(0, 10)], 15, 18) == [(0, 10), (15, 18)]
    assert add_interval([(5, 10)], 0, 2) == [(0, 2), (5, 10)]
    assert free_pieces(0, 60, [(10, 20), (30, 70)]) == [(0, 10), (20, 30)]
    assert free_pieces(0, 60, []) == [(0, 60)]
    assert free_pieces(0, 60, [(-5, 100)]) == []


def test_a_changed_window_length_keeps_existing_windows_and_fills_around_them(
        tmp_path: Path, profile_path: Path) -> None:
    w = World(tmp_path, profile_path, labels=None)
    w.publish("b1.parquet", w.rows(minutes(0, 60, 150)))
    w.monitor().poll(at(30))  # window 00:00-01:00 exists, still open
    w.cfg = MonitorConfig(inputs=w.inputs, profile=profile_path, window_s=5400)  # 90 min
    w.publish("b2.parquet", w.rows(minutes(40, 120, 200)))
    drift = by_kind(w.monitor().poll(at(200)), "drift")
    # 40-60 min join the old window; 60-90 fill what the old window leaves of 00:00-01:30;
    # 90-120 start the 01:30-03:00 window.
    assert [(r.window_start, r.window_end, r.rows) for r in drift] == [
        (T0, T0 + HOUR, 200), (T0 + HOUR, at(90), 75), (at(90), at(180), 75)]
