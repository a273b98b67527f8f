"""Model card completeness against Mitchell et al. (2019), "Model Cards for Model Reporting".

The nine sections of the paper are the checklist: model details, intended use, factors,
metrics, evaluation data, training data, quantitative analyses, ethical considerations,
caveats and recommendations. A card is Markdown (a section is a heading whose title names
it, e.g. ``## Intended use``) or YAML/JSON (a top-level key, e.g. ``intended_use:``).

Invariants: a section counts as present only if it has content — an empty body, or one
that only says ``TODO``/``TBD``/``N/A``, is *missing*; heading matching is case- and
punctuation-insensitive and accepts the common synonyms listed in :data:`SECTIONS`;
``completeness`` is the share of the nine sections present. Everything here is pure:
:func:`card_from_text` parses a card's text (the file's name is passed in), and reading the
file is :func:`agent.checks.files.parse_model_card`, called by the I/O edge
(:func:`agent.checks.run.run_checks`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from agent.checks.lineage import parse_yaml_or_json
from trust.errors import FormatError

__all__ = ["SECTIONS", "card_from_text", "card_sections", "documentation_evidence"]


SECTIONS: dict[str, tuple[str, ...]] = {
    "model_details": ("model details", "model detail", "details", "model description", "overview"),
    "intended_use": ("intended use", "intended uses", "uses", "intended use cases", "use cases"),
    "factors": ("factors", "relevant factors", "evaluation factors"),
    "metrics": (
        "metrics",
        "model performance measures",
        "performance measures",
        "evaluation metrics",
    ),
    "evaluation_data": ("evaluation data", "evaluation dataset", "eval data", "test data"),
    "training_data": ("training data", "training dataset", "train data"),
    "quantitative_analyses": (
        "quantitative analyses",
        "quantitative analysis",
        "unitary results",
        "intersectional results",
        "results",
        "evaluation results",
    ),
    "ethical_considerations": ("ethical considerations", "ethics", "ethical concerns", "risks"),
    "caveats_and_recommendations": (
        "caveats and recommendations",
        "caveats",
        "recommendations",
        "limitations",
        "caveats recommendations",
    ),
}
_PLACEHOLDER = re.compile(
    r"^\s*(todo|tbd|tba|n/?a|none|-+|\.\.\.|xxx|lorem ipsum.*)\s*\.?\s*$", re.I
)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _norm(title: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", title.lower()).split())


_LOOKUP = {_norm(alias): name for name, aliases in SECTIONS.items() for alias in (*aliases, name)}


def _has_content(body: Any) -> bool:
    if body is None:
        return False
    if isinstance(body, str):
        lines = [ln for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("<!--")]
        return any(not _PLACEHOLDER.match(ln.strip("-*> \t")) for ln in lines)
    if isinstance(body, Mapping):
        return any(_has_content(v) for v in body.values())
    if isinstance(body, (list, tuple)):
        return any(_has_content(v) for v in body)
    return True  # a number or boolean is content


def card_sections(card: str | Mapping[str, Any]) -> dict[str, bool]:
    """``{section: present}`` for the nine sections, from Markdown text or a parsed mapping."""
    found = dict.fromkeys(SECTIONS, False)
    if isinstance(card, Mapping):
        items: list[tuple[str, Any]] = list(card.items())
        # Some YAML cards nest everything under one top-level key (``model_card:``).
        if len(items) == 1 and isinstance(items[0][1], Mapping):
            items = list(items[0][1].items())
        for key, body in items:
            name = _LOOKUP.get(_norm(str(key)))
            if name and _has_content(body):
                found[name] = True
        return found
    current: str | None = None
    level = 0
    bodies: dict[str, list[str]] = {}
    for line in card.splitlines():
        m = _HEADING.match(line)
        if m:
            name = _LOOKUP.get(_norm(m.group(2)))
            depth = len(m.group(1))
            if name is not None:
                current, level = name, depth
                bodies.setdefault(name, [])
                continue
            if current is not None and depth <= level:
                current = None  # a sibling heading we don't know ends the section
                continue
            if current is not None:  # a sub-heading is content of its section
                bodies[current].append(m.group(2))
            continue
        if current is not None:
            bodies[current].append(line)
    for name, lines in bodies.items():
        if _has_content("\n".join(lines)):
            found[name] = True
    return found


def card_from_text(text: str, path: PurePath) -> str | dict[str, Any]:
    """A model card's ``text``: kept as Markdown, or the mapping of a .yaml/.yml/.json card.

    ``path`` only names the source (its suffix picks the format); nothing is read from it.
    """
    p = path
    if p.suffix.lower() in (".yaml", ".yml", ".json"):
        data = parse_yaml_or_json(text, p)
        if not isinstance(data, dict):
            raise FormatError(
                f"{p}: model card must be a mapping of sections, got {type(data).__name__}"
            )
        return data
    return text


def documentation_evidence(
    card: str | Mapping[str, Any] | None,
    *,
    explainability_present: bool = False,
    explainability_sha256: str | None = None,
) -> dict[str, Any]:
    """The ``documentation`` evidence section."""
    sections = card_sections(card) if card is not None else dict.fromkeys(SECTIONS, False)
    present = sum(sections.values())
    return {
        "model_card_present": card is not None,
        "sections": sections,
        "missing_sections": [s for s, ok in sections.items() if not ok],
        "completeness": present / len(SECTIONS),
        "complete": present == len(SECTIONS),
        "explainability_present": bool(explainability_present),
        "explainability_sha256": explainability_sha256,
    }
