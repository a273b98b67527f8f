"""Input projections: the parts of the policy input a bundle declares that its Rego reads.

rego-cpp turns every node of the input into a term before it evaluates anything (tens of
microseconds per JSON node), so an agent's full policy input — evidence with per-group
confusion counts, rates and intervals the policy never looks at — costs more to *load* than
to decide on. A bundle may therefore declare, in ``bundle.yaml``::

    input_projection:
      - schema
      - model
      - evidence.performance
      - evidence.fairness.*.demographic_parity_difference
      - evidence.fairness.*.groups.*.n

and the engine hands Rego only those subtrees. The projection is part of the signed manifest,
so it is pinned by the bundle digest: a replay (``warden policy eval BUNDLE --input FILE``)
applies the same projection to the same full input and reaches the same decision. The
decision records the SHA-256 of the full input as given *and* of the projected input.

Path syntax (:func:`parse_path`): dot-separated segments; a segment is ``*`` ("every key of an
object, every element of an array") or a key of letters, digits, ``_`` and ``-``. A path may
not be empty, start or end with a dot, or repeat; the list may not be empty (omit the key to
give the policy the whole input).

Semantics (:meth:`InputProjection.apply`), for the union of the paths:

* at the end of a path the whole subtree is kept;
* an object keeps the keys some path names (``*`` names them all), each projected further;
  keys no path names are dropped, and a named key that is absent stays absent;
* an array under ``*`` keeps every element, in order, each projected further; an array where
  the next segment is a key keeps no element (a key does not index an array);
* a scalar is kept as it is wherever a path reaches it.

So along every path, each position that exists in the input exists in the projection with the
same JSON type, and under a ``*`` it has the same keys (or elements).

Safety (:func:`uncovered_references`): a projection can only remove what the policy must not
read — a policy that read a removed path would see *undefined*, and a deny rule that no longer
fires is an allow. So a projection is accepted only when every reference to ``input`` in the
bundle's policy modules (``*_test.rego`` excluded) is covered. The scan is textual and
deliberately conservative: it reads each ``input`` reference as far as it is a chain of
``.key`` and ``[...]`` parts written without spaces; a bracket holding one string literal is
that key, any other bracket (a variable, a number, an expression) is ``*``. A reference is
then covered when

* it is a plain read: some path is a prefix of it (``*`` in the path matches anything, a key in
  the path only that key; the subtree under the path's end is whole);
* it is the whole argument of ``object.keys(...)``: as above, or some path runs through it and
  continues with ``*`` (the keys are kept);
* it is the whole argument of a type test (``is_object``, ``is_number``, ``is_string``,
  ``is_boolean``, ``is_array``, ``is_set``, ``is_null``, ``type_name``): as above, or some path
  runs through it (presence and type are kept along a path).

Anything the scan cannot follow reads more, never less: ``input`` alone (``x := input``,
``some k, v in input``, ``f(input)``), ``input[x]``, a reference that is followed by a space,
an ``import input.a as a`` alias (the alias reads all of ``input.a``) — so a policy that holds
on to part of the input in a variable needs that whole part in the projection. The engine
refuses to evaluate a bundle whose projection does not cover its references (fail closed), and
``warden policy check`` reports each uncovered reference as ``file:line:col``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from trust.errors import FormatError, PolicyError

__all__ = [
    "STAR",
    "InputProjection",
    "InputReference",
    "ReadKind",
    "check_projection",
    "input_references",
    "parse_path",
    "require_coverage",
    "uncovered_references",
]

STAR = "*"
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def parse_path(text: Any, *, what: str) -> tuple[str, ...]:
    """The segments of one projection path such as ``evidence.fairness.*.groups``."""
    if not isinstance(text, str) or not text:
        raise FormatError(
            f"{what}: an input_projection path must be a non-empty string, got {text!r}"
        )
    segments = tuple(text.split("."))
    for segment in segments:
        if segment != STAR and not _KEY_RE.match(segment):
            raise FormatError(
                f"{what}: input_projection path {text!r}: segment {segment!r} must be '*' or "
                "a key of letters, digits, '_' and '-' (paths are dot-separated, no spaces)"
            )
    return segments


def check_projection(value: Any, *, what: str) -> tuple[str, ...]:
    """A non-empty list of distinct, well-formed paths (as given, in order)."""
    if not isinstance(value, list | tuple) or not value:
        raise FormatError(
            f"{what}: field 'input_projection' must be a non-empty list of input paths, got "
            f"{value!r}",
            hint="omit input_projection to give the policy the whole input",
        )
    seen: set[str] = set()
    for path in value:
        parse_path(path, what=what)
        if path in seen:
            raise FormatError(f"{what}: input_projection path {path!r} is listed twice")
        seen.add(path)
    return tuple(value)


# --- applying a projection --------------------------------------------------------------------


@dataclass
class _Node:
    """A trie of paths: ``whole`` keeps the subtree; ``keys``/``star`` say what to keep below."""

    whole: bool = False
    keys: dict[str, _Node] = field(default_factory=dict)
    star: _Node | None = None

    def merge(self, other: _Node) -> None:
        """Make this node keep everything ``other`` keeps too."""
        self.whole = self.whole or other.whole
        for key, child in other.keys.items():
            self.keys.setdefault(key, _Node()).merge(child)
        if other.star is not None:
            if self.star is None:
                self.star = _Node()
            self.star.merge(other.star)

    def settle(self) -> None:
        """Fold ``*`` into every named key (a key is also matched by ``*``), recursively."""
        if self.whole:
            self.keys.clear()
            self.star = None
            return
        if self.star is not None:
            for child in self.keys.values():
                child.merge(self.star)
            self.star.settle()
        for child in self.keys.values():
            child.settle()


def _project(value: Any, node: _Node) -> Any:
    if node.whole:
        return value
    if isinstance(value, Mapping):
        star = node.star
        if star is None:
            return {k: _project(value[k], sub) for k, sub in node.keys.items() if k in value}
        keys = node.keys
        return {k: _project(v, keys.get(k, star)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [] if node.star is None else [_project(v, node.star) for v in value]
    return value


@dataclass(frozen=True)
class InputProjection:
    """A bundle's declared projection, ready to apply (see the module docstring)."""

    paths: tuple[str, ...]
    _root: _Node = field(repr=False, compare=False, hash=False)

    @classmethod
    def from_paths(cls, paths: Sequence[str], *, what: str = "input_projection") -> InputProjection:
        """Parse and compile ``paths`` (raising :class:`FormatError` naming ``what``)."""
        checked = check_projection(list(paths), what=what)
        root = _Node()
        for path in checked:
            node = root
            for segment in parse_path(path, what=what):
                if segment == STAR:
                    if node.star is None:
                        node.star = _Node()
                    node = node.star
                else:
                    node = node.keys.setdefault(segment, _Node())
            node.whole = True
        root.settle()
        return cls(checked, root)

    @property
    def segments(self) -> tuple[tuple[str, ...], ...]:
        """Each path split into segments."""
        return tuple(tuple(p.split(".")) for p in self.paths)

    def apply(self, input_doc: Mapping[str, Any]) -> dict[str, Any]:
        """The projected input: only the declared subtrees of ``input_doc`` (not copied)."""
        out = _project(input_doc, self._root)
        if not isinstance(out, dict):  # pragma: no cover - a Mapping projects to a dict
            raise PolicyError("policy input must be a JSON object")
        return out


# --- what the policy reads --------------------------------------------------------------------


class ReadKind(StrEnum):
    """How a reference reads the input (what a projection must keep for it)."""

    VALUE = "value"
    KEYS = "keys"
    TYPE = "type"


@dataclass(frozen=True)
class InputReference:
    """One ``input`` reference in a policy module: where, the source text, its pattern."""

    file: str
    line: int
    column: int
    text: str
    segments: tuple[str, ...]
    kind: ReadKind

    @property
    def needs(self) -> str:
        """The projection path that would cover this reference (``input`` alone: none)."""
        path = ".".join(self.segments) or "(the whole input: no projection can cover it)"
        if self.kind is ReadKind.KEYS and self.segments:
            return f"{path}.* (keys)"
        return path

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.text} ({self.kind.value} read)"


_INPUT_RE = re.compile(r"(?<![\w.$])input(?![\w$])")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRING_RE = re.compile(r'^"(?:[^"\\\n]|\\.)*"$|^`[^`]*`$')
_KEYS_CALL_RE = re.compile(r"(?<![\w.])object\s*\.\s*keys\s*\(\s*$")
_TYPE_CALL_RE = re.compile(
    r"(?<![\w.])(?:is_object|is_number|is_string|is_boolean|is_array|is_set|is_null|type_name)"
    r"\s*\(\s*$"
)
_CLOSE_RE = re.compile(r"\s*\)")
_LOOKBEHIND = 64
_BRACKETS = {"[": "]", "(": ")", "{": "}"}


def _closing(code: str, start: int) -> int:
    """The offset of the ``]`` matching the ``[`` at ``start``, or -1."""
    stack = []
    for i in range(start, len(code)):
        c = code[i]
        if c in _BRACKETS:
            stack.append(_BRACKETS[c])
        elif c in ")]}":
            if not stack or stack.pop() != c:
                return -1
            if not stack:
                return i
    return -1


def _index_segment(raw: str) -> str:
    inner = raw.strip()
    if _STRING_RE.match(inner):
        if inner.startswith("`"):
            return inner[1:-1]
        try:
            key = json.loads(inner)
        except json.JSONDecodeError:
            return STAR
        return key if isinstance(key, str) else STAR
    return STAR


def _references(path: str, text: str) -> list[InputReference]:
    # Imported here: trust.policy._rego loads regopy, and manifests are read without it.
    from trust.policy._rego.scan import code_only

    code = code_only(text)
    refs = []
    for m in _INPUT_RE.finditer(code):
        segments: list[str] = []
        pos = m.end()
        while pos < len(code):
            if code[pos] == ".":
                ident = _IDENT_RE.match(code, pos + 1)
                if ident is None:
                    break
                segments.append(ident.group(0))
                pos = ident.end()
            elif code[pos] == "[":
                close = _closing(code, pos)
                if close < 0:
                    break
                segments.append(_index_segment(text[pos + 1 : close]))
                pos = close + 1
            else:
                break
        before = code[max(0, m.start() - _LOOKBEHIND) : m.start()]
        closed = _CLOSE_RE.match(code, pos) is not None
        kind = ReadKind.VALUE
        if closed and _KEYS_CALL_RE.search(before):
            kind = ReadKind.KEYS
        elif closed and _TYPE_CALL_RE.search(before):
            kind = ReadKind.TYPE
        line = code.count("\n", 0, m.start()) + 1
        column = m.start() - (code.rfind("\n", 0, m.start()) + 1) + 1
        refs.append(
            InputReference(path, line, column, text[m.start() : pos], tuple(segments), kind)
        )
    return refs


def input_references(modules: Mapping[str, str]) -> list[InputReference]:
    """Every ``input`` reference in ``modules`` (path → Rego text), in file and text order."""
    return [ref for path in sorted(modules) for ref in _references(path, modules[path])]


def _matches(path: Sequence[str], ref: Sequence[str]) -> bool:
    """Whether ``path`` matches ``ref`` segment by segment (as far as the shorter goes): ``*``
    in the path matches anything; a key matches only that key, never the reference's ``*``."""
    return all(p == STAR or p == r != STAR for p, r in zip(path, ref, strict=False))


def _covered(ref: InputReference, paths: Iterable[tuple[str, ...]]) -> bool:
    n = len(ref.segments)
    for path in paths:
        if len(path) <= n and _matches(path, ref.segments):
            return True  # the whole subtree at (or above) the reference is kept
        if len(path) > n and _matches(path[:n], ref.segments):
            if ref.kind is ReadKind.TYPE:
                return True
            if ref.kind is ReadKind.KEYS and path[n] == STAR:
                return True
    return False


def uncovered_references(
    projection: InputProjection, modules: Mapping[str, str]
) -> list[InputReference]:
    """The references in the policy ``modules`` that ``projection`` does not cover."""
    paths = projection.segments
    policy = {p: t for p, t in modules.items() if not p.endswith("_test.rego")}
    return [ref for ref in input_references(policy) if not _covered(ref, paths)]


def require_coverage(
    projection: InputProjection,
    modules: Mapping[str, str],
    *,
    what: str,
    locate: Mapping[str, str] | None = None,
) -> None:
    """Raise :class:`PolicyError` listing every uncovered reference (``locate`` maps a bundle
    file name to the path shown, e.g. its file on disk)."""
    missing = uncovered_references(projection, modules)
    if not missing:
        return
    where = locate or {}
    lines = [
        f"{where.get(r.file, r.file)}:{r.line}:{r.column}: {r.text} ({r.kind.value} read) "
        f"needs {r.needs}"
        for r in missing
    ]
    raise PolicyError(
        f"{what}: input_projection does not cover {len(missing)} input reference(s) of the "
        "policy (it would see them undefined):\n  " + "\n  ".join(lines),
        hint="add each needed path (or a prefix of it) to input_projection in bundle.yaml, "
        "or remove input_projection",
    )
