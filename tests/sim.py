"""The one simulated node of the test suite: it signs a chained stream of audit records, and
misbehaves on demand (fork, skip a seq, replay, sign with a wrong or a retired key, break
``prev``, name another node, tamper with a payload).

Used by the store tests (``tests/ledger``), the RPC tests (``tests/hub``) and the
:data:`tests.ledger_attacks.LEDGER_ATTACKS` table, so every layer is attacked the same way.

Invariants the tests rely on:

* :meth:`SimNode.record` with no chain override (``seq``, ``prev``, ``node_id``, ``key``) is the
  honest next record and advances the stream; with any chain override, and for every
  misbehaviour method, the stream stays where it was (``advance=`` overrides either way).
* Every call yields different bytes (the subject version counts calls), so two records for
  one seq are a fork — never an accidental byte-identical resend. Only :meth:`replay` repeats.
* Records are built and signed through ``trust.record`` (``build_record``/``sign_record``),
  never through a record type's ``__init__``; record times are deterministic
  (:data:`NOW` + seq seconds), so a test's ledger does not depend on the wall clock.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from trust import keys
from trust.canonical import Sha256
from trust.record import (
    GENESIS_PREV,
    EventType,
    Subject,
    build_record,
    envelope_digest,
    rotation_message,
    sign_record,
)

__all__ = ["NOW", "KeyRotation", "SimNode", "tamper_payload"]

NOW = datetime(2026, 11, 26, 11, 0, 0, tzinfo=UTC)
"""The simulated clock's origin: record ``seq`` is dated ``NOW + seq`` seconds."""

_ARTEFACT = Sha256("ab" * 32)


@dataclass(frozen=True)
class KeyRotation:
    """A node handing its identity from ``old`` to ``new``: ``signature`` is ``old``'s
    signature over :func:`trust.record.rotation_message` (what the store's
    ``rotate_node_key`` takes; ``HubClient.rotate_key`` signs for itself)."""

    node_id: str
    old: keys.SigningKey
    new: keys.SigningKey
    signature: bytes


class SimNode:
    """A node's key and record stream, honest by default, dishonest when asked.

    ``seq`` and ``prev`` are the head of the honest stream (0 and the genesis hash at
    first); a test may set them to resume a stream stored elsewhere, after which
    :meth:`fork` and :meth:`replay` know only the records this object signed.
    """

    def __init__(self, node_id: str, key: keys.SigningKey | None = None) -> None:
        self.node_id = node_id
        self.key = key or keys.generate()
        self.seq = 0
        self.prev: str = GENESIS_PREV
        self.retired_keys: list[keys.SigningKey] = []
        self._sent: dict[int, bytes] = {}  # honest records by seq
        self._calls = itertools.count(1)

    # -- honest behaviour ----------------------------------------------------------------------

    def record(
        self,
        *,
        seq: int | None = None,
        prev: str | None = None,
        node_id: str | None = None,
        key: keys.SigningKey | None = None,
        model: str = "credit",
        evidence: Mapping[str, Any] | None = None,
        advance: bool | None = None,
    ) -> bytes:
        """The next record, or one with overridden chain fields (see the module invariants)."""
        s = self.seq + 1 if seq is None else seq
        payload = build_record(
            node_id=node_id or self.node_id,
            seq=s,
            prev=self.prev if prev is None else prev,
            time=NOW + timedelta(seconds=s),
            event=EventType.VALIDATION,
            subject=Subject(model, str(next(self._calls)), _ARTEFACT),
            evidence={"rows": s} if evidence is None else evidence,
        )
        env = sign_record(payload, key or self.key)
        honest = seq is None and prev is None and node_id is None and key is None
        if honest if advance is None else advance:
            self.seq, self.prev = s, envelope_digest(env)
            self._sent[s] = env
        return env

    def records(self, n: int) -> list[bytes]:
        """The next ``n`` honest records (advancing the stream)."""
        return [self.record() for _ in range(n)]

    def rotate(self, new: keys.SigningKey | None = None) -> KeyRotation:
        """Switch to ``new`` (a fresh key by default); the old key joins ``retired_keys``."""
        new = new or keys.generate()
        old = self.key
        signature = old.sign(rotation_message(self.node_id, old.public, new.public))
        self.retired_keys.append(old)
        self.key = new
        return KeyRotation(self.node_id, old, new, signature)

    # -- misbehaviour (none of these advances the stream) ---------------------------------------

    def prev_of(self, seq: int) -> str:
        """The ``prev`` an honest record at ``seq`` carries (from the records signed here)."""
        if seq == 1:
            return GENESIS_PREV
        if seq - 1 not in self._sent:
            raise AssertionError(f"{self.node_id}: record {seq - 1} was not signed by this sim")
        return envelope_digest(self._sent[seq - 1])

    def fork(self, seq: int | None = None, *, key: keys.SigningKey | None = None) -> bytes:
        """A second, different record at an already-sent ``seq`` (default: the last),
        correctly chained to the record before it: equivocation."""
        s = self.seq if seq is None else seq
        if s < 1 or s > self.seq:
            raise AssertionError(f"{self.node_id}: cannot fork seq {s}, head is {self.seq}")
        return self.record(seq=s, prev=self.prev_of(s), model="fork", key=key, advance=False)

    def skip(self, n: int = 1) -> bytes:
        """A record ``n`` seqs past the next one, chained to the head: a sequence gap."""
        return self.record(seq=self.seq + 1 + n, advance=False)

    def replay(self, seq: int) -> bytes:
        """The exact bytes this node sent at ``seq``."""
        return self._sent[seq]

    def signed_by(self, key: keys.SigningKey) -> bytes:
        """The honest next record, signed by ``key`` instead of the node's key."""
        return self.record(key=key, advance=False)

    def with_retired_key(self) -> bytes:
        """The honest next record, signed by the key this node held before its last rotation."""
        if not self.retired_keys:
            raise AssertionError(f"{self.node_id} has not rotated its key")
        return self.signed_by(self.retired_keys[-1])

    def broken_prev(self) -> bytes:
        """The next seq, whose ``prev`` is not the digest of the previous envelope."""
        return self.record(prev="ab" * 32, advance=False)

    def naming(self, node_id: str) -> bytes:
        """The next record signed by this node's key but whose payload names ``node_id``."""
        return self.record(node_id=node_id, advance=False)


def tamper_payload(envelope: bytes) -> bytes:
    """``envelope`` with one payload byte changed (still valid JSON, canonical base64, same
    signature): what a man in the middle or a corrupted disk makes of a signed record."""
    obj = json.loads(envelope)
    payload = base64.b64decode(obj["payload"])
    tampered = payload.replace(b'"credit"', b'"crediT"', 1)
    if tampered == payload:
        raise AssertionError("the payload has no model name to tamper with")
    obj["payload"] = base64.b64encode(tampered).decode("ascii")
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("ascii")
