"""The trust root: which keys may sign what, and how the root itself is replaced.

``root.json`` is a DSSE envelope (payloadType :data:`ROOT_PAYLOAD_TYPE`) whose payload is the
canonical JSON of::

    {"schema": "warden.root/v1", "version": 3, "expires": "2027-11-26T00:00:00Z",
     "keys": {"<keyid>": {"keytype": "ed25519", "public": "<base64 raw>"}},
     "roles": {"root":   {"keyids": [...], "threshold": 2},
               "policy": {"keyids": [...], "threshold": 2},
               "hub":    {"keyids": [...], "threshold": 1},
               "approver:risk_officer": {"keyids": [...], "threshold": 1}}}

Invariants (TUF-style):

* A root is only ever built by :meth:`TrustRoot.from_envelope` (from the exact bytes of
  ``root.json``), which checks it is signed by a threshold of its *own* root role and not
  expired, or by :meth:`TrustRoot.rotate`; building one directly raises
  :class:`~trust.errors.UnverifiedError`. There is no unverified root object.
* The payload is canonical JSON (RFC 8785), like every signed payload.
* Root N+1 is accepted (:meth:`TrustRoot.rotate`) only when its version is exactly N+1, it is
  not expired, and it is signed by a threshold of root N's root role *and* of its own.
* Every key id in a role is a key in ``keys``, and each key's id is recomputed from its bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, InitVar, dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from trust import dsse
from trust._internal.fields import check_fields, check_int, check_payload_type, check_schema
from trust._internal.files import read_file
from trust._internal.payload import load_canonical_object
from trust._internal.verified import TOKEN, require_token
from trust.canonical import canonical_json
from trust.errors import ExpiredError, FormatError, RollbackError, TrustError
from trust.keys import KeyId, PublicKey, SigningKey
from trust.timeutil import format_time, parse_time, utcnow

__all__ = [
    "ROOT_PAYLOAD_TYPE",
    "ROOT_SCHEMA",
    "STANDARD_ROLES",
    "Role",
    "RootMetadata",
    "TrustRoot",
    "load_envelope",
    "read_envelope_bytes",
]

ROOT_PAYLOAD_TYPE = "application/vnd.warden.root+json"
ROOT_SCHEMA = "warden.root/v1"
STANDARD_ROLES = ("root", "policy", "hub")
APPROVER_PREFIX = "approver:"
_FIELDS = ("expires", "keys", "roles", "schema", "version")


@dataclass(frozen=True)
class Role:
    """The key ids allowed to sign for a role and how many distinct ones must."""

    keyids: tuple[KeyId, ...]
    threshold: int


@dataclass(frozen=True)
class RootMetadata:
    """The content of a root, before or after signing. Use :class:`TrustRoot` to trust one."""

    version: int
    expires: datetime
    keys: Mapping[KeyId, PublicKey]
    roles: Mapping[str, Role]

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))
        object.__setattr__(self, "roles", MappingProxyType(dict(self.roles)))
        _check_consistent(self, what="root")

    def to_payload(self) -> bytes:
        """Canonical JSON payload bytes (what the root keys sign)."""
        return canonical_json(
            {
                "schema": ROOT_SCHEMA,
                "version": self.version,
                "expires": format_time(self.expires),
                "keys": {
                    kid: {"keytype": "ed25519", "public": key.b64}
                    for kid, key in sorted(self.keys.items())
                },
                "roles": {
                    name: {"keyids": sorted(role.keyids), "threshold": role.threshold}
                    for name, role in sorted(self.roles.items())
                },
            }
        )

    def envelope(self, signers: Iterable[SigningKey] = ()) -> dsse.Envelope:
        """A DSSE envelope of this root, signed by ``signers`` (possibly none yet)."""
        return dsse.sign(ROOT_PAYLOAD_TYPE, self.to_payload(), signers)

    @classmethod
    def from_payload(cls, payload: bytes, *, what: str = "root") -> RootMetadata:
        """Parse and check a canonical root payload (signatures are not looked at here)."""
        obj = check_fields(load_canonical_object(payload, what=what), _FIELDS, what=what)
        check_schema(obj["schema"], ROOT_SCHEMA, what=what)
        version = check_int(obj["version"], what=f"{what}: field 'version'", minimum=1)
        expires = parse_time(obj["expires"], what=f"{what}: field 'expires'")
        keys = _parse_keys(obj["keys"], what=what)
        roles = _parse_roles(obj["roles"], what=what)
        return cls(version, expires, keys, roles)


def _parse_keys(obj: Any, *, what: str) -> dict[KeyId, PublicKey]:
    if not isinstance(obj, dict):
        raise FormatError(f"{what}: field 'keys' must be an object")
    keys: dict[KeyId, PublicKey] = {}
    for kid, entry in obj.items():
        where = f"{what}: keys.{kid[:16]}"
        if not isinstance(entry, dict) or set(entry) != {"keytype", "public"}:
            raise FormatError(f"{where} must be {{'keytype', 'public'}}")
        if entry["keytype"] != "ed25519":
            raise FormatError(f"{where}: keytype {entry['keytype']!r} is not supported")
        key = PublicKey.from_b64(entry["public"], what=f"{where}.public")
        if key.key_id != kid:
            raise FormatError(f"{where}: key id does not match the key (expected {key.key_id})")
        keys[KeyId(kid)] = key
    return keys


def _parse_roles(obj: Any, *, what: str) -> dict[str, Role]:
    if not isinstance(obj, dict):
        raise FormatError(f"{what}: field 'roles' must be an object")
    roles: dict[str, Role] = {}
    for name, entry in obj.items():
        where = f"{what}: roles.{name}"
        if not isinstance(entry, dict) or set(entry) != {"keyids", "threshold"}:
            raise FormatError(f"{where} must be {{'keyids', 'threshold'}}")
        keyids = entry["keyids"]
        threshold = entry["threshold"]
        if not isinstance(keyids, list) or not all(isinstance(k, str) for k in keyids):
            raise FormatError(f"{where}.keyids must be a list of key ids")
        if not isinstance(threshold, int) or isinstance(threshold, bool):
            raise FormatError(f"{where}.threshold must be an integer, got {threshold!r}")
        roles[name] = Role(tuple(KeyId(k) for k in keyids), threshold)
    return roles


def _check_consistent(meta: RootMetadata, *, what: str) -> None:
    for name in STANDARD_ROLES:
        if name not in meta.roles:
            raise FormatError(f"{what}: role {name!r} is missing")
    for name, role in meta.roles.items():
        if name not in STANDARD_ROLES and not (
            name.startswith(APPROVER_PREFIX) and len(name) > len(APPROVER_PREFIX)
        ):
            raise FormatError(
                f"{what}: unknown role {name!r} (roles: root, policy, hub, approver:<name>)"
            )
        if len(set(role.keyids)) != len(role.keyids):
            raise FormatError(f"{what}: role {name!r} lists a key id twice")
        if not 1 <= role.threshold <= len(role.keyids):
            raise FormatError(
                f"{what}: role {name!r} has threshold {role.threshold} "
                f"but {len(role.keyids)} key(s); it must be between 1 and the number of keys"
            )
        for kid in role.keyids:
            if kid not in meta.keys:
                raise FormatError(f"{what}: role {name!r} names key {kid[:16]}… not in 'keys'")


def read_envelope_bytes(path: str | Path) -> bytes:
    """The exact bytes of an envelope file (what verifying constructors take), naming the file
    in every error."""
    return read_file(path)


def load_envelope(path: str | Path) -> dsse.Envelope:
    """Read and parse a DSSE envelope file (unverified), naming the file in every error."""
    return dsse.Envelope.from_json(read_envelope_bytes(path), what=str(path))


@dataclass(frozen=True)
class TrustRoot:
    """A verified trust root. Built only by :meth:`from_envelope` or :meth:`rotate`.

    ``envelope`` is the envelope parsed from the exact bytes verified (``envelope.raw``).
    """

    meta: RootMetadata
    envelope: dsse.Envelope
    _: KW_ONLY
    _token: InitVar[object] = None

    def __post_init__(self, _token: object) -> None:
        require_token(_token, type(self), "TrustRoot.from_envelope")

    @property
    def version(self) -> int:
        """The root's version."""
        return self.meta.version

    @property
    def expires(self) -> datetime:
        """When the root stops being valid."""
        return self.meta.expires

    def role(self, name: str) -> Role:
        """The role called ``name``; a missing role is a :class:`TrustError`."""
        try:
            return self.meta.roles[name]
        except KeyError:
            raise TrustError(f"trust root v{self.version} has no role {name!r}") from None

    def role_keys(self, name: str) -> dict[KeyId, PublicKey]:
        """The public keys of role ``name``, by key id."""
        return {kid: self.meta.keys[kid] for kid in self.role(name).keyids}

    def approver_roles(self) -> tuple[str, ...]:
        """Names of the ``approver:<role>`` roles (without the prefix)."""
        return tuple(
            sorted(
                n[len(APPROVER_PREFIX) :] for n in self.meta.roles if n.startswith(APPROVER_PREFIX)
            )
        )

    def verify_role(
        self,
        envelope: dsse.Envelope,
        role: str,
        *,
        payload_type: str | None = None,
        what: str = "envelope",
    ) -> frozenset[KeyId]:
        """Check ``envelope`` carries a threshold of ``role``'s signatures; return the signers."""
        r = self.role(role)
        return dsse.verify(
            envelope,
            self.role_keys(role),
            r.threshold,
            payload_type=payload_type,
            what=f"{what} (role {role!r})",
        )

    @classmethod
    def from_envelope(
        cls,
        data: bytes,
        *,
        now: datetime | None = None,
        what: str = "root",
        allow_expired: bool = False,
    ) -> TrustRoot:
        """Verify the exact bytes ``data`` of a root against itself: own root-role threshold,
        not expired. Anything but ``bytes`` is a :class:`FormatError`.

        ``allow_expired`` is only for a pinned root used as the *start* of a rotation chain
        (TUF: an old root may have expired; the newest one in the chain must not have).
        """
        envelope = dsse.from_bytes(data, what=what)
        meta = _meta_of(envelope, what=what)
        _verify_with(meta, envelope, what=f"{what} (v{meta.version}, own root role)")
        if not allow_expired:
            _check_not_expired(meta, now, what=what)
        return cls(meta, envelope, _token=TOKEN)

    @classmethod
    def load(
        cls, path: str | Path, *, now: datetime | None = None, allow_expired: bool = False
    ) -> TrustRoot:
        """Load and verify ``root.json`` (a pinned root: trusted because you chose the file)."""
        return cls.from_envelope(
            read_envelope_bytes(path), now=now, what=str(path), allow_expired=allow_expired
        )

    def rotate(
        self,
        data: bytes,
        *,
        now: datetime | None = None,
        what: str = "new root",
        check_expiry: bool = True,
    ) -> TrustRoot:
        """Accept root N+1 (the exact bytes ``data`` of its envelope) from this root N, or
        raise.

        Checks, in order: the version is exactly N+1 (:class:`RollbackError`), a threshold of
        this root's root role signed it, a threshold of its own root role signed it
        (:class:`ThresholdError`/:class:`SignatureError`), and it is not expired.
        """
        envelope = dsse.from_bytes(data, what=what)
        meta = _meta_of(envelope, what=what)
        if meta.version != self.version + 1:
            raise RollbackError(
                f"{what}: version {meta.version} cannot follow trusted root version "
                f"{self.version}; expected exactly {self.version + 1}",
                hint="rotate one version at a time, in order",
            )
        _verify_with(self.meta, envelope, what=f"{what} (v{meta.version}, by root v{self.version})")
        _verify_with(meta, envelope, what=f"{what} (v{meta.version}, own root role)")
        if check_expiry:
            _check_not_expired(meta, now, what=what)
        return TrustRoot(meta, envelope, _token=TOKEN)

    def rotate_chain(
        self, envelopes: Iterable[bytes], *, now: datetime | None = None
    ) -> TrustRoot:
        """Walk rotations (exact envelope bytes) in order, each verified by its predecessor.

        Intermediate roots may have expired since; the last one must not have.
        """
        chain = list(envelopes)
        current = self
        for i, env in enumerate(chain):
            current = current.rotate(
                env, now=now, what=f"root #{i + 1} of the chain", check_expiry=i == len(chain) - 1
            )
        if not chain:
            _check_not_expired(current.meta, now, what="root")
        return current


def _meta_of(envelope: dsse.Envelope, *, what: str) -> RootMetadata:
    check_payload_type(envelope.payload_type, ROOT_PAYLOAD_TYPE, what=what)
    return RootMetadata.from_payload(envelope.payload, what=what)


def _verify_with(
    signer_meta: RootMetadata, envelope: dsse.Envelope, *, what: str
) -> frozenset[KeyId]:
    role = signer_meta.roles["root"]
    keys = {kid: signer_meta.keys[kid] for kid in role.keyids}
    return dsse.verify(envelope, keys, role.threshold, payload_type=ROOT_PAYLOAD_TYPE, what=what)


def _check_not_expired(meta: RootMetadata, now: datetime | None, *, what: str) -> None:
    now = now or utcnow()
    if meta.expires <= now:
        raise ExpiredError(
            f"{what}: root version {meta.version} expired at {format_time(meta.expires)}",
            hint="the root keys must sign a new root version",
        )
