"""Choosing where a stage pointer goes back to when the policy's rollback rule holds.

Issue 11 item 2: "move the production pointer back to the last version that passed under the
policy now in force … never roll back to a version that was blocked." This module makes that
choice and nothing else: :func:`choose_rollback_target` reads the governor's decided state,
the saved policy inputs and the registry, re-decides candidates under the current bundle and
returns a :class:`RollbackChoice`. It appends no record and moves no pointer — the daemon
records ``rollback`` (or ``rollback_impossible``) first and only then sets the pointer,
exactly as the governor does for a promotion.

How the target is chosen:

* **Candidates** are the versions of the model, other than ``current`` and those the caller
  excludes, whose decided entry (``state_dir/decisions.json``, one entry per version: the
  latest decision on it) says ``outcome: promoted`` *for this stage*. A version whose entry
  is ``blocked`` or ``validation_error`` is never a candidate, whatever the current policy
  would say of it now: "never roll back to a version that was blocked".
* **Newest first, by the decision's ``seq``** — the position of its ``promote`` record in the
  node's signed stream. Version names are not interpreted (``1.10`` is newer than ``1.9``
  only if it was decided later), and ``seq`` is strictly increasing and unique per node,
  while decision times can tie; the governing clock never goes backwards, so the two orders
  agree wherever times differ. An entry whose ``seq`` is not a whole number cannot be placed
  and is skipped (``bad_entry``), never guessed.
* **Each candidate in turn** must still be the version that was decided on, and pass under
  the bundle now in force:

  1. its saved policy input ``inputs/<sha256>.json`` exists, its bytes hash to the SHA-256
     its entry recorded (which is also the file's name), it is a ``warden.policy-input/v1``
     object about exactly this model and version;
  2. the registry still reads the version (:meth:`~agent.registry.Registry.read`: complete,
     manifest valid, artefact present and matching its declared digest), and the artefact's
     SHA-256 equals the one in the saved input — the model being rolled back to is the one
     that was judged, not a file swapped in since ("a rollback target whose artefact was
     deleted" is skipped here);
  3. the saved input, with ``model.stage`` set to the stage, ``production`` reset to ``{}``
     (the candidate is not the model drifting in production: feeding it the current
     version's production status would fire the rollback rule on every candidate) and
     ``now`` set to the decision time, is evaluated by the current engine and allowed.

  The first candidate passing all three is the target. Every candidate looked at and not
  taken is listed in :attr:`RollbackChoice.skipped` with a machine-readable code and the
  reason (the violations, for a denial).
* **Nothing passes** → ``target is None``: the caller keeps the current version, records
  ``rollback_impossible`` with :meth:`RollbackChoice.to_evidence` and alerts.

What a re-decision reuses: the evidence computed when the version was validated (on the
node's data at that time) and the approvals that verified then. A policy now in force that
demands evidence the old input lacks denies (missing evidence never passes), which is the
fail-closed reading of "passed under the policy now in force".

Invariants: nothing here writes, except :func:`save_input` (content-addressed, atomic); a
storage failure (a saved input or the registry unreadable for a reason other than "not
there") raises :class:`~trust.errors.StorageUnavailableError` instead of silently choosing an
older version; the evidence holds aggregates only (versions, digests, rule names, the
policy's messages) and lists at most :data:`MAX_LISTED` skipped candidates.

Importing this module is light (no NumPy, pyarrow or regopy): the idle daemon imports it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import ModelConfig
from agent.policy_input import POLICY_INPUT_SCHEMA
from agent.registry import ModelVersion, Registry
from agent.state_files import keep_json, storage_error
from trust.canonical import Sha256, canonical_json, loads_object
from trust.errors import (
    DataError,
    DigestMismatchError,
    FormatError,
    NotFoundError,
    PolicyError,
    StorageUnavailableError,
    WardenError,
)
from trust.timeutil import format_time

if TYPE_CHECKING:
    from trust.policy.bundle import PolicyBundle
    from trust.policy.decision import Decision
    from trust.policy.engine import PolicyEngine

__all__ = [
    "MAX_LISTED",
    "RollbackChoice",
    "SkipCode",
    "Skipped",
    "choose_rollback_target",
    "save_input",
]

#: At most this many skipped candidates are listed in the evidence (the count is always there).
MAX_LISTED = 50
# A reason is for people; a bound keeps a pathological one from bloating the ledger.
_MAX_REASON = 500
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PROMOTED = "promoted"


class SkipCode(StrEnum):
    """Why a candidate was not taken."""

    EXCLUDED = "excluded"                  # the caller excluded it (e.g. rolled back from)
    BAD_ENTRY = "bad_entry"                # its decided entry has no usable seq
    NO_SAVED_INPUT = "no_saved_input"      # its entry records no input digest
    INPUT_MISSING = "input_missing"        # inputs/<sha256>.json is gone
    INPUT_TAMPERED = "input_tampered"      # the file is not what was recorded
    VERSION_MISSING = "version_missing"    # the version directory is gone or incomplete
    ARTEFACT_MISSING = "artefact_missing"  # the artefact file is gone or unreadable
    ARTEFACT_CHANGED = "artefact_changed"  # the artefact is not the one decided on
    MANIFEST_INVALID = "manifest_invalid"  # the registry refuses the version's manifest
    DENIED = "denied"                      # the policy now in force denies it
    POLICY_ERROR = "policy_error"          # the policy could not decide on it


@dataclass(frozen=True)
class Skipped:
    """A candidate looked at and not taken: which, why (code), and the reason in words."""

    version: str
    code: SkipCode
    reason: str
    # For DENIED: the rules that denied it, sorted.
    rules: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form (for the record's evidence)."""
        out: dict[str, Any] = {"version": self.version, "code": self.code.value,
                               "reason": _short(self.reason)}
        if self.rules:
            out["rules"] = list(self.rules)
        return out


@dataclass(frozen=True)
class RollbackChoice:
    """Where ``stage`` of ``model`` goes back to, and why every newer candidate was not it.

    ``target`` is ``None`` when no candidate passes (then ``decision``, ``policy_input``,
    ``input_sha256`` and ``artefact_sha256`` are ``None`` too). ``policy_input`` is the input
    the current bundle judged the target on (the saved one, restaged, production reset, new
    ``now``): save it with :func:`save_input` so ``warden policy eval`` can replay the
    decision from ``input_sha256``.
    """

    model: str
    stage: str
    current: str
    target: str | None
    decision: Decision | None
    skipped: tuple[Skipped, ...]
    policy_name: str
    policy_version: int
    policy_digest: Sha256
    reasons: tuple[str, ...] = ()
    policy_input: Mapping[str, Any] | None = None
    input_sha256: Sha256 | None = None
    artefact_sha256: Sha256 | None = None
    # seq of the target's own promote record (its decided entry).
    target_seq: int | None = None
    # Versions decided but never candidates, counted by why: blocked, validation_error,
    # other_stage (promoted for another stage), ...
    not_candidates: Mapping[str, int] = field(default_factory=dict)

    @property
    def considered(self) -> int:
        """How many candidates were looked at (the skipped ones and the target)."""
        return len(self.skipped) + (self.target is not None)

    @property
    def input_bytes(self) -> bytes | None:
        """The exact bytes hashed into :attr:`input_sha256` (RFC 8785 canonical JSON)."""
        return None if self.policy_input is None else canonical_json(dict(self.policy_input))

    def to_evidence(self) -> dict[str, Any]:
        """The ``rollback`` / ``rollback_impossible`` record's evidence: from, to, the
        reasons the rollback was required, the policy in force, the candidates considered and
        why each newer one was skipped, and the target's decision. Aggregates only."""
        listed = [s.to_dict() for s in self.skipped[:MAX_LISTED]]
        evidence: dict[str, Any] = {
            "model": self.model,
            "stage": self.stage,
            "from": self.current,
            "to": self.target,
            "reasons": list(self.reasons),
            "policy": {"name": self.policy_name, "version": self.policy_version,
                       "digest": self.policy_digest},
            "candidates": {
                "considered": self.considered,
                "skipped": listed,
                "skipped_total": len(self.skipped),
                "not_candidates": dict(sorted(self.not_candidates.items())),
            },
            "target": None,
        }
        if self.target is not None and self.decision is not None:
            d = self.decision
            evidence["target"] = {
                "version": self.target,
                "artifact_sha256": self.artefact_sha256,
                "promoted_seq": self.target_seq,
                "decision": {"allow": d.allow, "warnings": list(d.warnings)},
                "policy_input": {
                    "sha256": self.input_sha256,
                    "projection": None if d.projection is None else list(d.projection),
                    "projected_sha256": d.projected_sha256,
                },
            }
        return evidence


def _short(text: str) -> str:
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def _seq(entry: Mapping[str, Any]) -> int | None:
    seq = entry.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1 else None


def _candidates(
    decided: Mapping[str, Mapping[str, Any]], *, stage: str, current: str,
    exclude: Collection[str],
) -> tuple[list[tuple[int, str, Mapping[str, Any]]], list[Skipped], dict[str, int]]:
    """(orderable candidates newest first, skipped ones, counts of versions that are none)."""
    ordered: list[tuple[int, str, Mapping[str, Any]]] = []
    skipped: list[Skipped] = []
    others: dict[str, int] = {}
    for version, entry in decided.items():
        if version == current:
            continue
        outcome = entry.get("outcome") if isinstance(entry, Mapping) else None
        if outcome != _PROMOTED:
            key = outcome if isinstance(outcome, str) else "unknown"
            others[key] = others.get(key, 0) + 1
            continue
        if entry.get("stage") != stage:
            others["other_stage"] = others.get("other_stage", 0) + 1
            continue
        if version in exclude:
            skipped.append(Skipped(version, SkipCode.EXCLUDED,
                                   "excluded by the agent (rolled back from before)"))
            continue
        seq = _seq(entry)
        if seq is None:
            skipped.append(Skipped(version, SkipCode.BAD_ENTRY,
                                   f"decided entry has no record seq ({entry.get('seq')!r}); "
                                   "its place in the history is unknown"))
            continue
        ordered.append((seq, version, entry))
    ordered.sort(key=lambda t: t[0], reverse=True)
    return ordered, skipped, others


def _saved_input(
    inputs_dir: Path, model: str, version: str, entry: Mapping[str, Any]
) -> dict[str, Any] | Skipped:
    """The candidate's saved policy input, checked against its recorded digest."""
    recorded = entry.get("input_sha256")
    if not isinstance(recorded, str) or not _HEX64.fullmatch(recorded):
        return Skipped(version, SkipCode.NO_SAVED_INPUT,
                       f"its decided entry records no policy input digest ({recorded!r})")
    path = inputs_dir / f"{recorded}.json"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Skipped(version, SkipCode.INPUT_MISSING,
                       f"{path}: saved policy input is missing; cannot re-decide it")
    except IsADirectoryError:
        return Skipped(version, SkipCode.INPUT_TAMPERED, f"{path}: is a directory")
    except OSError as exc:
        raise storage_error(path, exc, "cannot read a saved policy input") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != recorded:
        return Skipped(version, SkipCode.INPUT_TAMPERED,
                       f"{path}: SHA-256 of the file is {actual}, but its name and the decided "
                       f"entry record {recorded}; the saved input was altered")
    try:
        doc = loads_object(data, what=str(path))
    except FormatError as exc:  # the hash matched, so it was recorded like this
        return Skipped(version, SkipCode.INPUT_TAMPERED, exc.message)
    about = doc.get("model")
    if doc.get("schema") != POLICY_INPUT_SCHEMA or not isinstance(about, Mapping):
        return Skipped(version, SkipCode.INPUT_TAMPERED,
                       f"{path}: not a {POLICY_INPUT_SCHEMA} document")
    if about.get("name") != model or about.get("version") != version:
        return Skipped(version, SkipCode.INPUT_TAMPERED,
                       f"{path}: the saved input is about model {about.get('name')!r} version "
                       f"{about.get('version')!r}, not {model!r} version {version!r}")
    return doc


def _read_version(registry: Registry, model: str, version: str) -> ModelVersion | Skipped:
    """The registry's read of the candidate, or why it cannot be rolled back to."""
    try:
        return registry.read(model, version)
    except StorageUnavailableError:
        raise
    except NotFoundError as exc:
        return Skipped(version, SkipCode.VERSION_MISSING, exc.message)
    except DigestMismatchError as exc:
        return Skipped(version, SkipCode.ARTEFACT_CHANGED, exc.message)
    except DataError as exc:  # the artefact file is gone, or cannot be resolved
        return Skipped(version, SkipCode.ARTEFACT_MISSING, exc.message)
    except FormatError as exc:
        return Skipped(version, SkipCode.MANIFEST_INVALID, exc.message)
    except WardenError as exc:  # any other refusal: not a version to put in production
        return Skipped(version, SkipCode.MANIFEST_INVALID, exc.message)


def _restaged(saved: Mapping[str, Any], stage: str, now: datetime) -> dict[str, Any]:
    """The saved input as a decision now: the target stage, no production status, ``now``."""
    model = dict(saved["model"])
    model["stage"] = stage
    return {**saved, "model": model, "production": {}, "now": format_time(now)}


def _denial(version: str, decision: Decision) -> Skipped:
    rules = tuple(sorted({v.rule for v in decision.violations}))
    text = "; ".join(f"{v.rule}: {v.message}" for v in decision.violations)
    return Skipped(version, SkipCode.DENIED,
                   f"denied by {decision.bundle_name} v{decision.bundle_version}: "
                   + (text or "the policy does not allow it"), rules)


def choose_rollback_target(
    *,
    registry: Registry,
    model: ModelConfig,
    stage: str,
    current: str,
    decided: Mapping[str, Mapping[str, Any]],
    inputs_dir: Path,
    engine: PolicyEngine,
    bundle: PolicyBundle,
    now: datetime,
    reasons: Sequence[str] = (),
    exclude: Collection[str] = (),
) -> RollbackChoice:
    """The version ``stage`` of ``model`` should go back to from ``current`` (see the module
    docstring for the rules); ``target=None`` when none passes.

    ``decided`` is the governor's decided state for this model (``Governor.decided()[name]``:
    version → entry), ``inputs_dir`` its ``state_dir/inputs``; ``engine`` must evaluate
    ``bundle``, the bundle now in force. ``reasons`` are the rollback rule's reasons (from
    the policy's ``rollback.reasons``), carried into the evidence. ``exclude`` names versions
    the caller will not go back to — pass the versions this stage was already rolled back
    *from*, or a drifting version could be chosen again after the one replacing it drifts.

    Raises :class:`~trust.errors.StorageUnavailableError` when a saved input or the registry
    cannot be read (the caller retries), and :class:`~trust.errors.PolicyError` when
    ``engine`` does not evaluate ``bundle``.
    """
    if engine.bundle.digest != bundle.digest:
        raise PolicyError(
            f"rollback: the engine evaluates bundle {engine.bundle.name} "
            f"v{engine.bundle.version} ({engine.bundle.digest}), not {bundle.name} "
            f"v{bundle.version} ({bundle.digest})",
            hint="re-decide candidates with the engine of the bundle in force",
        )
    ordered, skipped, others = _candidates(decided, stage=stage, current=current,
                                           exclude=frozenset(exclude))
    common: dict[str, Any] = {
        "model": model.name, "stage": stage, "current": current, "reasons": tuple(reasons),
        "policy_name": bundle.name, "policy_version": bundle.version,
        "policy_digest": bundle.digest, "not_candidates": others,
    }
    for seq, version, entry in ordered:
        saved = _saved_input(inputs_dir, model.name, version, entry)
        if isinstance(saved, Skipped):
            skipped.append(saved)
            continue
        mv = _read_version(registry, model.name, version)
        if isinstance(mv, Skipped):
            skipped.append(mv)
            continue
        judged = saved["model"].get("artifact_sha256")
        if judged != mv.artefact_sha256:
            skipped.append(Skipped(
                version, SkipCode.ARTEFACT_CHANGED,
                f"{mv.artefact_path}: SHA-256 is {mv.artefact_sha256}, but the version was "
                f"decided on artefact {judged}"))
            continue
        policy_input = _restaged(saved, stage, now)
        try:
            decision = engine.evaluate(policy_input, now=now)
        except PolicyError as exc:
            skipped.append(Skipped(version, SkipCode.POLICY_ERROR, exc.message))
            continue
        if not decision.allow:
            skipped.append(_denial(version, decision))
            continue
        return RollbackChoice(
            target=version, decision=decision, skipped=tuple(skipped),
            policy_input=policy_input, input_sha256=decision.input_sha256,
            artefact_sha256=mv.artefact_sha256, target_seq=seq, **common,
        )
    return RollbackChoice(target=None, decision=None, skipped=tuple(skipped), **common)


def save_input(choice: RollbackChoice, inputs_dir: Path) -> Path:
    """Keep the target's re-decided policy input at ``inputs_dir/<sha256>.json`` (atomic,
    content-addressed), so the rollback decision replays with ``warden policy eval``.

    Raises :class:`~trust.errors.StorageUnavailableError` when it cannot be written, and
    ValueError for a choice without a target (nothing was decided to keep).
    """
    if choice.policy_input is None or choice.input_sha256 is None:
        raise ValueError("a rollback choice without a target has no policy input to save")
    path, digest = keep_json(inputs_dir, choice.policy_input,
                             what="the rollback's policy input")
    assert digest == choice.input_sha256  # the engine hashed the same canonical JSON
    return path
