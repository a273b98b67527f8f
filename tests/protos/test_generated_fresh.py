"""The committed generated code is exactly what `make protos` produces from the .proto files."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from protos.generate import REPO_ROOT, generate, generated_files, proto_sources


def test_regenerated_code_matches_committed(tmp_path: Path) -> None:
    generate(tmp_path)
    fresh = generated_files(tmp_path)
    committed = generated_files(REPO_ROOT)
    assert fresh == committed, "set of generated files differs: run `make protos`"
    stale = [str(p) for p in fresh if (tmp_path / p).read_bytes() != (REPO_ROOT / p).read_bytes()]
    assert not stale, f"stale generated files (run `make protos`): {stale}"


def test_every_proto_has_generated_code() -> None:
    names = {p.name for p in generated_files(REPO_ROOT)}
    for proto in proto_sources():
        stem = proto.stem
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi"):
            assert f"{stem}{suffix}" in names


@pytest.mark.parametrize("stem", [p.stem for p in proto_sources()])
def test_generated_modules_import_as_packages(stem: str) -> None:
    # No sys.path tricks: the generated code imports its siblings as protos.warden.v1.x_pb2.
    importlib.import_module(f"protos.warden.v1.{stem}_pb2")
    importlib.import_module(f"protos.warden.v1.{stem}_pb2_grpc")
    source = (REPO_ROOT / "protos" / "warden" / "v1" / f"{stem}_pb2_grpc.py").read_text()
    for line in source.splitlines():
        if line.startswith(("import ", "from ")) and "_pb2" in line:
            assert line.startswith("from protos.warden.v1 import "), line


def test_optional_fields_distinguish_missing_from_zero() -> None:
    from protos.warden.v1 import ledger_pb2, policy_pb2

    unset = ledger_pb2.GetCheckpointRequest()
    zero = ledger_pb2.GetCheckpointRequest(tree_size=0)
    assert not unset.HasField("tree_size")
    assert zero.HasField("tree_size")
    parsed = ledger_pb2.GetCheckpointRequest.FromString(zero.SerializeToString())
    assert parsed.HasField("tree_size") and parsed.tree_size == 0
    assert not policy_pb2.GetPolicyRequest().HasField("version")
    assert policy_pb2.GetPolicyRequest(version=0).HasField("version")


def test_signed_payloads_travel_as_opaque_bytes() -> None:
    """Every field named `envelope(s)` is `bytes`, so a signed payload is never re-serialised."""
    from google.protobuf.descriptor import FieldDescriptor

    from protos.warden.v1 import approval_pb2, enrollment_pb2, ledger_pb2, policy_pb2

    seen = 0
    for module in (approval_pb2, enrollment_pb2, ledger_pb2, policy_pb2):
        for message in module.DESCRIPTOR.message_types_by_name.values():
            for field in message.fields:
                if field.name in ("envelope", "envelopes", "note"):
                    assert field.type == FieldDescriptor.TYPE_BYTES, f"{message.name}.{field.name}"
                    seen += 1
    assert seen >= 8
