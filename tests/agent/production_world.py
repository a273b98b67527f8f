"""A node with a governed history and production monitoring, for ``test_production.py``.

The history is decided by the real :class:`~agent.validation.Governor` under the signed
standard bundle (both approvals, the validation data as the model's ``reference``), in this
order, all for ``production``:

====== ===================================== ==========
1.8    exact classifier (accuracy 1.0)        promoted
1.9    threshold off by 5 (accuracy 0.95)     promoted
1.10   threshold far off (accuracy ~0.7)      blocked (performance.min_accuracy)
2.0    exact classifier                       promoted — in production
====== ===================================== ==========

So a rollback from 2.0 must land on 1.9 (not the blocked 1.10, not the older 1.8), and one
from 1.9 on 1.8 (not back on 2.0, the newest passing version, which it was rolled back
from). Each test works on a copy of the node directory (:class:`Node`), with its own
inference and labels directories and a real :class:`~agent.outbox.Outbox`; the pointer
moves go through :class:`MoveLog`, a real :class:`~agent.registry.DirectoryRegistry` that
notes which record was the last one written when each move was made.

Monitoring windows are one minute (``window_s`` 60, ``grace_s`` 0) from :data:`T0`, an hour
after the promotions; :func:`window` gives window ``k``'s bounds, and a pass at
``window(k)[1]`` closes it.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from agent.checks.profile import ReferenceProfile
from agent.checks.profile_format import profile_to_bytes
from agent.config import PRODUCTION_STAGE, AgentConfig, ModelConfig
from agent.data import read_columns
from agent.hooks import Hook
from agent.monitoring import MonitorConfig
from agent.outbox import Outbox
from agent.production import PRODUCTION_FILE, Notice, ProductionWatch
from agent.registry import DirectoryRegistry
from agent.validation import Governor, OutcomeKind
from tests.agent import _world
from tests.agent.test_rollback import (
    approvals_for,
    classifier,
    publish,
    write_validation_data,
)
from trust.canonical import Sha256
from trust.errors import StorageUnavailableError
from trust.policy.bundle import PolicyBundle
from trust.policy.engine import PolicyEngine
from trust.record import AuditRecord
from trust.root import TrustRoot
from trust.stream import NodeId

NOW = _world.NOW
T0 = NOW + timedelta(hours=1)
WINDOW_S = 60
NAME = "credit-risk"
NODE_ID = "production-1"
NODE_KEY = _world.key("node-production-1")
DRIFT_COLUMNS = ("income", "age")
LOG = logging.getLogger("test.production")

# (version, decision bias on income: class 1 when 0.1 * income + bias > 0, outcome)
HISTORY = (
    ("1.8", -3.95, OutcomeKind.PROMOTED),
    ("1.9", -4.45, OutcomeKind.PROMOTED),
    ("1.10", -7.05, OutcomeKind.BLOCKED),
    ("2.0", -3.95, OutcomeKind.PROMOTED),
)


def window(k: int) -> tuple[datetime, datetime]:
    """Window ``k`` (0 = the one starting at :data:`T0`): ``[start, end)``."""
    start = T0 + timedelta(seconds=WINDOW_S * k)
    return start, start + timedelta(seconds=WINDOW_S)


@dataclass(frozen=True)
class History:
    """The governed node directory (never altered: tests copy it) and what governed it."""

    dir: Path
    root: Path
    model: ModelConfig
    profile: Path
    bundle: PolicyBundle
    engine: PolicyEngine
    trust_root: TrustRoot
    decided: dict[str, dict[str, Any]]
    # version -> the seq of its promote/block record
    seqs: dict[str, int]


@contextmanager
def governed_history(base: Path) -> Iterator[History]:
    """Govern :data:`HISTORY` into ``base/node``; the history, its engine open meanwhile."""
    node = base / "node"
    models = node / "models"
    models.mkdir(parents=True)
    root = _world.write_root(base / "root.json")
    bundle_file = _world.write_standard_bundle(base / "standard.bundle")
    trust_root = TrustRoot.load(root, now=NOW)
    bundle = PolicyBundle.from_envelope(bundle_file.read_bytes(), trust_root, now=NOW)
    data = write_validation_data(base / "validation.csv")
    # The reference profile of the monitored columns, as `warden profile build` makes it
    # from the model's reference data.
    profile = base / "reference.profile"
    profile.write_bytes(profile_to_bytes(ReferenceProfile.build(
        [read_columns(data, list(DRIFT_COLUMNS))])))
    train = b"income,age,repaid\n1,30,0\n90,40,1\n"
    model = ModelConfig(name=NAME, data=data, label="repaid", sensitive=("sex",),
                        reference=data)
    config = AgentConfig(node_id=NodeId(NODE_ID), hub="127.0.0.1:7443", insecure=True,
                         state_dir=node, registry=models, models=(model,))
    outbox = Outbox.open(config.outbox_path, NODE_ID, NODE_KEY)
    governor = Governor(config, DirectoryRegistry(models), outbox, log=LOG)
    seqs: dict[str, int] = {}
    with PolicyEngine(bundle) as engine:
        try:
            for version, bias, expected in HISTORY:
                publish(models, version, classifier(bias), train)
                outcome = governor.govern(model, version, bundle=bundle, engine=engine,
                                          approvals=approvals_for(base, trust_root, version),
                                          now=NOW)
                assert outcome.kind is expected, outcome
                assert outcome.record is not None
                seqs[version] = outcome.record.seq
            decided = governor.decided()[NAME]
        finally:
            outbox.close()
        assert DirectoryRegistry(models).current(NAME, PRODUCTION_STAGE) == "2.0"
        yield History(node, root, model, profile, bundle, engine, trust_root, decided, seqs)


class MoveLog(DirectoryRegistry):
    """A directory registry that notes, at each stage move, the seq of the outbox's last
    record; with ``fail_moves`` a move raises as a disk that stopped answering would."""

    def __init__(self, root: Path, outbox: Outbox, *, fail_moves: bool = False) -> None:
        super().__init__(root)
        self.outbox = outbox
        self.fail_moves = fail_moves
        self.moves: list[tuple[str, str, int]] = []  # (stage, version, last seq then)

    def set_stage(self, name: str, stage: str, version: str) -> None:
        if self.fail_moves:
            raise StorageUnavailableError(f"{self.root}: stage pointer not written (test)")
        self.moves.append((stage, version, self.outbox.head().seq))
        super().set_stage(name, stage, version)


class Node:
    """A copy of the governed node, monitored: inference (and labels) directories, the
    outbox, a :class:`MoveLog` registry and a :class:`ProductionWatch` on them."""

    def __init__(self, history: History, root: Path, *, retrain: Hook | None = None,
                 alerts: tuple[Hook, ...] = (), labels: bool = False,
                 bundle: PolicyBundle | None = None, engine: PolicyEngine | None = None,
                 fail_moves: bool = False) -> None:
        self.history = history
        self.dir = Path(shutil.copytree(history.dir, root / "node"))
        self.inputs = root / "inference"
        self.inputs.mkdir()
        self.labels: Path | None = None
        if labels:
            self.labels = root / "labels"
            self.labels.mkdir()
        self.monitoring = MonitorConfig(inputs=self.inputs, profile=history.profile,
                                        window_s=WINDOW_S, grace_s=0, min_rows=20,
                                        labels=self.labels, labels_wait_s=3600)
        self.model = replace(history.model, monitoring=self.monitoring, retrain=retrain)
        self.config = AgentConfig(node_id=NodeId(NODE_ID), hub="127.0.0.1:7443", insecure=True,
                                  state_dir=self.dir, registry=self.dir / "models",
                                  models=(self.model,), alerts=alerts)
        self.bundle = bundle or history.bundle
        self.engine = engine or history.engine
        self.outbox = Outbox.open(self.config.outbox_path, NODE_ID, NODE_KEY)
        self.registry = MoveLog(self.dir / "models", self.outbox, fail_moves=fail_moves)
        self.watch = ProductionWatch(self.config, self.registry, self.outbox, log=LOG)
        self._next_id = 0
        self._rng = np.random.default_rng(11)

    # -- the agent's side ----------------------------------------------------------------------

    def step(self, at: datetime) -> list[Notice]:
        """One production pass at ``at``, with the governor's decided state, as the daemon
        makes it."""
        governor = Governor(self.config, self.registry, self.outbox, log=LOG)
        return self.watch.step(bundle=self.bundle, engine=self.engine, now=at,
                               decided=governor.decided)

    def restart(self, *, fail_moves: bool = False) -> None:
        """A new process on the same state directory: outbox reopened, a new watch."""
        self.outbox.close()
        self.outbox = Outbox.open(self.config.outbox_path, NODE_ID, NODE_KEY)
        self.registry = MoveLog(self.dir / "models", self.outbox, fail_moves=fail_moves)
        self.watch = ProductionWatch(self.config, self.registry, self.outbox, log=LOG)

    def close(self) -> None:
        """Release the outbox."""
        self.outbox.close()

    # -- what it left ----------------------------------------------------------------------------

    def records(self, *events: str) -> list[AuditRecord]:
        """The node's records (of ``events`` only, when given), in seq order, verified."""
        out = [AuditRecord.from_envelope(e.envelope, NODE_KEY.public)
               for e in self.outbox.entries()]
        return [r for r in out if not events or r.event in events]

    def after(self, seq: int) -> list[AuditRecord]:
        """Records written after ``seq``."""
        return [r for r in self.records() if r.seq > seq]

    def head(self) -> int:
        """The seq of the last record."""
        return self.outbox.head().seq

    def current(self) -> str | None:
        """The version in production (read from the registry's pointer file)."""
        return DirectoryRegistry(self.dir / "models").current(NAME, PRODUCTION_STAGE)

    @property
    def state_path(self) -> Path:
        """``state_dir/production.json``."""
        return self.dir / PRODUCTION_FILE

    def state(self) -> dict[str, Any]:
        """The model's entry in ``production.json``."""
        entry: dict[str, Any] = json.loads(self.state_path.read_bytes())["models"][NAME]
        return entry

    def artefact(self, version: str) -> Sha256:
        """The artefact SHA-256 of ``version`` (what a record's subject names)."""
        return DirectoryRegistry(self.dir / "models").read(NAME, version).artefact_sha256

    # -- the publisher's side ----------------------------------------------------------------------

    def rows(self, k: int, n: int = 200, *, shift: float = 0.0,
             prediction: int | None = None) -> dict[str, Any]:
        """``n`` inference rows spread over window ``k``: income (0..99, plus ``shift``) and
        age (20..69) as the reference has them; ids unique across the node."""
        start, _ = window(k)
        ids = np.arange(self._next_id, self._next_id + n)
        self._next_id += n
        cols: dict[str, Any] = {
            "timestamp": pa.array([start + timedelta(seconds=WINDOW_S * i / n)
                                   for i in range(n)], pa.timestamp("us", tz="UTC")),
            "id": ids,
            "income": self._rng.integers(0, 100, n) + int(shift),
            "age": self._rng.integers(20, 70, n),
        }
        if prediction is not None:
            cols["prediction"] = np.full(n, prediction)
        return cols

    def publish(self, name: str, *parts: dict[str, Any]) -> Path:
        """A Parquet batch of ``parts`` (from :meth:`rows`) written beside, then renamed
        into the inference directory."""
        tmp = self.inputs / f".{name}.tmp"
        pq.write_table(pa.concat_tables([pa.table(p) for p in parts]), tmp)
        return tmp.rename(self.inputs / name)

    def label(self, name: str, ids: Sequence[int], ys: Sequence[int]) -> Path:
        """A labels file (``id``, ``repaid``) renamed into the labels directory."""
        assert self.labels is not None, "a Node(labels=True) has a labels directory"
        tmp = self.labels / f".{name}.partial"
        pq.write_table(pa.table({"id": list(ids), "repaid": list(ys)}), tmp)
        return tmp.rename(self.labels / name)
