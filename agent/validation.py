"""The agent's validation pipeline: a new model version → checks on the node's data → policy
input → decision → action (promote, or block with the violations), records first.

:func:`validate_version` is the pure-ish step (files in, a :class:`Validation` out, nothing
recorded, nothing moved): it runs :func:`agent.checks.run.run_checks` on the node's own
validation data, builds the policy input (:func:`agent.policy_input.build_policy_input`)
and evaluates it under the engine given. ``warden agent validate`` is this step alone.

:class:`Governor` acts on validations for the daemon: for every complete version of a
configured model not yet decided (:meth:`Governor.pending`) it validates, writes the model
card, appends the signed records to the outbox, and only then moves the stage pointer
(:meth:`Governor.govern`).

The model card of a validated version (:mod:`agent.model_card`: Markdown and HTML from the
manifest, the evidence, the decision and, after a fairness block, the mitigation advice) is
written to ``state_dir/cards/<model>/<version>/`` (:func:`agent.model_card.card_dir`) and
stays at the node; the ``model_validated`` record carries the files' names and SHA-256s.
The advice (:func:`agent.reports.fairness_advice`, fairlearn's ``ThresholdOptimizer``) runs
only when the policy denied with a fairness disparity rule and the artefact is a model; it
is advisory: its failure is noted in the record and the card, never a change of decision.

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

* Records before actions, in this order: ``model_validated`` (the evidence's digest, the
  card's digests, the decision, the advice), then ``promote`` or ``block`` (the full
  aggregate evidence, the card's digests again), then — for a promotion only — the stage
  pointer. A pointer moves only after both records are committed; a ``block`` moves nothing.
  The card files are written before either record, so a record never names a card that
  was not written; a card that cannot be rendered (malformed evidence) is recorded as
  ``model_card: {"error": ...}`` and governance goes on.
* ``evidence_sha256`` in ``model_validated`` is the SHA-256 of the RFC 8785 canonical JSON
  of the evidence the card was rendered from: the decision record's ``evidence`` without
  its ``model_card`` key (the checks' document plus ``policy_input``); the card shows the
  same digest.
* Every decision record pins the bundle (``policy``: name, version, digest) and
  ``evidence.policy_input.sha256``, the SHA-256 of the RFC 8785 canonical JSON of the exact
  policy input evaluated; that input is kept at ``state_dir/inputs/<sha256>.json`` (those
  very bytes), so bundle + file replay the decision with ``warden policy eval``. The record's
  ``policy.digest`` is the *bundle digest* (SHA-256 of the signed payload, what
  :class:`~trust.policy.decision.Decision` and ``warden policy eval`` report): a
  :class:`~trust.policy.bundle.PolicyBundle` keeps no raw envelope bytes to hash, and the
  payload digest names the policy content whoever cosigned it.
* Evidence carries aggregates only (the checks' evidence document, the input's digest and
  projection, digests of the card, the advice's metrics); the policy input file holds the
  same evidence, nothing row-level.
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
* Storage errors (outbox or registry full/unavailable, the input file, the card or the
  state not writable) are never recorded as a version's fault: they propagate, the version
  stays pending, and the daemon retries on a later pass. The card is written before any
  record, so a card directory that is not writable leaves no record at all.
* The decided state (``state_dir/decisions.json``) is replaced atomically *after* the
  action. A crash (or a storage error) between the first record and the state save
  re-validates that version on the next pass: this can yield a second ``model_validated``
  and decision record for the same version, each pinning the card then rewritten (and, for
  a promotion, sets the same pointer again), never an action without its records. A state
  file that cannot be read is refused (``StorageUnavailableError``), never taken as "nothing
  decided": that would re-decide every version and could move a pointer back to an old one.
* A half-written version directory (no ``READY``) is not listed by the registry, so it is
  not pending; it becomes pending once ``READY`` appears.

Importing this module is light (no NumPy, pyarrow, jsonschema, regopy or Jinja2): the idle
daemon imports it; the checks, the card renderer and fairlearn load when a version needs
them.
"""

from __future__ import annotations

import hashlib
import importlib.util
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
from agent.state_files import keep_json, load_document, save_document, storage_error
from trust.approval import Approval
from trust.canonical import Sha256, canonical_json, sha256_hex
from trust.errors import (
    DataError,
    FormatError,
    PolicyError,
    StorageUnavailableError,
    UsageError,
    WardenError,
)
from trust.policy import decision as engine_decision
from trust.record import AuditRecord, Decision, EventType, PolicyRef, Subject
from trust.stream import GENESIS_PREV
from trust.timeutil import format_time

if TYPE_CHECKING:
    from agent.model_card import ModelCard
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
# The trainer's card is quoted verbatim in the node's card; a bound keeps a pathological
# one from making the node's card huge (it is then named, not quoted).
_MAX_TRAINER_CARD = 1 << 20
# The fairness rules a post-processing of the model's decisions can address
# (agent.reports.constraint_for): disparities, not missing or unmeasurable evidence.
_DISPARITY_RULES = frozenset({
    "fairness.demographic_parity_difference",
    "fairness.demographic_parity_ratio",
    "fairness.equalized_odds_difference",
    "fairness.equal_opportunity_difference",
    "fairness.four_fifths_rule",
})
NO_FAIRLEARN = "fairlearn is not installed (pip install 'warden[reports]')"


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
        raise storage_error(out, exc, "cannot write the joined predictions") from None
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
    # The model card written for the version (Markdown, HTML), when one was rendered.
    card_paths: tuple[Path, Path] | None = None
    # The ``model_validated`` record appended before ``record`` (None: not validated).
    validated_record: AuditRecord | None = None
    # The fairness advice as recorded (``Advice.to_dict()``, ``{"skipped": reason}`` or
    # ``{"error": message}``); None when the decision did not call for any.
    advice: Mapping[str, Any] | None = None


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
        # Not "nothing decided" when damaged: re-deciding every version could move a
        # pointer back.
        return load_document(
            self.state_path, schema=DECISIONS_SCHEMA, key="decided",
            what="the decided versions",
            refusal="refusing to govern rather than re-decide every version",
            hint=f"restore {self.state_path} (or remove it to re-validate every version)")

    def _mark(self, model: str, version: str, entry: Mapping[str, Any]) -> None:
        decided = self.decided()
        decided.setdefault(model, {})[version] = dict(entry)
        save_document(self.state_path, schema=DECISIONS_SCHEMA, key="decided",
                      entries=decided, what="the decided versions")

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
        return self._decide(validation, policy, bundle.data, now)

    def _save_input(self, validation: Validation) -> Path:
        path, digest = keep_json(self.inputs_dir, validation.policy_input,
                                 what="the policy input")
        assert digest == validation.input_sha256  # both are canonical_json of the input
        return path

    def _decide(self, v: Validation, policy: PolicyRef, thresholds: Mapping[str, Any],
                now: datetime) -> Outcome:
        mv, d = v.version, v.decision
        subject = Subject(mv.name, mv.version, mv.artefact_sha256)
        path = self._save_input(v)  # content-addressed: rewriting it on a retry is harmless
        projection = None if d.projection is None else list(d.projection)
        evidence = {
            **v.evidence,
            "policy_input": {"sha256": v.input_sha256, "projection": projection,
                             "projected_sha256": d.projected_sha256},
        }
        try:
            # Before anything is written: evidence no record can hold (a non-finite number)
            # is a validation_error, not a model_validated record without its decision.
            evidence_sha256 = sha256_hex(canonical_json(evidence))
        except FormatError as exc:
            return self._error(v.model, mv.version, mv, exc, policy, now)
        decision = Decision(d.allow, tuple(_violations(d)))
        advice = self._advice(v, thresholds)
        card, card_error = self._render_card(v, evidence, policy, advice, now)
        card_paths: tuple[Path, Path] | None = None
        if card is not None:
            from agent.model_card import card_dir, write_model_card

            # Storage errors propagate: nothing is recorded yet, the version stays pending.
            card_paths = write_model_card(card, card_dir(self.config.state_dir, mv.name,
                                                         mv.version))
            card_doc: dict[str, Any] = {
                "markdown": {"name": card_paths[0].name, "sha256": card.markdown_sha256},
                "html": {"name": card_paths[1].name, "sha256": card.html_sha256},
            }
            digests: dict[str, Any] = {"markdown_sha256": card.markdown_sha256,
                                       "html_sha256": card.html_sha256}
        else:
            card_doc = digests = {"error": _short(card_error or "")}
        try:
            validated = self.outbox.append(
                event=EventType.MODEL_VALIDATED, subject=subject, now=now, policy=policy,
                decision=decision,
                evidence={"evidence_sha256": evidence_sha256,
                          "policy_input": evidence["policy_input"],
                          "model_card": card_doc,
                          "decision": {"allow": d.allow,
                                       "violations": [x.rule for x in d.violations]},
                          "advice": advice},
            )
            event = EventType.PROMOTE if d.allow else EventType.BLOCK
            record = self.outbox.append(event=event, subject=subject, now=now, policy=policy,
                                        decision=decision,
                                        evidence={**evidence, "model_card": digests})
        except StorageUnavailableError:
            raise
        except FormatError as exc:  # not expected (checked above): never promote
            return self._error(v.model, mv.version, mv, exc, policy, now)
        fields = {"model": mv.name, "version": mv.version, "stage": v.target_stage,
                  "seq": record.seq, "validated_seq": validated.seq,
                  "input_sha256": v.input_sha256, "input": str(path),
                  "model_card": None if card_paths is None else str(card_paths[0]),
                  "policy": f"{policy.name} v{policy.version}"}
        if d.allow:
            self.registry.set_stage(mv.name, v.target_stage, mv.version)  # after the records
            kind = OutcomeKind.PROMOTED
            self.log.info("model version promoted", extra={"fields": fields})
        else:
            kind = OutcomeKind.BLOCKED
            if advice is not None:
                fields["advice"] = (advice["note"] if "note" in advice
                                    else advice.get("skipped") or advice.get("error"))
            self.log.warning("model version blocked by policy", extra={"fields": {
                **fields, "violations": [x.rule for x in d.violations]}})
        self._mark(mv.name, mv.version, {
            "outcome": kind.value, "seq": record.seq, "validated_seq": validated.seq,
            "stage": v.target_stage, "time": format_time(now), "input_sha256": v.input_sha256,
            "model_card_sha256": None if card is None else card.markdown_sha256,
        })
        return Outcome(mv.name, mv.version, kind, record, v.target_stage, v,
                       card_paths=card_paths, validated_record=validated, advice=advice)

    def _render_card(
        self, v: Validation, evidence: Mapping[str, Any], policy: PolicyRef,
        advice: Mapping[str, Any] | None, now: datetime,
    ) -> tuple[ModelCard | None, str | None]:
        """The version's model card, or None and why it could not be rendered."""
        from agent.model_card import render_model_card

        mv = v.version
        try:
            card = render_model_card(
                manifest=mv.manifest, evidence=evidence, decision=v.decision.to_dict(),
                policy=policy, node_id=self.config.node_id, generated_at=now, advice=advice,
                trainer_card=self._trainer_card(mv),
            )
        except FormatError as exc:  # malformed evidence: the decision still stands
            self.log.error("model card could not be rendered; recorded without it",
                           extra={"fields": {"model": mv.name, "version": mv.version,
                                             "error": exc.message}})
            return None, exc.message
        return card, None

    def _trainer_card(self, mv: ModelVersion) -> str | None:
        """The text of the card the trainer shipped (:data:`MODEL_CARD_NAMES`), if any and if
        it is UTF-8 text of a sensible size; quoted verbatim in the node's card."""
        path = _model_card(mv.directory)
        if path is None:
            return None
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise storage_error(path, exc, "cannot read the trainer's model card") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None or len(data) > _MAX_TRAINER_CARD:
            self.log.warning("trainer's model card not quoted in the node's card", extra={
                "fields": {"model": mv.name, "version": mv.version, "file": str(path),
                           "reason": "not UTF-8 text" if text is None
                           else f"larger than {_MAX_TRAINER_CARD} bytes"}})
            return None
        return text

    def _advice(self, v: Validation, thresholds: Mapping[str, Any]) -> dict[str, Any] | None:
        """Fairness mitigation advice for a version the policy denied for fairness.

        None when the decision did not deny for fairness; ``{"skipped": reason}`` when no
        advice can be had (a predictions artefact, only missing or unmeasurable evidence,
        fairlearn not installed); ``{"error": message}`` when fairlearn could not give it;
        else :meth:`agent.reports.Advice.to_dict`. Never raises: the advice is advisory and
        the block stands whatever happens here.
        """
        d, mv, model = v.decision, v.version, v.model
        fired = [x for x in d.violations if x.rule.startswith("fairness.")]
        if d.allow or not fired:
            return None
        if mv.manifest.artefact_kind is ArtefactKind.PREDICTIONS:
            return {"skipped": "a predictions artefact has no model to post-process"}
        disparities = [x for x in fired if x.rule in _DISPARITY_RULES]
        if not disparities:
            return {"skipped": "no fairness disparity to post-process (violations: "
                    + ", ".join(sorted({x.rule for x in fired})) + ")"}
        if importlib.util.find_spec("fairlearn") is None:
            return {"skipped": NO_FAIRLEARN}
        sensitive = self._advice_feature(v, disparities)
        if sensitive is None:
            return {"skipped": "no single sensitive column of the node's data to post-process "
                    "for (the disparity is in an intersection or unnamed)"}
        from agent.reports import constraint_for, fairness_advice

        fields = {"model": mv.name, "version": mv.version, "sensitive": sensitive}
        try:
            advice = fairness_advice(
                model=mv.artefact_path, data=model.data, label=model.label,
                sensitive=sensitive, thresholds=thresholds,
                constraint=constraint_for([x.rule for x in fired]), pos_label=model.pos_label,
                features=mv.manifest.features, trust_pickle=model.trust_pickle,
                min_group_size=model.min_group_size,
            )
            doc = advice.to_dict()
            canonical_json(doc)  # it goes in a record: refuse here what a record refuses
        except ImportError as exc:  # part of the reports extra missing (pandas, sklearn)
            return {"skipped": f"{exc.name or 'a library'} is not installed "
                    "(pip install 'warden[reports]')"}
        except WardenError as exc:
            self.log.warning("fairness advice could not be computed", extra={
                "fields": {**fields, "error": exc.message}})
            return {"error": _short(exc.message)}
        except Exception as exc:  # noqa: BLE001 - advisory only: the block stands regardless
            self.log.exception("fairness advice failed unexpectedly", extra={"fields": fields})
            return {"error": _short(f"{type(exc).__name__}: {exc}")}
        return doc

    @staticmethod
    def _advice_feature(v: Validation, disparities: Sequence[Any]) -> str | None:
        """The first configured sensitive column a disparity violation names (the standard
        library's messages start with ``"<feature>: "``); failing that, the first one whose
        fairness evidence was measurable."""
        for feature in v.model.sensitive:
            if any(x.message.startswith(f"{feature}: ") for x in disparities):
                return feature
        fairness = v.evidence.get("fairness")
        if not isinstance(fairness, Mapping):
            return None
        for feature in v.model.sensitive:
            entry = fairness.get(feature)
            if isinstance(entry, Mapping) and entry.get("unmeasurable") is None:
                return feature
        return None

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
