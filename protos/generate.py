"""Regenerate the Python code of the wire contract: ``python -m protos.generate``.

Runs ``grpc_tools.protoc`` with ``-I.`` from the repository root over
``protos/warden/v1/*.proto`` and writes, beside each ``.proto``:

* ``*_pb2.py`` (messages), ``*_pb2_grpc.py`` (service stubs and servicers),
* ``*_pb2.pyi`` and ``*_pb2_grpc.pyi`` (type stubs by mypy-protobuf).

Because the include root is the repository root, a ``.proto`` imports its siblings as
``protos/warden/v1/x.proto`` and the generated code imports ``from protos.warden.v1 import
x_pb2``: importable as ordinary packages, no ``sys.path`` tricks.

``generate(out_dir)`` writes to another directory (same relative layout): the freshness test
regenerates into a temporary directory and compares byte for byte with the committed files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["PROTO_DIR", "REPO_ROOT", "generate", "generated_files", "proto_sources"]

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = REPO_ROOT / "protos" / "warden" / "v1"
_GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def proto_sources() -> list[Path]:
    """The ``.proto`` files, relative to the repository root, sorted."""
    return sorted(p.relative_to(REPO_ROOT) for p in PROTO_DIR.glob("*.proto"))


def generated_files(root: Path = REPO_ROOT) -> list[Path]:
    """Every generated file under ``root``'s ``protos/warden/v1``, relative to ``root``."""
    out = root / "protos" / "warden" / "v1"
    return sorted(
        p.relative_to(root)
        for p in out.iterdir()
        if p.is_file() and p.name.endswith(_GENERATED_SUFFIXES)
    )


def _plugin(name: str) -> str:
    """Path of a protoc plugin installed beside this interpreter (the venv's bin/)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise SystemExit(f"error: {path} not found; install mypy-protobuf into this environment")
    return f"--plugin={name}={path}"


def generate(out_dir: Path = REPO_ROOT) -> None:
    """Run protoc over every ``.proto``, writing generated code under ``out_dir``."""
    from grpc_tools import protoc  # imported late: only `make protos` and its test need it

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "protos" / "warden" / "v1").mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        "-I.",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        _plugin("protoc-gen-mypy"),
        _plugin("protoc-gen-mypy_grpc"),
        *(str(p) for p in proto_sources()),
    ]
    # protoc resolves `-I.` and the source paths against the working directory.
    import os

    cwd = os.getcwd()
    os.chdir(REPO_ROOT)
    try:
        code = protoc.main(args)
    finally:
        os.chdir(cwd)
    if code != 0:
        raise SystemExit(f"error: protoc failed with exit code {code}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m protos.generate``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT, help="output root (default: repo)")
    args = parser.parse_args(argv)
    generate(args.out)
    for path in generated_files(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
