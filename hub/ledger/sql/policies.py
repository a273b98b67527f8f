"""Published policy bundles and submitted approvals in SQL (:class:`~hub.ledger.store.PolicyStore`).

Invariants:

* Callers pass bundles and approvals already verified (:mod:`hub.handlers`); the store keeps
  their envelope bytes verbatim and appends a ``policy_publication`` / ``approval`` hub event
  in the same write transaction (with the covering checkpoint when asked for).
* Versions of a name only grow: a version at or below the stored one is a
  :class:`RollbackError`, unless it is the identical (name, version, digest) already stored,
  which is returned as it is (a retried publication). Approvals are idempotent by digest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub import db
from hub.ledger import schema as t
from hub.ledger.rules import MAX_INT, check_approval_args, check_policy_args, rollback_error
from hub.ledger.sql.checkpoints import SqlCheckpoints
from hub.ledger.sql.log import SqlLog
from hub.ledger.store import PolicyStore
from hub.ledger.types import CheckpointSigner, StoredApproval, StoredPolicy
from trust.canonical import Sha256, sha256_hex
from trust.errors import NotFoundError
from trust.record import HubEventKind

__all__ = ["SqlPolicies"]


def _policy(row: Any) -> StoredPolicy:
    return StoredPolicy.of(
        row.name, row.version, Sha256(row.digest), bytes(row.envelope), row.published_at,
        row.ledger_idx,
    )


def _approval(row: Any) -> StoredApproval:
    return StoredApproval(
        approval_id=Sha256(row.digest), role=row.role, envelope=bytes(row.envelope),
        index=row.ledger_idx, received_at=row.created_at, subject=row.subject,
    )


class SqlPolicies(PolicyStore):
    """:class:`PolicyStore` over ``engine``; its hub events go through ``log``."""

    def __init__(self, engine: Engine, log: SqlLog, checkpoints: SqlCheckpoints) -> None:
        self.engine = engine
        self._log = log
        self._checkpoints = checkpoints

    def add_policy(
        self, name: str, version: int, digest: str, envelope: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> StoredPolicy:
        """See :meth:`PolicyStore.add_policy`."""
        check_policy_args(name, version, digest)
        p = t.policies
        with db.write_transaction(self.engine) as conn:
            latest = conn.execute(
                sa.select(p).where(p.c.name == name).order_by(p.c.version.desc()).limit(1)
            ).first()
            if latest is not None and version <= latest.version:
                if version == latest.version and latest.digest == digest:
                    return _policy(latest)
                same = conn.execute(
                    sa.select(p).where(p.c.name == name, p.c.version == version)
                ).first()
                if same is not None and same.digest == digest:
                    return _policy(same)
                raise rollback_error(name, version, latest.version)
            idx = self._log.emit(
                conn,
                HubEventKind.POLICY_PUBLICATION,
                {"name": name, "version": version, "digest": digest},
                now,
            )
            values = dict(
                name=name, version=version, digest=digest, envelope=bytes(envelope),
                published_at=now, ledger_idx=idx,
            )
            conn.execute(sa.insert(p).values(**values))
            self._checkpoints.cover(conn, checkpoint, now)
        return StoredPolicy.of(name, version, Sha256(digest), bytes(envelope), now, idx)

    def latest_policy(self, name: str | None = None) -> StoredPolicy | None:
        """See :meth:`PolicyStore.latest_policy`."""
        p = t.policies
        q = sa.select(p)
        if name is not None:
            q = q.where(p.c.name == name).order_by(p.c.version.desc())
        else:
            q = q.order_by(p.c.ledger_idx.desc())
        with self.engine.connect() as conn:
            row = conn.execute(q.limit(1)).first()
        return None if row is None else _policy(row)

    def get_policy(self, name: str, version: int) -> StoredPolicy:
        """See :meth:`PolicyStore.get_policy`."""
        if not 0 <= version <= MAX_INT:
            raise NotFoundError(f"policy {name!r} version {version} was never published here")
        p = t.policies
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(p).where(p.c.name == name, p.c.version == version)).first()
        if row is None:
            raise NotFoundError(f"policy {name!r} version {version} was never published here")
        return _policy(row)

    def policies(self) -> list[StoredPolicy]:
        """See :meth:`PolicyStore.policies`."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.policies).order_by(t.policies.c.ledger_idx)).all()
        return [_policy(r) for r in rows]

    def add_approval(
        self, role: str, subject: str, envelope: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> StoredApproval:
        """See :meth:`PolicyStore.add_approval`."""
        check_approval_args(role, subject)
        digest = sha256_hex(bytes(envelope))
        a = t.approvals
        with db.write_transaction(self.engine) as conn:
            row = conn.execute(sa.select(a).where(a.c.digest == digest)).first()
            if row is not None:
                return _approval(row)
            idx = self._log.emit(
                conn,
                HubEventKind.APPROVAL,
                {"digest": digest, "role": role, "subject": subject},
                now,
            )
            conn.execute(
                sa.insert(a).values(
                    role=role, subject=subject, digest=digest, envelope=bytes(envelope),
                    created_at=now, ledger_idx=idx,
                )
            )
            self._checkpoints.cover(conn, checkpoint, now)
        return StoredApproval(approval_id=digest, role=role, envelope=bytes(envelope), index=idx,
                              received_at=now, subject=subject)

    def approvals(
        self, subject: str | None = None, role: str | None = None
    ) -> list[StoredApproval]:
        """See :meth:`PolicyStore.approvals`."""
        a = t.approvals
        q = sa.select(a).order_by(a.c.id)
        if subject is not None:
            q = q.where(a.c.subject == subject)
        if role is not None:
            q = q.where(a.c.role == role)
        with self.engine.connect() as conn:
            return [_approval(r) for r in conn.execute(q)]
