"""One table of attacks on the append path, run against the store and against the RPC layer.

Each :class:`LedgerAttack` forges a batch from an :class:`AttackScene` and names what must come
back: the typed error class, the gRPC status code it crosses the wire as, and (optionally)
words of the message and the ``expected`` seq of a gap. The runners
(``tests/ledger/test_ledger_attacks.py`` on SQLite and PostgreSQL,
``tests/hub/test_ledger_attacks_rpc.py`` over a running hub) check for every row: refused
with exactly that error, nothing appended, and the honest node can still append afterwards.

The scene is the same everywhere: ``node`` is enrolled and has stored records 1 and 2 (and,
for ``rotated`` attacks, then rotated its key); ``other`` is enrolled with record 1 stored;
``hub_event`` is the hub-signed enrollment event of ``node`` as stored in the ledger. The
batch is always sent as ``node`` (the store's caller / the authenticated RPC caller).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.sim import SimNode, tamper_payload
from trust import keys
from trust.errors import (
    AccessDeniedError,
    ChainBrokenError,
    EquivocationError,
    FormatError,
    SequenceGapError,
    SignatureError,
    WardenError,
)

__all__ = ["LEDGER_ATTACKS", "AttackScene", "LedgerAttack", "attack_params"]


@dataclass
class AttackScene:
    """The world an attack is forged in (see the module docstring)."""

    node: SimNode
    other: SimNode
    hub_event: bytes


@dataclass(frozen=True)
class LedgerAttack:
    """A named attack: how to forge the batch, and how it must be refused."""

    name: str
    forge: Callable[[AttackScene], list[bytes]]
    error: type[WardenError]
    status: str  # grpc.StatusCode name (kept as text: this table needs no grpc)
    match: str | None = None  # a regular expression the error message must contain
    expected_seq: int | None = None  # SequenceGapError.expected, across the wire too
    rotated: bool = False  # node rotates its key after storing records 1 and 2


def _two_versions(s: AttackScene) -> list[bytes]:
    return [s.node.record(advance=False), s.node.record(model="other", advance=False)]


def _good_then_gap(s: AttackScene) -> list[bytes]:
    good = s.node.record(advance=False)  # seq 3: fine on its own
    return [good, s.node.record(seq=s.node.seq + 3, prev=s.node.prev)]


LEDGER_ATTACKS: tuple[LedgerAttack, ...] = (
    LedgerAttack("fork_the_last_record", lambda s: [s.node.fork(2)],
                 EquivocationError, "ALREADY_EXISTS"),
    LedgerAttack("fork_the_first_record", lambda s: [s.node.fork(1)],
                 EquivocationError, "ALREADY_EXISTS"),
    LedgerAttack("fork_under_the_retired_key",  # the old key held seq 2: still the node's word
                 lambda s: [s.node.fork(2, key=s.node.retired_keys[-1])],
                 EquivocationError, "ALREADY_EXISTS", rotated=True),
    LedgerAttack("fork_signed_by_a_stranger",  # nobody else can get the node flagged
                 lambda s: [s.node.fork(2, key=keys.generate())],
                 SignatureError, "INVALID_ARGUMENT"),
    LedgerAttack("skip_a_seq", lambda s: [s.node.skip()],
                 SequenceGapError, "FAILED_PRECONDITION", expected_seq=3),
    LedgerAttack("skip_after_a_good_record_in_one_batch", _good_then_gap,
                 SequenceGapError, "FAILED_PRECONDITION", expected_seq=4),
    LedgerAttack("replay_another_nodes_record",  # genuine, but not signed by the caller's key
                 lambda s: [s.other.replay(1)], SignatureError, "INVALID_ARGUMENT"),
    LedgerAttack("replay_a_hub_event_as_a_record", lambda s: [s.hub_event],
                 FormatError, "INVALID_ARGUMENT"),
    LedgerAttack("sign_with_a_wrong_key", lambda s: [s.node.signed_by(keys.generate())],
                 SignatureError, "INVALID_ARGUMENT"),
    LedgerAttack("sign_with_another_nodes_key", lambda s: [s.node.signed_by(s.other.key)],
                 SignatureError, "INVALID_ARGUMENT"),
    LedgerAttack("sign_with_the_retired_key", lambda s: [s.node.with_retired_key()],
                 SignatureError, "INVALID_ARGUMENT", rotated=True),
    LedgerAttack("break_prev", lambda s: [s.node.broken_prev()],
                 ChainBrokenError, "FAILED_PRECONDITION"),
    LedgerAttack("name_another_node", lambda s: [s.node.naming(s.other.node_id)],
                 AccessDeniedError, "PERMISSION_DENIED", match="names node"),
    LedgerAttack("two_versions_of_one_seq_in_a_batch", _two_versions,
                 FormatError, "INVALID_ARGUMENT", match="two different records with seq 3"),
    LedgerAttack("tamper_with_a_signed_payload",
                 lambda s: [tamper_payload(s.node.record(advance=False))],
                 SignatureError, "INVALID_ARGUMENT"),
)
"""Every attack on the append path that each layer must refuse the same way."""


def attack_params() -> list[object]:
    """``LEDGER_ATTACKS`` as pytest params, with the attack's name as the test id."""
    return [pytest.param(a, id=a.name) for a in LEDGER_ATTACKS]
