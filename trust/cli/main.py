"""Entry point of the ``warden`` console script.

Every command is a function ``(args) -> int``. :func:`main` catches :class:`WardenError` once,
prints a one-line reason (plus a hint) to stderr and returns the error's exit code: ``2`` for a
user mistake, ``1`` for a verification failure. A traceback only ever means a bug in Warden.

A :class:`BrokenPipeError` means "the reader went away" (``warden … | head``) and exits 0 only
when standard output really is the broken pipe; one from anything else (a child process, a
socket) is a failure: one ``error:`` line and a non-zero exit, never hidden.

Group and command descriptions are often module docstrings written in reStructuredText;
:class:`HelpFormatter` shows them as plain text (markup stripped, prose re-wrapped to the
terminal) and keeps indented blocks — examples, tables — exactly as written.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import sys
import textwrap
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import cast

from trust.errors import EXIT_USER_ERROR, WardenError

__all__ = ["main", "build_parser", "HelpFormatter", "rst_to_text"]

ENTRY_POINT_GROUP = "warden.commands"

# Inline reStructuredText, most specific first. A role's target may be ``title <target>`` or
# ``~pkg.mod.Name`` (shown as ``Name``), as Sphinx renders them.
_ROLE = re.compile(r":[A-Za-z][\w.+-]*(?::[A-Za-z][\w.+-]*)?:`([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``", re.S)
_INTERPRETED = re.compile(r"`([^`]+)`_{0,2}")
_STRONG = re.compile(r"(?<![\w*])\*\*(?=\S)([^*\n]+?)(?<=\S)\*\*(?![\w*])")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_BULLET = re.compile(r"^([*+-]|\d+[.)])\s+")


def _role_text(match: re.Match[str]) -> str:
    body = match.group(1)
    titled = re.fullmatch(r"(.*?)\s*<[^<>]+>", body, re.S)
    if titled:
        return titled.group(1)
    if body.startswith("~"):
        return body[1:].rsplit(".", 1)[-1]
    return body.lstrip("!")


def rst_to_text(text: str) -> str:
    """Inline reStructuredText markup (roles, ````literals````, emphasis) as plain text."""
    text = _ROLE.sub(_role_text, text)
    text = _LITERAL.sub(r"\1", text)
    text = _INTERPRETED.sub(r"\1", text)
    text = _STRONG.sub(r"\1", text)
    return _EMPHASIS.sub(r"\1", text)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as plain text: reStructuredText markup stripped, prose re-wrapped.

    A paragraph whose later lines are indented (an example, a table, a literal block) keeps
    its line breaks; a bullet list is wrapped item by item. Epilog examples
    (``example:`` + an indented command) therefore stay exactly as written.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = re.split(r"\n[ \t]*\n", textwrap.dedent(text).strip("\n"))
        out: list[str] = []
        literal_next = False
        for para in paragraphs:
            lines = para.splitlines()
            if literal_next or all(line[:1].isspace() for line in lines):
                out.append(textwrap.indent(para, indent))  # a literal block: untouched
            elif _BULLET.match(lines[0]) and all(
                _BULLET.match(line) or line[:1].isspace() for line in lines
            ):
                out.append(self._fill_bullets(lines, width, indent))
            elif any(line[:1].isspace() for line in lines[1:]):
                # A heading line over an indented block (``example:`` + a command, a table).
                out.append("\n".join(indent + rst_to_text(line) for line in lines))
            else:
                out.append(self._fill_prose(para, width, indent))
            literal_next = para.rstrip().endswith("::")
        return "\n\n".join(out)

    @staticmethod
    def _fill_prose(para: str, width: int, indent: str) -> str:
        plain = rst_to_text(" ".join(para.split()))
        if plain.endswith("::"):  # "as follows::" introduces a literal block
            plain = plain[:-2].rstrip() + ":" if not plain.endswith(" ::") else plain[:-3]
        return textwrap.fill(plain, width, initial_indent=indent, subsequent_indent=indent)

    @staticmethod
    def _fill_bullets(lines: list[str], width: int, indent: str) -> str:
        items: list[str] = []
        for line in lines:
            if _BULLET.match(line):
                items.append(line.strip())
            else:
                items[-1] += " " + line.strip()
        out = []
        for item in items:
            marker = _BULLET.match(item)
            assert marker is not None  # every item starts with its marker, by construction
            hanging = indent + " " * len(marker.group(0))
            body = rst_to_text(" ".join(item.split()))
            out.append(
                textwrap.fill(body, width, initial_indent=indent, subsequent_indent=hanging)
            )
        return "\n".join(out)


def _stdout_is_broken() -> bool:
    """True when standard output is a pipe or socket whose reader has gone away."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        pass
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by an in-memory stream
        return False
    # Linux reports POLLERR on the write end of a pipe without readers (POLLHUP for a socket
    # whose peer closed); a terminal or a regular file reports neither.
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))


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
    except BrokenPipeError as exc:
        if _stdout_is_broken():
            # The reader (e.g. `| head`) went away: not an error of ours. Point stdout at
            # devnull so the interpreter's final flush does not raise again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        # Something else Warden was writing to (a child process, a socket) went away: that is
        # a failure of the command, and a gate must never read it as success.
        print(
            f"error: broken pipe: a process or connection this command was writing to went "
            f"away ({exc.strerror or exc})",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR


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
