"""Entry point of the ``warden`` console script.

Every command is a function ``(args) -> int``. :func:`main` catches :class:`WardenError` once,
prints a one-line reason (plus a hint) to stderr and returns the error's exit code: ``2`` for a
user mistake, ``1`` for a verification failure. A traceback only ever means a bug in Warden.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import cast

from trust.errors import EXIT_USER_ERROR, WardenError

__all__ = ["main", "build_parser", "HelpFormatter"]

ENTRY_POINT_GROUP = "warden.commands"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the hand-wrapped examples in epilogs as written."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with one line and a pointer to --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"error: {message}\nhint: run '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every installed command group."""
    parser = _Parser(
        prog="warden",
        description="Warden: federated model governance with verifiable evidence.",
        formatter_class=HelpFormatter,
        epilog="Run 'warden GROUP --help' for a group's commands and examples.",
    )
    subparsers = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(title="command groups", metavar="GROUP"),
    )
    subparsers.required = True
    registrars = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    for ep in registrars:
        register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None] = ep.load()
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``warden`` command and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USER_ERROR
    try:
        return handler(args)
    except WardenError as exc:
        print(f"error: {exc.diagnostics()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error of ours. Point stdout at devnull
        # so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def add_group(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    description: str | None = None,
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add a command group ``warden NAME ...`` and return its sub-command table."""
    group = subparsers.add_parser(
        name,
        help=help_text,
        description=description or help_text,
        formatter_class=HelpFormatter,
    )
    commands = group.add_subparsers(title="commands", metavar="COMMAND")
    commands.required = True
    return commands


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Callable[[argparse.Namespace], int],
    help_text: str,
    example: str,
) -> argparse.ArgumentParser:
    """Add one command with a mandatory example shown at the end of its ``--help``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"example:\n  {example}",
        formatter_class=HelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
