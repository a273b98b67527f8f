"""The agent's validation pipeline: a new model version → checks on the node's data → policy
input → decision → action (promote, or block with the violations), records first.

:func:`validate_version` is the pure-ish step (files in, a :class:`Validation` out, nothing
recorded, nothing moved): it runs :func:`agent.checks.run.run_checks` on the node's own
validation data, builds the policy input (:func:`agent.policy_input.build_policy_input`)
and evaluates it under the engine given. ``warden agent validate`` is this step alone.

:class:`Governor` acts on validations for the daemon: for every complete version of a
configured model not yet decided (:meth:`Governor.pending`) it validates, appends the signed
record to the outbox, and only then moves the stage pointer (:meth:`Governor.govern`).

What a version directory may hold (besides the registry's manifest, artefact and ``READY``):
a model card named one of :data:`MODEL_CARD_NAMES` (the first present is used); without one
the documentation evidence says "no model card", which the standard bundle denies.

A predictions artefact (``.csv``/``.parquet`` instead of a model) holds the model's
predictions in the column ``ModelConfig.pred``, one row per row of the node's validation
data, in the same order. The label and sensitive columns of the validation data and that
column are joined into a temporary Parquet file under ``work_dir`` (removed afterwards) on
which the checks run; a row-count mismatch is refused naming both files and both counts. The
evidence's ``data`` section names the node's file (name, format, rows, SHA-256), never the
temporary one, and drift compares the node's file itself against the reference.

Invariants:

* Records before actions: a stage pointer moves only after the ``promote`` record naming
  that version, bundle and decision is committed to the outbox; a ``block`` moves nothing.
* Every decision record pins the bundle (``policy``: name, version, digest) and
  ``evidence.policy_input.sha256``, the SHA-256 of the RFC 8785 canonical JSON of the exact
  policy input evaluated; that input is kept at ``state_dir/inputs/<sha256>.json`` (those
  very bytes), so bundle + file replay the decision with ``warden policy eval``. The record's
  ``policy.digest`` is the *bundle digest* (SHA-256 of the signed payload, what
  :class:`~trust.policy.decision.Decision` and ``warden policy eval`` report): a
  :class:`~trust.policy.bundle.PolicyBundle` keeps no raw envelope bytes to hash, and the
  payload digest names the policy content whoever cosigned it.
* Evidence carries aggregates only (the checks' evidence document, plus the input's digest
  and projection); the policy input file holds the same evidence, nothing row-level.
* A version that cannot be validated — manifest missing or garbled, artefact missing,
  altered or unloadable, validation data without the label column, a pickle the node does
  not trust, a policy evaluation error — gets one signed ``validation_error`` record (subject
  digest: the artefact's when known, else the SHA-256 of the manifest bytes when readable,
  else 64 zeros) and is marked decided, so it is not retried in a loop. To try again the
  publisher publishes a new version (the usual case), or an operator deletes the version's
  entry from ``state_dir/decisions.json`` (e.g. after fixing the node's own data file).
* A version whose target stage this node may not promote to (not in ``ModelConfig.stages``)
  is refused before any check runs: :class:`StageNotAllowedError` from
  :func:`validate_version`, which the governor turns into a ``block`` record whose decision
  carries the one violation ``agent.stage_not_allowed`` (no policy input; the policy was
  not asked).
* Storage errors (outbox or registry full/unavailable, the input file or the state not
  writable) are never recorded as a version's fault: they propagate, the version stays
  pending, and the daemon retries on a later pass.
* The decided state (``state_dir/decisions.json``) is replaced atomically *after* the
  action. A crash between the record and the state save re-validates that version on the
  next pass: this can yield a second record for the same version (and, for a promotion,
  sets the same pointer again), never an action without a record. A state file that cannot
  be read is refused (``StorageUnavailableError``), never taken as "nothing decided": that
  would re-decide every version and could move a pointer back to an old one.
* A half-written version directory (no ``READY``) is not listed by the registry, so it is
  not pending; it becomes pending once ``READY`` appears.

Importing this module is light (no NumPy, pyarrow, jsonschema or regopy): the idle daemon
imports it; the checks load when a version is validated.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import AgentConfig, ModelConfig
from agent.outbox import Outbox
from agent.policy_input import ModelInfo, ProductionStatus, build_policy_input
from agent.registry import MANIFEST_FILE, ArtefactKind, DirectoryRegistry, ModelVersion, Registry
from trust._internal.files import replace_file
from trust.approval import Approval
from trust.canonical import Sha256, canonical_json, loads_object, sha256_hex
from trust.errors import (
    DataError,
    FormatError,
    PolicyError,
    StorageFullError,
    StorageUnavailableError,
    UsageError,
    WardenError,
)
from trust.policy import decision as engine_decision
from trust.record import AuditRecord, Decision, EventType, PolicyRef, Subject
from trust.stream import GENESIS_PREV
from trust.timeutil import format_time

if TYPE_CHECKING:
    from trust.policy.bundle import PolicyBundle, UnverifiedPolicyBundle
    from trust.policy.engine import PolicyEngine

__all__ = [
    "DECISIONS_FILE",
    "INPUTS_DIR",
    "MODEL_CARD_NAMES",
    "STAGE_RULE",
    "Governor",
    "Outcome",
    "OutcomeKind",
    "StageNotAllowedError",
    "Validation",
    "validate_version",
    "version_checks",
]

DECISIONS_FILE = "decisions.json"
INPUTS_DIR = "inputs"
WORK_DIR = "work"
DECISIONS_SCHEMA = "warden.agent-decisions/v1"
MODEL_CARD_NAMES = ("model_card.md", "model_card.yaml", "model_card.yml", "model_card.json")
STAGE_RULE = "agent.stage_not_allowed"
# An error message in a record is for people; a bound keeps a pathological one from
# bloating the ledger (the full text is in the agent's log).
_MAX_MESSAGE = 1000
_ZERO_DIGEST = Sha256(GENESIS_PREV)


class StageNotAllowedError(UsageError):
    """The version asks for a stage this node may not promote the model to."""

    def __init__(self, model: ModelConfig, version: str, stage: str) -> None:
        super().__init__(
            f"model {model.name!r} version {version!r}: target stage {stage!r} is not one "
            f"this node may promote to ({', '.join(model.stages)})",
            hint="set model.target_stage in the manifest to an allowed stage and publish a "
            "new version, or add the stage to the model's stages in agent.yaml",
        )
        self.stage = stage
        self.allowed = model.stages

    def violation(self) -> dict[str, str]:
        """The refusal as a violation object, like the policy's own."""
        return {"rule": STAGE_RULE, "message": self.message, "severity": "error"}


@dataclass(frozen=True)
class Validation:
    """The outcome of validating one version, before any action."""

    model: ModelConfig
    version: ModelVersion
    evidence: dict[str, Any]
    policy_input: dict[str, Any]
    # SHA-256 of trust.canonical.canonical_json(policy_input): what the record pins.
    input_sha256: Sha256
    decision: engine_decision.Decision
    target_stage: str

    @property
    def input_bytes(self) -> bytes:
        """The exact bytes hashed into :attr:`input_sha256` (RFC 8785 canonical JSON)."""
        return canonical_json(self.policy_input)


def _model_card(directory: Path) -> Path | None:
    for name in MODEL_CARD_NAMES:
        p = directory / name
        if p.is_file():
            return p
    return None


def _renamed(exc: WardenError, old: str, new: str) -> WardenError:
    """``exc`` with the temporary file's path replaced by what the user knows."""
    if old not in exc.message:
        return exc
    try:
        return type(exc)(exc.message.replace(old, new), hint=exc.hint)
    except TypeError:  # an error type with another constructor: keep it as it is
        return exc


def _join_predictions(model: ModelConfig, version: ModelVersion, out: Path) -> int:
    """Write label + sensitive columns of the node's data and the artefact's prediction
    column side by side to ``out`` (Parquet); return the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from agent import data as datamod

    if model.pred in model.sensitive:
        raise UsageError(f"model {model.name!r}: the prediction column {model.pred!r} is also "
                         "listed as sensitive")
    columns = [model.label, *model.sensitive]
    base = datamod.read_columns(model.data, columns)
    preds = datamod.read_columns(version.artefact_path, [model.pred])[model.pred]
    rows = len(base[model.label])
    if len(preds) != rows:
        raise DataError(
            f"{version.artefact_path}: {len(preds)} prediction rows (column {model.pred!r}), "
            f"but the validation data {model.data} has {rows} rows",
            hint="a predictions artefact holds one row per row of the node's validation "
            "data, in the same order",
        )
    arrays = {c: pa.array(base.pop(c)) for c in columns}
    arrays[model.pred] = pa.array(preds)
    try:
        pq.write_table(pa.table(arrays), out)
    except OSError as exc:
        raise _storage_error(out, exc, "cannot write the joined predictions") from None
    return rows


def version_checks(
    model: ModelConfig, version: ModelVersion, *, now: datetime, work_dir: Path
) -> dict[str, Any]:
    """Run the checks on ``version`` with the node's data for ``model``; the evidence.

    Raises the checks' errors (DataError for a missing label column, UsageError for an
    untrusted pickle, ...) with messages naming the node's files, never a temporary one.
    """
    from agent.checks.run import CheckSpec, run_checks

    manifest = version.manifest
    common: dict[str, Any] = {
        "label": model.label,
        "sensitive": model.sensitive,
        "pos_label": model.pos_label,
        "min_group_size": model.min_group_size,
        "reference": model.reference,
        "manifest": version.manifest_path,
        "model_card": _model_card(version.directory),
        "now": now,
    }
    if manifest.artefact_kind is not ArtefactKind.PREDICTIONS:
        spec = CheckSpec(data=model.data, model=version.artefact_path,
                         features=manifest.features, trust_pickle=model.trust_pickle, **common)
        return run_checks(spec)

    from agent import data as datamod
    from agent.checks.evidence import validate_evidence
    from agent.checks.files import sha256_file

    work_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".join-", dir=work_dir))
    try:
        joined = tmp / "validation+predictions.parquet"
        rows = _join_predictions(model, version, joined)
        spec = CheckSpec(data=joined, pred=model.pred, hash_data=False,
                         current=model.data if model.reference is not None else None, **common)
        try:
            evidence = run_checks(spec)
        except WardenError as exc:
            raise _renamed(exc, str(joined),
                           f"{model.data} (with predictions {version.artefact_path})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    evidence["data"] = {
        "name": model.data.name,
        "format": datamod.file_format(model.data),
        "rows": rows,
        "sha256": sha256_file(model.data),
    }
    validate_evidence(evidence)
    return evidence


def validate_version(
    model: ModelConfig,
    version: ModelVersion,
    engine: PolicyEngine,
    *,
    approvals: Sequence[Approval] = (),
    production: ProductionStatus | None = None,
    now: datetime,
    work_dir: Path,
    stage: str | None = None,
) -> Validation:
    """Validate ``version`` of ``model``: checks on the node's data, policy input, decision.

    ``stage`` overrides the manifest's target stage (``warden agent validate --stage``).
    Raises :class:`StageNotAllowedError` before any check when the target stage is not in
    ``model.stages``; any other :class:`WardenError` means the version could not be
    validated (nothing was decided).
    """
    if version.name != model.name:
        raise UsageError(f"{version.manifest_path}: version of model {version.name!r}, "
                         f"validated as model {model.name!r}")
    target = stage or version.manifest.target_stage
    if target not in model.stages:
        raise StageNotAllowedError(model, version.version, target)
    evidence = version_checks(model, version, now=now, work_dir=work_dir)
    features = version.manifest.features
    info = ModelInfo(
        name=version.name,
        version=version.version,
        stage=target,
        n_features=None if features is None else len(features),
        artifact_sha256=version.artefact_sha256,
    )
    # The evidence was computed here, from this very version directory, whose manifest the
    # registry matched to the directory's name and version: when the manifest names no
    # model, nothing else could be what it is about.
    policy_input = build_policy_input(
        evidence, info, now=now, approvals=approvals, production=production,
        evidence_source=str(version.manifest_path), allow_unnamed_evidence=True,
    )
    input_sha256 = sha256_hex(canonical_json(policy_input))
    decision = engine.evaluate(policy_input, now=now)
    if decision.input_sha256 != input_sha256:  # both are canonical_json: never expected
        raise PolicyError(f"the engine hashed the policy input to {decision.input_sha256}, "
                          f"the agent to {input_sha256}; refusing to record either")
    return Validation(model, version, evidence, policy_input, input_sha256, decision, target)


class OutcomeKind(StrEnum):
    """What :meth:`Governor.govern` did with a version."""

    PROMOTED = "promoted"
    BLOCKED = "blocked"
    ERROR = "validation_error"


@dataclass(frozen=True)
class Outcome:
    """One governed version: what happened, and the record that says so."""

    model: str
    version: str
    kind: OutcomeKind
    record: AuditRecord
    # The stage the version was promoted to or refused for (None: not known, e.g. a bad
    # manifest).
    stage: str | None = None
    validation: Validation | None = None
    error: str | None = None


def _storage_error(path: Path, exc: OSError, what: str) -> StorageUnavailableError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFullError(f"{path}: {what} ({reason})", hint="free disk space; the agent "
                                "retries on its next pass")
    return StorageUnavailableError(f"{path}: {what} ({reason})")


def _short(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 1] + "…"


def _violations(decision: engine_decision.Decision) -> list[dict[str, str]]:
    return [v.to_dict() for v in decision.violations]


class Governor:
    """Acts on validations for one node: records first, then the stage pointer.

    One process per state directory (the outbox's lock guarantees it), so the decided state
    has a single writer.
    """

    def __init__(self, config: AgentConfig, registry: Registry, outbox: Outbox, *,
                 log: logging.Logger) -> None:
        self.config = config
        self.registry = registry
        self.outbox = outbox
        self.log = log
        self.state_path = config.state_dir / DECISIONS_FILE
        self.inputs_dir = config.state_dir / INPUTS_DIR
        self.work_dir = config.state_dir / WORK_DIR

    # -- the decided state ----------------------------------------------------------------

    def decided(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``{model: {version: entry}}`` of versions already decided (missing file: none)."""
        try:
            data = self.state_path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise _storage_error(self.state_path, exc, "cannot read the decided versions") \
                from None
        try:
            doc = loads_object(data, what=str(self.state_path))
            versions = doc.get("decided")
            if doc.get("schema") != DECISIONS_SCHEMA or not isinstance(versions, dict) or any(
                not isinstance(v, dict) for v in versions.values()
            ):
                raise FormatError(f"{self.state_path}: not a {DECISIONS_SCHEMA} document")
        except FormatError as exc:
            # Not "nothing decided": re-deciding every version could move a pointer back.
            raise StorageUnavailableError(
                f"{exc.message}; refusing to govern rather than re-decide every version",
                hint=f"restore {self.state_path} (or remove it to re-validate every version)",
            ) from None
        return versions

    def _mark(self, model: str, version: str, entry: Mapping[str, Any]) -> None:
        decided = self.decided()
        decided.setdefault(model, {})[version] = dict(entry)
        data = canonical_json({"schema": DECISIONS_SCHEMA, "decided": decided}) + b"\n"
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            replace_file(self.state_path, data)
        except OSError as exc:
            raise _storage_error(self.state_path, exc, "cannot save the decided versions") \
                from None

    def pending(self) -> list[tuple[ModelConfig, str]]:
        """Complete versions of the configured models not yet decided, in registry order."""
        decided = self.decided()
        out: list[tuple[ModelConfig, str]] = []
        for model in self.config.models:
            try:
                versions = self.registry.versions(model.name)
            except WardenError as exc:  # no directory for it yet, or not listable
                self.log.debug("no versions to govern", extra={"fields": {
                    "model": model.name, "reason": exc.message}})
                continue
            done = decided.get(model.name, {})
            out.extend((model, v) for v in versions if v not in done)
        return out

    # -- governing one version -------------------------------------------------------------

    def govern(
        self,
        model: ModelConfig,
        version: str,
        *,
        bundle: PolicyBundle | UnverifiedPolicyBundle,
        engine: PolicyEngine,
        approvals: Sequence[Approval],
        now: datetime,
    ) -> Outcome:
        """Validate ``version``, record the outcome, then act on it (see the module docstring).

        Raises only storage errors (the version then stays pending); every other failure is
        a ``validation_error`` record.
        """
        policy = PolicyRef(bundle.name, bundle.version, bundle.digest)
        try:
            mv = self.registry.read(model.name, version)
        except StorageUnavailableError:
            raise
        except WardenError as exc:
            return self._error(model, version, None, exc, policy, now)
        try:
            validation = validate_version(model, mv, engine, approvals=approvals, now=now,
                                          work_dir=self.work_dir)
        except StageNotAllowedError as exc:
            return self._refuse(model, mv, exc, policy, now)
        except StorageUnavailableError:
            raise
        except WardenError as exc:
            return self._error(model, version, mv, exc, policy, now)
        except Exception as exc:  # noqa: BLE001 - a defect in a check or a library
            # Fail closed, and keep it: the version is not promoted, the ledger says why,
            # the log has the traceback. Not retried in a loop.
            self.log.exception("model version validation failed unexpectedly",
                               extra={"fields": {"model": model.name, "version": version}})
            return self._error(model, version, mv, exc, policy, now)
        return self._decide(validation, policy, now)

    def _save_input(self, validation: Validation) -> Path:
        path = self.inputs_dir / f"{validation.input_sha256}.json"
        try:
            self.inputs_dir.mkdir(parents=True, exist_ok=True)
            replace_file(path, validation.input_bytes)
        except OSError as exc:
            raise _storage_error(path, exc, "cannot save the policy input") from None
        return path

    def _decide(self, v: Validation, policy: PolicyRef, now: datetime) -> Outcome:
        mv, d = v.version, v.decision
        subject = Subject(mv.name, mv.version, mv.artefact_sha256)
        path = self._save_input(v)  # content-addressed: rewriting it on a retry is harmless
        projection = None if d.projection is None else list(d.projection)
        evidence = {
            **v.evidence,
            "policy_input": {"sha256": v.input_sha256, "projection": projection,
                             "projected_sha256": d.projected_sha256},
        }
        event = EventType.PROMOTE if d.allow else EventType.BLOCK
        try:
            record = self.outbox.append(event=event, subject=subject, now=now, policy=policy,
                                        decision=Decision(d.allow, tuple(_violations(d))),
                                        evidence=evidence)
        except StorageUnavailableError:
            raise
        except FormatError as exc:  # e.g. evidence too large for a record: never promote
            return self._error(v.model, mv.version, mv, exc, policy, now)
        fields = {"model": mv.name, "version": mv.version, "stage": v.target_stage,
                  "seq": record.seq, "input_sha256": v.input_sha256, "input": str(path),
                  "policy": f"{policy.name} v{policy.version}"}
        if d.allow:
            self.registry.set_stage(mv.name, v.target_stage, mv.version)  # after the record
            kind = OutcomeKind.PROMOTED
            self.log.info("model version promoted", extra={"fields": fields})
        else:
            kind = OutcomeKind.BLOCKED
            self.log.warning("model version blocked by policy", extra={"fields": {
                **fields, "violations": [x.rule for x in d.violations]}})
        self._mark(mv.name, mv.version, {"outcome": kind.value, "seq": record.seq,
                                         "stage": v.target_stage, "time": format_time(now),
                                         "input_sha256": v.input_sha256})
        return Outcome(mv.name, mv.version, kind, record, v.target_stage, v)

    def _refuse(self, model: ModelConfig, mv: ModelVersion, exc: StageNotAllowedError,
                policy: PolicyRef, now: datetime) -> Outcome:
        subject = Subject(mv.name, mv.version, mv.artefact_sha256)
        record = self.outbox.append(
            event=EventType.BLOCK, subject=subject, now=now, policy=policy,
            decision=Decision(False, (exc.violation(),)),
            evidence={"refused": {"rule": STAGE_RULE, "target_stage": exc.stage,
                                  "allowed_stages": list(exc.allowed)}},
        )
        self.log.warning("model version blocked: target stage not allowed on this node",
                         extra={"fields": {"model": mv.name, "version": mv.version,
                                           "stage": exc.stage, "allowed": list(exc.allowed),
                                           "seq": record.seq}})
        self._mark(mv.name, mv.version, {"outcome": OutcomeKind.BLOCKED.value,
                                         "seq": record.seq, "stage": exc.stage,
                                         "time": format_time(now), "reason": STAGE_RULE})
        return Outcome(mv.name, mv.version, OutcomeKind.BLOCKED, record, exc.stage,
                       error=exc.message)

    def _error_subject(self, model: ModelConfig, version: str,
                       mv: ModelVersion | None) -> Subject:
        if mv is not None:
            return Subject(model.name, version, mv.artefact_sha256)
        if not isinstance(self.registry, DirectoryRegistry):
            return Subject(model.name, version, _ZERO_DIGEST)
        manifest = self.registry.root / model.name / version / MANIFEST_FILE
        try:
            digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
        except OSError:
            return Subject(model.name, version, _ZERO_DIGEST)
        return Subject(model.name, version, Sha256(digest))

    def _error(self, model: ModelConfig, version: str, mv: ModelVersion | None,
               exc: BaseException, policy: PolicyRef, now: datetime) -> Outcome:
        message = exc.message if isinstance(exc, WardenError) else str(exc)
        kind = type(exc).__name__
        record = self.outbox.append(
            event=EventType.VALIDATION_ERROR, subject=self._error_subject(model, version, mv),
            now=now, policy=policy, evidence={"error": kind, "message": _short(message)},
        )
        self.log.error("model version could not be validated; recorded, not promoted",
                       extra={"fields": {"model": model.name, "version": version,
                                         "error": kind, "message": message,
                                         "seq": record.seq}})
        stage = mv.manifest.target_stage if mv is not None else None
        self._mark(model.name, version, {"outcome": OutcomeKind.ERROR.value, "seq": record.seq,
                                         "time": format_time(now), "error": kind})
        return Outcome(model.name, version, OutcomeKind.ERROR, record, stage, error=message)
