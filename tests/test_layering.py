"""Import layering: ``trust`` imports neither ``agent`` nor ``hub``; those two never import
each other. An auditor installs and runs ``trust`` alone, and the hub must not be able to reach
into an agent (or the reverse) except over the wire contract.

Checked two ways: statically (every ``import``/``from`` statement, relative ones resolved, and
``importlib.import_module("...")`` literals, in every ``.py`` file of the package) and, for
``trust``, dynamically (import every trust module in a fresh interpreter and look at
``sys.modules``). The checker itself is tested on planted violations so it can fail.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN: dict[str, frozenset[str]] = {
    "trust": frozenset({"agent", "hub"}),
    "agent": frozenset({"hub"}),
    "hub": frozenset({"agent"}),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Absolute names of every module ``source`` (the code of ``module``) imports."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def violations(package: str) -> list[str]:
    """``file: imports X`` for every forbidden import under ``package``."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        module = _module_name(path)
        imports = imported_modules(
            path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py"
        )
        for name in sorted(imports):
            if name.split(".")[0] in FORBIDDEN[package]:
                found.append(f"{path.relative_to(ROOT)}: imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_forbidden_imports(package: str) -> None:
    if not (ROOT / package).is_dir():
        pytest.skip(f"{package}/ does not exist yet")
    assert list((ROOT / package).rglob("*.py")), f"{package}/ has no Python files"
    assert not violations(package), "\n".join(violations(package))


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("import hub", "trust.x", {"hub"}),
        ("import hub.ledger.store as s", "trust.x", {"hub.ledger.store"}),
        ("from agent.checks import fairness", "trust.x", {"agent.checks"}),
        ("from .. import hub", "trust.cli.x", {"trust", "trust.hub"}),
        ("from ..keys import KeyId", "trust.cli.x", {"trust.keys"}),
        ("from .main import add_group", "trust.cli.x", {"trust.cli.main"}),
        ("def f():\n    import agent.config\n", "trust.x", {"agent.config"}),
        ("import importlib\nimportlib.import_module('hub.cli')", "trust.x", {"hub.cli"}),
        ("__import__('agent')", "trust.x", {"agent"}),
    ],
)
def test_checker_sees_planted_imports(source: str, module: str, expected: set[str]) -> None:
    assert expected <= imported_modules(source, module)


def test_relative_import_in_a_package_init_resolves_against_the_package() -> None:
    assert "trust.keys" in imported_modules("from .keys import x", "trust", is_package=True)


def test_importing_all_of_trust_loads_neither_agent_nor_hub() -> None:
    code = """
import json, pkgutil, sys, importlib
import trust
names = [m.name for m in pkgutil.walk_packages(trust.__path__, "trust.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"imported": names, "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"trust.keys", "trust.dsse", "trust.root", "trust.cli.main"} <= set(result["imported"])
    assert not {"agent", "hub"} & set(result["loaded"]), result["loaded"]
