"""The one YAML reader: PyYAML's safe loader, refusing a mapping that repeats a key.

PyYAML keeps the last of two equal keys without a word, so ``min_accuracy: 0.88`` followed
by ``min_accuracy: 0.10`` would check, sign and show 0.1 — one file saying two things to two
readers. JSON is already read strictly (:func:`trust.canonical.loads_strict`); every YAML
file Warden reads (bundle manifests and data, ``hub.yaml``, ``agent.yaml``, model manifests
and cards) goes through :func:`load` so the same rule holds there.

Booleans are YAML 1.2's: only ``true``/``false`` (any case PyYAML knows: ``true``, ``True``,
``TRUE``). PyYAML follows YAML 1.1, where ``on``, ``off``, ``yes``, ``no``, ``y`` and ``n``
are booleans too — so a hook's ``on: [drift_alert]`` would become the key ``True``, and a
country code ``NO`` the value ``False``. Those words are strings here.

Errors are :class:`~trust.errors.FormatError` (or the class the caller passes) naming the
source, the key and the line of its second occurrence.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from trust.errors import FormatError, WardenError

__all__ = ["load"]


class _DuplicateKeyError(yaml.MarkedYAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader whose mappings refuse a key they already hold."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            # Only the mapping's own keys may not repeat: a key that overrides one brought in
            # by a ``<<`` merge is what merges are for.
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:  # an unhashable key: the base constructor reports it
                    break
                if duplicate:
                    raise _DuplicateKeyError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]


_BOOL = "tag:yaml.org,2002:bool"
# A copy without YAML 1.1's booleans (SafeLoader's own table stays as it is) ...
_StrictLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# ... and YAML 1.2's core-schema booleans instead.
_StrictLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load(text: str | bytes, *, source: str, error: type[WardenError] = FormatError) -> Any:
    """Parse one YAML document; duplicates and syntax errors raise ``error`` naming ``source``."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except _DuplicateKeyError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise error(f"{source}: {exc.problem}{where}",
                    hint="each key may appear once in a mapping") from None
    except yaml.YAMLError as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise error(f"{source}: not valid YAML ({first})") from None
    except (ValueError, RecursionError) as exc:
        # PyYAML raises a bare ValueError for an impossible date such as 2025-13-45.
        raise error(f"{source}: not valid YAML ({exc})") from None
