"""Subjects of the node-level audit records: what a record is about when it is not a model.

Every audit record names a subject (model, version, artefact SHA-256; DESIGN.md pins the
format). Records about a model version name it. Records about the node's own governance name
the object they are about, in the same three fields, with a prefix no model name can take
(``:`` is not allowed in a registry name, :func:`agent.registry.check_name`):

==================  ========================  ======================  =======================
event               model                     version                 artifact_sha256
==================  ========================  ======================  =======================
policy_* events     ``policy:<bundle name>``  bundle version          SHA-256 of the envelope
root_applied [#]_   ``root``                  root version            SHA-256 of the envelope
hub_misbehaviour    ``hub:<origin>``          checkpoint size seen    hex root hash seen
==================  ========================  ======================  =======================

.. [#] also ``policy_rejected`` and ``policy_expired`` about a root (``evidence.kind ==
   "root"``; about a bundle it is ``"bundle"``).

A record's ``policy`` (name, version, digest) names a bundle by its *content* digest
(``PolicyBundle.digest``, the SHA-256 of the signed payload), as decisions do; the envelope's
SHA-256 is in the subject. A bundle or root that could not even be parsed has no name or
version: ``policy:<unknown>`` with version ``unknown`` and the digest of the bytes offered.
"""

from __future__ import annotations

from trust.canonical import Sha256, sha256_hex
from trust.record import Subject

__all__ = [
    "UNKNOWN",
    "hub_subject",
    "policy_subject",
    "root_subject",
]

UNKNOWN = "unknown"


def policy_subject(name: str | None, version: int | None, envelope: bytes) -> Subject:
    """The subject of a ``policy_*`` record about the bundle ``envelope`` (exact bytes)."""
    return Subject(
        f"policy:{name or '<' + UNKNOWN + '>'}",
        UNKNOWN if version is None else str(version),
        Sha256(sha256_hex(envelope)),
    )


def root_subject(version: int, envelope: bytes) -> Subject:
    """The subject of a ``root_applied`` record about root ``version`` (exact bytes)."""
    return Subject("root", str(version), Sha256(sha256_hex(envelope)))


def hub_subject(origin: str, size: int, root_hash: bytes) -> Subject:
    """The subject of a ``hub_misbehaviour`` record: the log and the tree head it showed."""
    return Subject(f"hub:{origin}", str(size), Sha256(root_hash.hex()))
