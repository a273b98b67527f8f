"""The evidence document: assembled from every check's section, versioned and validated.

:func:`build_evidence` assembles the sections the pure checks return and validates the
result against ``evidence.schema.json`` (schema id ``warden.evidence/v1``, JSON Schema Draft
2020-12, checked with ``jsonschema``); :func:`validate_evidence` checks a document read back.
Running the checks on files is :mod:`agent.checks.run` (:func:`~agent.checks.run.run_checks`,
the package's single I/O edge); ``CheckSpec`` and ``run_checks`` are still importable from
here, loaded on first use so that reading or validating evidence does not load the readers.

Invariants of every evidence document:

* ``schema`` is ``"warden.evidence/v1"``; every section key is always present (``null``
  when the check did not run), so a policy can tell "not measured" from "measured";
* only aggregates: counts, rates, statistics, digests, dates — never a row or a value of a
  non-sensitive column (group names are values of the sensitive features by design);
* every number is finite or ``null`` (JSON has no NaN);
* key names are stable: the policy engine reads them (see the schema's descriptions).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import numpy as np

from trust.errors import FormatError

if TYPE_CHECKING:
    from agent.checks.run import CheckSpec, run_checks
    from agent.checks.run import Progress as Progress

__all__ = [
    "SCHEMA_ID",
    "CheckSpec",
    "build_evidence",
    "validate_evidence",
    "evidence_schema",
    "run_checks",
]

SCHEMA_ID = "warden.evidence/v1"
SECTIONS = ("performance", "fairness", "drift", "lineage", "documentation")
_MOVED_TO_RUN = frozenset({"CheckSpec", "Progress", "run_checks"})


def __getattr__(name: str) -> Any:
    """``CheckSpec``, ``Progress`` and ``run_checks`` from :mod:`agent.checks.run`.

    Imported on first use, not at import time: :mod:`agent.checks.run` imports this module
    (for :func:`build_evidence`), and a plain import here would make the two a cycle.
    """
    if name in _MOVED_TO_RUN:
        from agent.checks import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def evidence_schema() -> dict[str, Any]:
    """The JSON Schema of the evidence document (loaded once)."""
    text = (Path(__file__).with_name("evidence.schema.json")).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _jsonable(obj: Any) -> Any:
    """Plain JSON types only: NumPy scalars unwrapped, NaN/inf to None, dates to ISO text."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (dt.date, dt.datetime)):
        return obj.isoformat()
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    return str(obj)


def build_evidence(
    *,
    performance: Mapping[str, Any] | None = None,
    fairness: Mapping[str, Mapping[str, Any]] | None = None,
    drift: Mapping[str, Any] | None = None,
    lineage: Mapping[str, Any] | None = None,
    documentation: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    generated_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """One validated evidence document from the check sections (``None`` = not run)."""
    when = generated_at or dt.datetime.now(dt.UTC)
    doc = _jsonable(
        {
            "schema": SCHEMA_ID,
            "generated_at": when.astimezone(dt.UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
            "data": data,
            "performance": performance,
            "fairness": fairness,
            "drift": drift,
            "lineage": lineage,
            "documentation": documentation,
        }
    )
    validate_evidence(doc)
    return doc  # type: ignore[no-any-return]


def validate_evidence(doc: Any) -> None:
    """Raise FormatError naming the key path, value and rule of the most relevant violation.

    Validation is ``jsonschema``'s Draft 2020-12 validator with format checks (``date-time``
    as RFC 3339 with an explicit offset); the message is one line, e.g.
    ``evidence.performance.accuracy: expected number or null, got "high"``.
    """
    errors = list(_validator().iter_errors(doc))
    if errors:
        worst = max(errors, key=jsonschema.exceptions.by_relevance())
        raise FormatError(_describe(worst))


def _is_date_time(value: object) -> bool:
    """RFC 3339 ``date-time``: full date, ``T``, time, and an explicit offset (or ``Z``)."""
    if not isinstance(value, str):
        return True  # formats only constrain strings
    if len(value) < 20 or value[10] not in "Tt":
        return False
    try:
        parsed = dt.datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return False
    return parsed.tzinfo is not None


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = evidence_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    # The draft's own checker lacks ``date-time`` unless the optional rfc3339-validator is
    # installed; evidence times must be checkable everywhere, so register it here.
    checker = jsonschema.FormatChecker()
    checker.checks("date-time")(_is_date_time)
    return jsonschema.Draft202012Validator(schema, format_checker=checker)


def _where(error: jsonschema.ValidationError) -> str:
    path = "evidence"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _describe(error: jsonschema.ValidationError) -> str:
    """One line: the path of the failing field, what was expected, and the value found."""
    where, rule = _where(error), error.validator
    # Plain JSON values here (jsonschema types them with an "unset" sentinel).
    value: Any = error.instance
    expected: Any = error.validator_value
    schema: Any = error.schema
    if rule == "required":
        missing = [k for k in expected if k not in value]
        return f"{where}: missing required key {missing[0]!r}"
    if rule == "additionalProperties":
        known = set(schema.get("properties", {}))
        extra = sorted(k for k in value if k not in known)
        return f"{where}: unknown key {extra[0]!r}"
    if rule == "type":
        kinds = [expected] if isinstance(expected, str) else list(expected)
        return f"{where}: expected {' or '.join(kinds)}, got {_short(value)}"
    if rule == "const":
        return f"{where}: must be {_short(expected)}, got {_short(value)}"
    if rule == "enum":
        allowed = ", ".join(_short(v) for v in expected)
        return f"{where}: must be one of {allowed}, got {_short(value)}"
    if rule in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{where}: {_short(value)} is outside the allowed range ({rule} {expected})"
    if rule == "pattern":
        return f"{where}: {_short(value)} does not match {expected}"
    if rule == "format":
        return f"{where}: {_short(value)} is not a valid {expected}"
    if rule in ("anyOf", "oneOf"):
        branch = _closest_branch(error)
        if branch is not None and branch[0]:
            # Only one shape fits this value's type (e.g. "null or a lineage object"):
            # its own error is the precise one.
            return _describe(branch[1])
        text = f"{where}: value {_short(value)} matches none of the allowed shapes"
        if branch is not None:
            text += f" (closest: {_describe(branch[1])})"
        return text
    return f"{where}: {error.message.splitlines()[0]}"


def _closest_branch(error: jsonschema.ValidationError) -> tuple[bool, Any] | None:
    """The most relevant error of the alternative the value comes closest to.

    Alternatives rejected only because the value has another JSON type (``null`` against an
    object) are set aside; among the rest, one whose constants match (such as
    ``"task": "binary"``) beats one whose do not, then fewer errors win. Returns its most
    relevant error, and whether it was the only alternative of this type.
    """
    by_branch: dict[Any, list[jsonschema.ValidationError]] = {}
    for sub in error.context or ():
        by_branch.setdefault(sub.schema_path[0] if sub.schema_path else None, []).append(sub)
    viable = [
        errs
        for errs in by_branch.values()
        if not any(e.validator == "type" and not e.relative_path for e in errs)
    ]
    if not viable:
        return None
    closest = min(viable, key=lambda errs: (any(e.validator == "const" for e in errs), len(errs)))
    return len(viable) == 1, max(closest, key=jsonschema.exceptions.by_relevance())


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) < 60 else text[:57] + "..."
