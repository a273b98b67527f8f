"""Python values from rego-cpp result trees.

Invariants: :data:`UNDEFINED` is a singleton distinct from every JSON value (``None``,
``False``, ``{}``), so "no rule produced a value" is never read as ``null`` or ``false``;
decoding walks the node tree (the slow, always-correct path) and fails with
:class:`~.diagnostics.EvalFailed` on any node kind it does not know, never guessing.
"""

from __future__ import annotations

import ctypes
import json
from typing import Any

from regopy import rego_shared as _rs

from trust.policy._rego.diagnostics import EvalFailed

__all__ = ["UNDEFINED", "node_value", "result_values", "child_named", "type_name"]


class _Undefined:
    """Marker for a Rego result that is undefined (no rule produced a value)."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED = _Undefined()


def type_name(node: Any) -> str:
    """The node's type name (``rego-builtinfunction``, …); empty if rego-cpp cannot say."""
    size = _rs.rego.regoNodeTypeNameSize(node)
    buf = ctypes.create_string_buffer(size + 1)
    if _rs.rego.regoNodeTypeName(node, buf, size + 1) != 0:
        return ""
    return buf.value.decode("utf-8")


def child_named(node: Any, name: str) -> Any:
    """The first child of ``node`` whose type name is ``name``, or ``None``."""
    for i in range(_rs.rego_node_size(node)):
        child = _rs.rego_node_get(node, i)
        if type_name(child) == name:
            return child
    return None


def _string(raw: str) -> str:
    # rego-cpp keeps some strings in their JSON-quoted form; decode those, keep the rest.
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            return raw
        if isinstance(value, str):
            return value
    return raw


def node_value(node: Any) -> Any:
    """Build a Python value from a rego-cpp result node (the slow, always-correct path)."""
    kind = _rs.rego.regoNodeType(node)
    size = _rs.rego_node_size(node)
    if kind in (1002, 1003):  # Term, Scalar: one child
        return node_value(_rs.rego_node_get(node, 0))
    if kind == 1008:
        return int(_rs.rego_node_value(node))
    if kind == 1009:
        return float(_rs.rego_node_value(node))
    if kind == 1010:
        return _string(_rs.rego_node_value(node))
    if kind == 1011:
        return True
    if kind == 1012:
        return False
    if kind == 1013:
        return None
    if kind in (1004, 1005, 1015):  # Array, Set, Terms
        return [node_value(_rs.rego_node_get(node, i)) for i in range(size)]
    if kind == 1006:  # Object of ObjectItem(key, value)
        obj = {}
        for i in range(size):
            item = _rs.rego_node_get(node, i)
            key = node_value(_rs.rego_node_get(item, 0))
            obj[key if isinstance(key, str) else json.dumps(key)] = node_value(
                _rs.rego_node_get(item, 1)
            )
        return obj
    if kind == 1014:
        return UNDEFINED
    raise EvalFailed([f"unexpected node kind {kind} in a Rego result"])


def result_values(out: Any) -> list[tuple[list[Any], dict[str, Any]]]:
    """(expression values, bindings) of each result in a query output, from the node tree."""
    node = _rs.rego_output_node(out)
    kind = _rs.rego.regoNodeType(node)
    if kind == 1014:  # Undefined
        return []
    if kind == 1018:  # Result
        results = [node]
    elif kind == 1017:  # Results
        results = [_rs.rego_node_get(node, i) for i in range(_rs.rego_node_size(node))]
    else:
        raise EvalFailed([f"unexpected node kind {kind} in a Rego query output"])
    converted = []
    for result in results:
        exprs: list[Any] = []
        bindings: dict[str, Any] = {}
        for i in range(_rs.rego_node_size(result)):
            child = _rs.rego_node_get(result, i)
            ckind = _rs.rego.regoNodeType(child)
            if ckind == 1015:  # Terms
                exprs = node_value(child)
            elif ckind == 1016:  # Bindings of Binding(Var, value)
                for j in range(_rs.rego_node_size(child)):
                    binding = _rs.rego_node_get(child, j)
                    var = _rs.rego_node_value(_rs.rego_node_get(binding, 0))
                    bindings[var] = node_value(_rs.rego_node_get(binding, 1))
        converted.append((exprs, bindings))
    return converted
