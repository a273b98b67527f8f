"""``warden hub`` registers its commands without loading the server stack; its help is plain text.

The ``warden`` CLI builds every group's parser at start-up, so whatever ``hub.cli`` imports at
module level is paid by every command, ``warden --help`` included.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

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


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_hub_help_is_plain_text_not_restructuredtext() -> None:
    # argparse prints descriptions as written: ``literals`` and "::" blocks would show raw.
    import hub.cli

    parser = argparse.ArgumentParser(prog="warden")
    hub.cli.register(parser.add_subparsers())
    helps = {p.prog: p.format_help() for p in _parsers(parser)}
    assert "warden hub" in helps and "warden hub proof consistency" in helps
    for prog, text in helps.items():
        assert "``" not in text and "::" not in text and ":func:" not in text, (prog, text)
    assert "Create, run and operate a Warden hub." in helps["warden hub"]
    assert "--hub-dir DIR" in helps["warden hub"]
