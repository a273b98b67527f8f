"""The pure check modules do no file I/O and read no clock (STYLE.md §8: arrays in, evidence out).

Files are read at the I/O edge (:mod:`agent.checks.files`, :func:`agent.checks.evidence.run_checks`,
:mod:`agent.data`) and the time comes in as an explicit ``now``. This test AST-scans each pure
module for calls that open, read, write or list files (``open``, ``Path.read_*``/``write_*``,
``os.*``, ``shutil``, NumPy/pandas/pyarrow file readers) or read the clock (``datetime.now``,
``utcnow``, ``date.today``, ``time.*``), with import aliases resolved, and for module-level
imports of the I/O modules. The checker is tested on planted violations so it can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PURE_MODULES = (
    "agent/checks/fairness.py",
    "agent/checks/fairness_counts.py",
    "agent/checks/disparity.py",
    "agent/checks/performance.py",
    "agent/checks/drift.py",
    "agent/checks/_stattests.py",
    "agent/checks/lineage.py",
    "agent/checks/documentation.py",
    "agent/checks/profile.py",
    "agent/checks/profile_format.py",
    "agent/checks/sketch.py",
    "agent/columns.py",
    "agent/labels.py",
    "agent/groups.py",
)

# Qualified call targets (after alias resolution): exact names, and prefixes (ending "." or "_").
_FORBIDDEN_CALLS = (
    "open",
    "io.open",
    "os.",
    "shutil.",
    "tempfile.",
    "pathlib.Path.",
    "datetime.datetime.now",
    "datetime.datetime.utcnow",
    "datetime.datetime.today",
    "datetime.date.today",
    "time.",
    "trust.timeutil.utcnow",
    "numpy.load",
    "numpy.save",
    "numpy.savez",
    "numpy.loadtxt",
    "numpy.genfromtxt",
    "numpy.fromfile",
    "pandas.read_",
    "pyarrow.parquet.",
    "pyarrow.csv.",
    "pyarrow.feather.",
)
# Method names that are file or clock operations whatever object they are called on.
_FORBIDDEN_METHODS = frozenset(
    {
        "read_text",
        "read_bytes",
        "write_text",
        "write_bytes",
        "open",
        "unlink",
        "mkdir",
        "touch",
        "iterdir",
        "glob",
        "rglob",
        "tofile",
        "now",
        "utcnow",
    }
)
# The checks' I/O edge; a pure module may not import it at module level. (agent.data's pure
# helpers live in agent.columns, agent.labels and agent.groups, which pure modules import.)
_IO_MODULES = ("agent.checks.files", "agent.checks.evidence", "agent.checks.run", "agent.data")


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name → qualified name for every import in the module (any scope)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    names[head] = head
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.expr) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


def _forbidden(qualified: str) -> bool:
    return any(
        qualified.startswith(rule) if rule.endswith((".", "_")) else qualified == rule
        for rule in _FORBIDDEN_CALLS
    )


def impurities(source: str, where: str = "<source>") -> list[str]:
    """``where:line: reason`` for every file-I/O or clock call and I/O-module import."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = []
    for node in tree.body:  # module-level imports only: a lazy compat re-export is allowed
        if isinstance(node, ast.Import | ast.ImportFrom):
            mods = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            )
            for mod in mods:
                if mod in _IO_MODULES:
                    found.append(f"{where}:{node.lineno}: imports the I/O module {mod}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        parts = _dotted(node.func)
        if isinstance(node.func, ast.Attribute) and node.func.attr in _FORBIDDEN_METHODS:
            found.append(f"{where}:{node.lineno}: calls .{node.func.attr}()")
            continue
        if parts is None:
            continue
        qualified = ".".join([aliases.get(parts[0], parts[0]), *parts[1:]])
        if _forbidden(qualified):
            found.append(f"{where}:{node.lineno}: calls {qualified}()")
    return found


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_check_module_does_no_io_and_reads_no_clock(module: str) -> None:
    path = ROOT / module
    assert impurities(path.read_text(encoding="utf-8"), module) == []


PLANTED = [
    "open('x')",
    "with open(p, 'rb') as f: pass",
    "import io\nio.open('x')",
    "from pathlib import Path\nPath('x').read_text()",
    "p.read_bytes()",
    "p.write_text('x')",
    "p.write_bytes(b'')",
    "p.open()",
    "import os\nos.listdir('.')",
    "import os\nos.path.exists('x')",
    "import os.path\nos.path.getsize('x')",
    "from os import path as osp\nosp.isfile('x')",
    "import shutil\nshutil.copy('a', 'b')",
    "import datetime as dt\ndt.datetime.now(dt.UTC)",
    "from datetime import datetime\ndatetime.utcnow()",
    "from datetime import date\ndate.today()",
    "import time\ntime.time()",
    "from time import time as clock\nclock()",
    "from trust.timeutil import utcnow\nutcnow()",
    "import numpy as np\nnp.load('x.npy')",
    "import pandas as pd\npd.read_csv('x.csv')",
    "import pyarrow.parquet as pq\npq.read_table('x')",
    "from agent.checks.files import sha256_file",
    "from agent.checks import files",
    "import agent.checks.evidence",
    "from agent.checks.run import run_checks",
    "from agent.data import factorize",
]

CLEAN = [
    "import numpy as np\nnp.sort(np.asarray([1]))",
    "from trust import strict_yaml\nstrict_yaml.load(text, source='m.yaml')",
    "s.replace('Z', '+00:00')",
    "from pathlib import PurePath\nPurePath('m.json').suffix.lower()",
    "import datetime as dt\ndt.datetime.fromisoformat('2025-01-01')",
    "def __getattr__(name):\n    from agent.checks import files\n    return files",
]


@pytest.mark.parametrize("source", PLANTED)
def test_checker_finds_planted_impurity(source: str) -> None:
    assert impurities(source), source


@pytest.mark.parametrize("source", CLEAN)
def test_checker_allows_pure_code(source: str) -> None:
    assert impurities(source) == []
