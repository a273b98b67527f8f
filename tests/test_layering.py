"""Import layering: ``trust`` imports none of ``agent``, ``hub`` and ``protos``; ``agent`` and
``hub`` never import each other; and generated protobuf code (``*_pb2``, ``*_pb2_grpc``) is
imported only at the wire edge. An auditor installs and runs ``trust`` alone (no gRPC, no
hub), the hub must not be able to reach into an agent (or the reverse) except over the wire
contract, and domain code never holds a protobuf message (STYLE.md point 3).

Checked two ways: statically (every ``import``/``from`` statement, relative ones resolved, and
``importlib.import_module("...")`` literals, in every ``.py`` file of the package) and, for
``trust``, dynamically (import every trust module in a fresh interpreter and look at
``sys.modules``). The checkers themselves are tested on planted violations so they can fail.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN: dict[str, frozenset[str]] = {
    "trust": frozenset({"agent", "hub", "protos"}),
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
    assert not {"agent", "hub", "protos"} & set(result["loaded"]), result["loaded"]


# --- generated protobuf code stays at the edge ------------------------------------------------

PB2_IMPORTERS: tuple[str, ...] = (
    "hub/services/*.py",  # thin servicers: convert, call a handler, convert back
    "protos/client.py",  # the one client: converts replies to its result types
    "protos/serde.py",  # the one wire-type <-> message conversion both sides use
    "protos/generate.py",  # regenerates the stubs
    "protos/warden/v1/*_pb2.py",  # the generated code itself
    "protos/warden/v1/*_pb2_grpc.py",
)
"""Files (repo-relative globs) allowed to import any ``*_pb2`` / ``*_pb2_grpc`` module.

Tests are not scanned: they may build raw messages to send what no client would."""

PB2_EXCEPTIONS: dict[str, tuple[str, ...]] = {
    # grpc's own health service (grpc_health.v1) is registered where the server is built; it
    # is not Warden's wire contract and never reaches domain code.
    "hub/server.py": ("grpc_health.",),
}
"""File -> module prefixes of generated code it alone may import (outside PB2_IMPORTERS)."""

SCANNED = ("trust", "agent", "hub", "protos", "bench", "deploy")
"""Top-level directories of shipped code scanned for generated-code imports."""


def is_generated(module: str) -> bool:
    """True for a protobuf-generated module name (any dotted part ends ``_pb2``/``_pb2_grpc``)."""
    return any(part.endswith(("_pb2", "_pb2_grpc")) for part in module.split("."))


def pb2_violations(files: list[tuple[str, str]]) -> list[str]:
    """``file: imports X`` for every generated module imported outside the allow-list.

    ``files`` are (repo-relative posix path, source) pairs.
    """
    found = []
    for rel, source in files:
        if any(fnmatch.fnmatchcase(rel, glob) for glob in PB2_IMPORTERS):
            continue
        parts = list(Path(rel).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        imports = imported_modules(source, ".".join(parts), is_package=rel.endswith("__init__.py"))
        allowed = PB2_EXCEPTIONS.get(rel, ())
        for name in sorted(imports):
            if is_generated(name) and not name.startswith(allowed):
                found.append(f"{rel}: imports {name}")
    return found


def _shipped_sources() -> list[tuple[str, str]]:
    return [
        (path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8"))
        for top in SCANNED if (ROOT / top).is_dir()
        for path in sorted((ROOT / top).rglob("*.py"))
    ]


def test_only_serde_servicers_and_clients_import_generated_code() -> None:
    sources = _shipped_sources()
    assert any(rel.startswith("hub/services/") for rel, _ in sources)
    found = pb2_violations(sources)
    assert not found, "\n".join(found)


def test_every_allowed_importer_exists() -> None:
    # A stale allow-list entry would silently allow whatever later takes its name.
    for glob in (*PB2_IMPORTERS, *PB2_EXCEPTIONS):
        assert list(ROOT.glob(glob)), f"{glob} matches no file"


@pytest.mark.parametrize(
    ("rel", "source", "flagged"),
    [
        ("agent/x.py", "from protos.warden.v1 import ledger_pb2", True),
        ("agent/x.py", "import protos.warden.v1.policy_pb2_grpc as g", True),
        ("hub/handlers.py", "from protos.warden.v1.ledger_pb2 import AppendRequest", True),
        ("hub/ledger/sql.py", "def f():\n    from protos.warden.v1 import common_pb2\n", True),
        ("hub/x.py", "import importlib\nimportlib.import_module('protos.warden.v1.ledger_pb2')",
         True),
        ("hub/server.py", "from protos.warden.v1 import ledger_pb2", True),
        ("hub/server.py", "from grpc_health.v1 import health_pb2", False),
        ("hub/handlers.py", "from grpc_health.v1 import health_pb2", True),
        ("hub/serde.py", "from protos.warden.v1 import ledger_pb2", True),
        ("protos/serde.py", "from protos.warden.v1 import ledger_pb2", False),
        ("hub/services/ledger.py", "from protos.warden.v1 import ledger_pb2 as pb", False),
        ("protos/client.py", "from protos.warden.v1 import ledger_pb2", False),
        ("protos/errors.py", "from .warden.v1 import ledger_pb2", True),
        ("agent/x.py", "from protos.client import HubClient", False),
    ],
)
def test_generated_code_checker_sees_planted_imports(rel: str, source: str, flagged: bool) -> None:
    assert bool(pb2_violations([(rel, source)])) is flagged
