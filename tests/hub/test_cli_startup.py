"""``warden hub`` registers its commands without loading the server stack.

The ``warden`` CLI builds every group's parser at start-up, so whatever ``hub.cli`` imports at
module level is paid by every command, ``warden --help`` included.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("grpc", "sqlalchemy", "alembic", "protos", "numpy", "scipy", "regopy", "yaml",
         "cryptography", "google")

_PROBE = """
import argparse, sys
import trust.cli.main
before = set(sys.modules)
import hub.cli
parser = argparse.ArgumentParser(prog="warden")
hub.cli.register(parser.add_subparsers())
for argv in (["hub", "--help"], ["hub", "serve", "--help"], ["hub", "proof", "--help"]):
    try:
        parser.parse_args(argv)
    except SystemExit:
        pass
print(" ".join(sorted(set(sys.modules) - before)))
"""


def test_registering_hub_commands_imports_nothing_heavy() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         check=True).stdout.split("\n")[-2]
    loaded = set(out.split())
    assert "hub.cli" in loaded  # the probe really imported it
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == [], f"hub.cli registration imported {heavy}"
    assert sorted(m for m in loaded if m.startswith("hub.")) == ["hub.cli"]
