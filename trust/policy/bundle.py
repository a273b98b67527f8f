"""Policy bundles: a source directory, the signed payload built from it, and its verification.

Source directory (what compliance edits)::

    policies/standard/
      bundle.yaml          name, version, expires, description, entrypoint, decision, data, include
      decision.rego        Rego modules (v1 with ``import rego.v1``, or v0)
      decision_test.rego   unit tests (``test_*`` rules), run by ``warden policy test``

``bundle.yaml`` keys (any other key is an error naming the key and the file, and so is a key
given twice in any mapping of the file, ``data`` included):

* ``name`` — ``[a-z0-9][a-z0-9._-]*``;
* ``version`` — an integer ≥ 1, raised on every release (rollback protection);
* ``expires`` — an RFC 3339 UTC time, or a duration such as ``180d`` counted from signing;
* ``description`` — free text;
* ``entrypoint`` — the Rego document evaluated, e.g. ``data.warden.decision``;
* ``decision`` — how the entrypoint's value is read: ``document`` (default), ``allow_rule``,
  ``deny_rules``, ``deny_rule`` (see :class:`trust.policy.decision.Convention`);
* ``data`` — a mapping of thresholds and lists, visible to Rego as ``data.config``;
* ``include`` — source only: extra directories (relative to the bundle directory) whose
  ``.rego`` files are added under ``<directory name>/`` (e.g. ``../lib`` → ``lib/…``);
* ``input_projection`` — optional: the input paths the policy reads, e.g.
  ``evidence.fairness.*.groups.*.n`` (dot-separated keys, ``*`` for every key or element;
  quote a path that starts with ``*`` in YAML). The engine gives Rego only those subtrees,
  and refuses a bundle whose Rego reads outside them (see :mod:`trust.policy.projection`).

Signed bundle (what officers sign, hubs relay and agents verify) — a DSSE envelope with
``payloadType`` :data:`BUNDLE_PAYLOAD_TYPE` = ``application/vnd.warden.policy-bundle+json``
whose payload is the RFC 8785 canonical JSON of::

    {"schema": "warden.policy-bundle/v1",
     "manifest": {"name": "standard", "version": 7, "expires": "2027-05-01T00:00:00Z",
                  "description": "…", "entrypoint": "data.warden.decision",
                  "decision": "document"},
     "data": {"min_accuracy": 0.85, …},
     "files": {"decision.rego": {"sha256": "<hex SHA-256 of the UTF-8 text>", "text": "…"},
               "lib/fairness.rego": {…}, …}}

* every key shown is required and no other key is allowed (in the payload and the manifest),
  except the manifest's optional ``input_projection`` (a list of paths), which is present only
  when declared — so it is pinned by the bundle digest like everything else;
* file paths are relative, ``/``-separated, end in ``.rego``, and contain no ``..``;
* the **bundle digest** is the lowercase hex SHA-256 of the payload bytes exactly as signed;
* the payload must be byte-identical to the canonical encoding of its parsed content, so one
  bundle has exactly one payload (no whitespace or key-order variants with other digests).

Verification (:meth:`PolicyBundle.from_envelope`) fails closed, in this order: envelope size
(default 4 MiB, :class:`FormatError`), payload type, a threshold of the trust root's ``policy``
role (:class:`SignatureError`/:class:`ThresholdError`), payload schema, every file digest
(:class:`DigestMismatchError`), expiry (:class:`ExpiredError`, freeze protection), and version ≥
the last accepted version (:class:`RollbackError`). It takes the exact envelope bytes (a
``.bundle`` file's content, an RPC's bytes), never a parsed or re-encoded envelope.

Two types, so an unverified bundle cannot be used as a verified one:

* :class:`PolicyBundle` — verified; built only by :meth:`PolicyBundle.from_envelope` (building
  one directly raises :class:`~trust.errors.UnverifiedError`). The only kind
  :class:`~trust.policy.engine.PolicyEngine` evaluates.
* :class:`UnverifiedPolicyBundle` — size, format and file digests checked, signatures *not*:
  :meth:`UnverifiedPolicyBundle.from_bytes` (``warden policy show``, ``--skip-signature``) and
  :meth:`UnverifiedPolicyBundle.from_source` (a source directory: development, ``policy
  check``, ``policy test``). Only ``PolicyEngine.for_unverified`` evaluates one.

Reading a source directory is :mod:`trust.policy.source`, the manifest and its field checks
:mod:`trust.policy.manifest`; their public names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, InitVar, dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from trust import dsse
from trust._internal.fields import (
    check_fields,
    check_hex64,
    check_payload_type,
    check_schema,
    check_str,
)
from trust._internal.files import read_file
from trust._internal.payload import load_canonical_object
from trust._internal.verified import TOKEN, require_token
from trust.canonical import Sha256, canonical_json, sha256_hex
from trust.errors import (
    DigestMismatchError,
    ExpiredError,
    FormatError,
    PolicyError,
    RollbackError,
)
from trust.keys import KeyId, SigningKey
from trust.policy.manifest import Manifest, check_rego_path, manifest_from_payload
from trust.policy.source import MANIFEST_FILE, BundleSource, load_source, read_rego_dir
from trust.root import TrustRoot
from trust.timeutil import format_time, utcnow

__all__ = [
    "BUNDLE_PAYLOAD_TYPE",
    "BUNDLE_SCHEMA",
    "DEFAULT_MAX_BYTES",
    "MANIFEST_FILE",
    "Manifest",
    "BundleSource",
    "PolicyBundle",
    "UnverifiedPolicyBundle",
    "load_source",
    "build_payload",
    "sign_source",
    "cosign",
    "load_bundle_file",
    "read_bundle_file",
    "read_rego_dir",
]

BUNDLE_PAYLOAD_TYPE = "application/vnd.warden.policy-bundle+json"
BUNDLE_SCHEMA = "warden.policy-bundle/v1"
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
_PAYLOAD_KEYS = ("data", "files", "manifest", "schema")
_FILE_KEYS = frozenset({"sha256", "text"})


def build_payload(source: BundleSource, *, now: datetime | None = None) -> bytes:
    """The canonical payload bytes for ``source`` (what officers sign)."""
    return canonical_json(
        {
            "schema": BUNDLE_SCHEMA,
            "manifest": source.manifest(now).to_dict(),
            "data": dict(source.data),
            "files": {
                path: {"sha256": sha256_hex(text.encode("utf-8")), "text": text}
                for path, text in sorted(source.files.items())
            },
        }
    )


def _check_size(size: int, max_bytes: int, *, what: str) -> None:
    if size > max_bytes:
        raise FormatError(
            f"{what}: bundle is {size} bytes, over the {max_bytes}-byte limit",
            hint="split the bundle or raise the limit (--max-bytes) on every verifier",
        )


def sign_source(
    directory: str | Path,
    keys: Iterable[SigningKey],
    *,
    now: datetime | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dsse.Envelope:
    """Build and sign the bundle of a source directory (compile it first with ``check``)."""
    source = load_source(directory)
    env = dsse.sign(BUNDLE_PAYLOAD_TYPE, build_payload(source, now=now), keys)
    _check_size(len(env.to_json()), max_bytes, what=str(directory))
    return env


def cosign(envelope: dsse.Envelope, key: SigningKey, *, what: str = "bundle") -> dsse.Envelope:
    """Add ``key``'s signature; the payload bytes are untouched (and must parse as a bundle)."""
    if envelope.payload_type != BUNDLE_PAYLOAD_TYPE:
        raise FormatError(
            f"{what}: payloadType is {envelope.payload_type!r}, expected {BUNDLE_PAYLOAD_TYPE!r}"
        )
    _parse_payload(envelope.payload, what=what)  # never sign something that is not a bundle
    return dsse.add_signature(envelope, key)


def read_bundle_file(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The exact bytes of a ``.bundle`` file (what :meth:`PolicyBundle.from_envelope` takes),
    refusing an oversize file before reading it."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError as exc:
        raise FormatError(f"{p}: no such file") from exc
    except OSError as exc:
        raise FormatError(f"{p}: cannot read ({exc.strerror})") from exc
    _check_size(size, max_bytes, what=str(p))
    return read_file(p)


def load_bundle_file(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dsse.Envelope:
    """Read and parse a ``.bundle`` file (unverified; for cosigning), refusing oversize files
    before parsing them."""
    return dsse.Envelope.from_json(read_bundle_file(path, max_bytes=max_bytes), what=str(path))


# --- parsed bundles ---------------------------------------------------------------------------


def _parse_payload(payload: bytes, *, what: str) -> tuple[Manifest, dict[str, Any], dict[str, str]]:
    obj = check_fields(
        load_canonical_object(payload, what=what), _PAYLOAD_KEYS, what=what, noun="payload key"
    )
    check_schema(obj["schema"], BUNDLE_SCHEMA, what=what)
    manifest = manifest_from_payload(obj["manifest"], what=what)
    data = obj["data"]
    if not isinstance(data, dict):
        raise FormatError(f"{what}: field 'data' must be an object")
    files_obj = obj["files"]
    if not isinstance(files_obj, dict) or not files_obj:
        raise FormatError(f"{what}: field 'files' must be a non-empty object")
    files: dict[str, str] = {}
    for path, entry in files_obj.items():
        check_rego_path(path, what=what)
        where = f"{what}: files[{path!r}]"
        if not isinstance(entry, dict) or set(entry) != _FILE_KEYS:
            raise FormatError(f"{where} must be {{'sha256', 'text'}}")
        digest = check_hex64(entry["sha256"], what=f"{where}.sha256 (a hex SHA-256)")
        text = check_str(entry["text"], what=f"{where}.text")
        actual = sha256_hex(text.encode("utf-8"))
        if actual != digest:
            raise DigestMismatchError(
                f"{what}: file {path} hashes to {actual[:16]}…, the manifest says {digest[:16]}…"
            )
        files[path] = text
    return manifest, data, files


def _check_envelope(data: bytes, max_bytes: int, *, what: str) -> dsse.Envelope:
    """Size and payload type: the checks before anything in the envelope is looked at."""
    _check_size(len(dsse.check_bytes(data, what=what)), max_bytes, what=what)
    envelope = dsse.from_bytes(data, what=what)
    check_payload_type(envelope.payload_type, BUNDLE_PAYLOAD_TYPE, what=what)
    return envelope


@dataclass(frozen=True)
class _BundleContent:
    """What a bundle holds, verified or not (the fields both bundle types share)."""

    manifest: Manifest
    data: Mapping[str, Any]
    files: Mapping[str, str]
    digest: Sha256
    payload: bytes = field(repr=False)

    @property
    def name(self) -> str:
        """The bundle's name."""
        return self.manifest.name

    @property
    def version(self) -> int:
        """The bundle's version."""
        return self.manifest.version

    @property
    def modules(self) -> dict[str, str]:
        """Policy modules (every ``.rego`` file except ``*_test.rego``)."""
        return {p: t for p, t in self.files.items() if not p.endswith("_test.rego")}


def _content(payload: bytes, *, what: str) -> _BundleContent:
    manifest, data, files = _parse_payload(payload, what=what)
    return _BundleContent(
        manifest, MappingProxyType(data), MappingProxyType(files), sha256_hex(payload), payload
    )


@dataclass(frozen=True)
class PolicyBundle(_BundleContent):
    """A verified policy bundle. Built only by :meth:`from_envelope`.

    ``envelope`` is parsed from the exact bytes verified; ``signers`` are the distinct
    ``policy``-role keys whose signature verified.
    """

    envelope: dsse.Envelope = field(repr=False, kw_only=True)
    signers: frozenset[KeyId] = field(kw_only=True)
    _: KW_ONLY
    _token: InitVar[object] = None

    def __post_init__(self, _token: object) -> None:
        require_token(_token, type(self), "PolicyBundle.from_envelope")

    @classmethod
    def from_envelope(
        cls,
        data: bytes,
        root: TrustRoot,
        *,
        last_version: int | None = None,
        now: datetime | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        what: str = "bundle",
    ) -> PolicyBundle:
        """Verify the exact envelope bytes ``data`` against ``root``; raise on any failure
        (anything but ``bytes`` included)."""
        envelope = _check_envelope(data, max_bytes, what=what)
        signers = root.verify_role(envelope, "policy", payload_type=BUNDLE_PAYLOAD_TYPE, what=what)
        c = _content(envelope.payload, what=what)
        manifest = c.manifest
        now = now or utcnow()
        if manifest.expires <= now:
            raise ExpiredError(
                f"{what}: bundle {manifest.name} v{manifest.version} expired at "
                f"{format_time(manifest.expires)}",
                hint="the policy officers must sign a new version",
            )
        if last_version is not None and manifest.version < last_version:
            raise RollbackError(
                f"{what}: bundle {manifest.name} v{manifest.version} is older than the last "
                f"accepted version {last_version}",
                hint="a replayed old bundle is refused; publish a version ≥ the current one",
            )
        return cls(
            c.manifest,
            c.data,
            c.files,
            c.digest,
            c.payload,
            envelope=envelope,
            signers=signers,
            _token=TOKEN,
        )


@dataclass(frozen=True)
class UnverifiedPolicyBundle(_BundleContent):
    """A bundle whose size, format and file digests were checked — NOT its signatures.

    For inspection (``warden policy show``), source directories and the explicitly unverified
    ``warden policy eval --skip-signature``; the engine evaluates one only through
    :meth:`~trust.policy.engine.PolicyEngine.for_unverified`. ``envelope`` is ``None`` for a
    bundle built from a source directory.
    """

    envelope: dsse.Envelope | None = field(default=None, repr=False, kw_only=True)

    @classmethod
    def from_bytes(
        cls, data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, what: str = "bundle"
    ) -> UnverifiedPolicyBundle:
        """Parse envelope bytes and check size, format and file digests, not signatures."""
        envelope = _check_envelope(data, max_bytes, what=what)
        c = _content(envelope.payload, what=what)
        return cls(c.manifest, c.data, c.files, c.digest, c.payload, envelope=envelope)

    @classmethod
    def from_source(
        cls, directory: str | Path, *, now: datetime | None = None
    ) -> UnverifiedPolicyBundle:
        """An unsigned bundle straight from a source directory (development and tests)."""
        source = load_source(directory)
        payload = build_payload(source, now=now)
        c = _content(payload, what=str(directory))
        if not c.files:
            raise PolicyError(f"{directory}: no Rego files")
        return cls(c.manifest, c.data, c.files, c.digest, c.payload)
