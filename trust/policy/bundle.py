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
  ``.rego`` files are added under ``<directory name>/`` (e.g. ``../lib`` → ``lib/…``).

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

* every key shown is required and no other key is allowed (in the payload and the manifest);
* file paths are relative, ``/``-separated, end in ``.rego``, and contain no ``..``;
* the **bundle digest** is the lowercase hex SHA-256 of the payload bytes exactly as signed;
* the payload must be byte-identical to the canonical encoding of its parsed content, so one
  bundle has exactly one payload (no whitespace or key-order variants with other digests).

Verification (:meth:`PolicyBundle.from_envelope`) fails closed, in this order: envelope size
(default 4 MiB, :class:`FormatError`), payload type, a threshold of the trust root's ``policy``
role (:class:`SignatureError`/:class:`ThresholdError`), payload schema, every file digest
(:class:`DigestMismatchError`), expiry (:class:`ExpiredError`, freeze protection), and version ≥
the last accepted version (:class:`RollbackError`). There is no unverified ``PolicyBundle``
except through the explicitly named :meth:`PolicyBundle.unverified` and
:meth:`PolicyBundle.from_source`, whose ``signature_verified`` is ``False``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from trust import dsse, strict_yaml
from trust.canonical import Sha256, canonical_json, loads_object, sha256_hex
from trust.errors import (
    DigestMismatchError,
    ExpiredError,
    FormatError,
    PolicyError,
    RollbackError,
)
from trust.keys import KeyId, SigningKey
from trust.policy.decision import Convention
from trust.root import TrustRoot
from trust.timeutil import format_time, parse_duration, parse_time, utcnow

__all__ = [
    "BUNDLE_PAYLOAD_TYPE",
    "BUNDLE_SCHEMA",
    "DEFAULT_MAX_BYTES",
    "Manifest",
    "BundleSource",
    "PolicyBundle",
    "load_source",
    "build_payload",
    "sign_source",
    "cosign",
    "load_bundle_file",
    "read_rego_dir",
]

BUNDLE_PAYLOAD_TYPE = "application/vnd.warden.policy-bundle+json"
BUNDLE_SCHEMA = "warden.policy-bundle/v1"
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
MANIFEST_FILE = "bundle.yaml"

_SOURCE_KEYS = frozenset(
    {"name", "version", "expires", "description", "entrypoint", "decision", "data", "include"}
)
_MANIFEST_KEYS = frozenset({"name", "version", "expires", "description", "entrypoint", "decision"})
_PAYLOAD_KEYS = frozenset({"schema", "manifest", "data", "files"})
_FILE_KEYS = frozenset({"sha256", "text"})
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_ENTRYPOINT_RE = re.compile(r"^data(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Manifest:
    """The signed description of a bundle."""

    name: str
    version: int
    expires: datetime
    description: str
    entrypoint: str
    decision: Convention

    def to_dict(self) -> dict[str, Any]:
        """The manifest object as it appears in the payload."""
        return {
            "name": self.name,
            "version": self.version,
            "expires": format_time(self.expires),
            "description": self.description,
            "entrypoint": self.entrypoint,
            "decision": self.decision.value,
        }

    @property
    def rego_entrypoint(self) -> str:
        """The entrypoint in rego-cpp's ``a/b/c`` form."""
        return self.entrypoint[len("data.") :].replace(".", "/")


def _check_name(value: Any, *, what: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise FormatError(f"{what}: field 'name' must match [a-z0-9][a-z0-9._-]*, got {value!r}")
    return value


def _check_version(value: Any, *, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise FormatError(f"{what}: field 'version' must be an integer ≥ 1, got {value!r}")
    return value


def _check_entrypoint(value: Any, *, what: str) -> str:
    if not isinstance(value, str) or not _ENTRYPOINT_RE.match(value):
        raise FormatError(
            f"{what}: field 'entrypoint' must be a Rego reference like data.warden.decision, "
            f"got {value!r}"
        )
    return value


def _check_decision(value: Any, *, what: str) -> Convention:
    try:
        return Convention(value)
    except ValueError:
        allowed = ", ".join(c.value for c in Convention)
        raise FormatError(
            f"{what}: field 'decision' must be one of {allowed}; got {value!r}"
        ) from None


def _check_str(value: Any, field_name: str, *, what: str) -> str:
    if not isinstance(value, str):
        raise FormatError(f"{what}: field {field_name!r} must be a string, got {value!r}")
    return value


def _check_path(path: Any, *, what: str) -> str:
    if (
        not isinstance(path, str)
        or not path.endswith(".rego")
        or path.startswith("/")
        or "\\" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise FormatError(f"{what}: file path {path!r} must be a relative .rego path without '..'")
    return path


def _manifest_from_payload(obj: Any, *, what: str) -> Manifest:
    if not isinstance(obj, dict):
        raise FormatError(f"{what}: field 'manifest' must be an object")
    unknown = set(obj) - _MANIFEST_KEYS
    if unknown:
        raise FormatError(f"{what}: unknown manifest key {sorted(unknown)[0]!r}")
    missing = _MANIFEST_KEYS - set(obj)
    if missing:
        raise FormatError(f"{what}: missing manifest key {sorted(missing)[0]!r}")
    return Manifest(
        name=_check_name(obj["name"], what=what),
        version=_check_version(obj["version"], what=what),
        expires=parse_time(obj["expires"], what=f"{what}: field 'expires'"),
        description=_check_str(obj["description"], "description", what=what),
        entrypoint=_check_entrypoint(obj["entrypoint"], what=what),
        decision=_check_decision(obj["decision"], what=what),
    )


# --- source directories -----------------------------------------------------------------------


@dataclass(frozen=True)
class BundleSource:
    """A bundle source directory, read and checked (not compiled: see ``warden policy check``).

    ``expires`` is either an absolute time or a duration resolved when the bundle is signed.
    """

    directory: Path
    name: str
    version: int
    expires: datetime | str
    description: str
    entrypoint: str
    decision: Convention
    data: Mapping[str, Any]
    files: Mapping[str, str]
    origins: Mapping[str, Path] = field(default_factory=dict)

    def manifest(self, now: datetime | None = None) -> Manifest:
        """The manifest, with a relative ``expires`` resolved against ``now``."""
        expires = self.expires
        if isinstance(expires, str):
            expires = (now or utcnow()) + parse_duration(
                expires, what=f"{self.directory / MANIFEST_FILE}: field 'expires'"
            )
        return Manifest(
            self.name, self.version, expires, self.description, self.entrypoint, self.decision
        )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not UTF-8 text") from exc
    except OSError as exc:
        raise FormatError(f"{path}: cannot read ({exc.strerror})") from exc


def _rego_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*.rego")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )


def read_rego_dir(directory: str | Path) -> dict[str, str]:
    """Every ``.rego`` file under ``directory`` (hidden ones skipped) as relative POSIX path →
    text; a file that is not UTF-8 or cannot be read raises :class:`FormatError` naming it."""
    d = Path(directory)
    return {p.relative_to(d).as_posix(): _read_text(p) for p in _rego_files(d)}


def _source_expires(value: Any, *, what: str) -> datetime | str:
    if isinstance(value, datetime):  # YAML turns unquoted timestamps into datetimes
        if value.tzinfo is None:
            raise FormatError(f"{what}: field 'expires' {value} has no timezone; use UTC with 'Z'")
        return value.astimezone(UTC)
    if isinstance(value, date):
        raise FormatError(f"{what}: field 'expires' must be a time with 'Z', got the date {value}")
    if isinstance(value, str) and re.match(r"^\s*\d+\s*[smhdw]\s*$", value):
        if not parse_duration(value, what=f"{what}: field 'expires'"):
            # A bundle valid for zero seconds is expired when signed: refuse it here.
            raise FormatError(f"{what}: field 'expires' {value.strip()!r} would expire at once")
        return value.strip()
    return parse_time(value, what=f"{what}: field 'expires'")


def load_source(directory: str | Path) -> BundleSource:
    """Read ``DIR/bundle.yaml`` and every ``.rego`` file; errors name the file and key."""
    d = Path(directory)
    mpath = d / MANIFEST_FILE
    if not d.is_dir():
        raise FormatError(f"{d}: not a directory (a policy bundle source is a directory)")
    if not mpath.is_file():
        raise FormatError(f"{mpath}: missing; a bundle directory needs a {MANIFEST_FILE}")
    what = str(mpath)
    # Strict: a repeated key (a second ``min_accuracy`` or ``version``) is refused, never
    # silently resolved to the last one.
    obj = strict_yaml.load(_read_text(mpath), source=what)
    if not isinstance(obj, dict):
        raise FormatError(f"{what}: expected a mapping of manifest keys")
    unknown = set(obj) - _SOURCE_KEYS
    if unknown:
        raise FormatError(
            f"{what}: unknown key {sorted(map(str, unknown))[0]!r}",
            hint="allowed keys: " + ", ".join(sorted(_SOURCE_KEYS)),
        )
    for required in ("name", "version", "expires", "entrypoint"):
        if required not in obj:
            raise FormatError(f"{what}: missing key {required!r}")
    data = obj.get("data") or {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise FormatError(f"{what}: field 'data' must be a mapping with string keys")
    canonical_json(data)  # refuses NaN, infinities, dates and other non-JSON values early
    files: dict[str, str] = {}
    origins: dict[str, Path] = {}
    for p in _rego_files(d):
        rel = p.relative_to(d).as_posix()
        files[rel] = _read_text(p)
        origins[rel] = p
    include = obj.get("include") or []
    if not isinstance(include, list) or not all(isinstance(i, str) for i in include):
        raise FormatError(f"{what}: field 'include' must be a list of directories")
    for inc in include:
        idir = (d / inc).resolve()
        if not idir.is_dir():
            raise FormatError(f"{what}: include {inc!r}: {idir} is not a directory")
        for p in _rego_files(idir):
            rel = f"{idir.name}/{p.relative_to(idir).as_posix()}"
            if rel in files:
                raise FormatError(f"{what}: include {inc!r}: {rel} is already in the bundle")
            files[rel] = _read_text(p)
            origins[rel] = p
    if not any(not f.endswith("_test.rego") for f in files):
        raise FormatError(f"{d}: no .rego policy module found")
    return BundleSource(
        directory=d,
        name=_check_name(obj["name"], what=what),
        version=_check_version(obj["version"], what=what),
        expires=_source_expires(obj["expires"], what=what),
        description=_check_str(obj.get("description", ""), "description", what=what),
        entrypoint=_check_entrypoint(obj["entrypoint"], what=what),
        decision=_check_decision(obj.get("decision", Convention.DOCUMENT.value), what=what),
        data=MappingProxyType(data),
        files=MappingProxyType(files),
        origins=MappingProxyType(origins),
    )


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


def load_bundle_file(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dsse.Envelope:
    """Read a ``.bundle`` file, refusing oversize files before parsing them."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError as exc:
        raise FormatError(f"{p}: no such file") from exc
    except OSError as exc:
        raise FormatError(f"{p}: cannot read ({exc.strerror})") from exc
    _check_size(size, max_bytes, what=str(p))
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise FormatError(f"{p}: cannot read ({exc.strerror})") from exc
    return dsse.Envelope.from_json(data, what=str(p))


# --- parsed bundles ---------------------------------------------------------------------------


def _parse_payload(payload: bytes, *, what: str) -> tuple[Manifest, dict[str, Any], dict[str, str]]:
    obj = loads_object(payload, what=f"{what}: payload")
    unknown = set(obj) - _PAYLOAD_KEYS
    if unknown:
        raise FormatError(f"{what}: unknown payload key {sorted(unknown)[0]!r}")
    missing = _PAYLOAD_KEYS - set(obj)
    if missing:
        raise FormatError(f"{what}: missing payload key {sorted(missing)[0]!r}")
    if obj["schema"] != BUNDLE_SCHEMA:
        raise FormatError(f"{what}: schema is {obj['schema']!r}, expected {BUNDLE_SCHEMA!r}")
    manifest = _manifest_from_payload(obj["manifest"], what=what)
    data = obj["data"]
    if not isinstance(data, dict):
        raise FormatError(f"{what}: field 'data' must be an object")
    files_obj = obj["files"]
    if not isinstance(files_obj, dict) or not files_obj:
        raise FormatError(f"{what}: field 'files' must be a non-empty object")
    files: dict[str, str] = {}
    for path, entry in files_obj.items():
        _check_path(path, what=what)
        if not isinstance(entry, dict) or set(entry) != _FILE_KEYS:
            raise FormatError(f"{what}: files[{path!r}] must be {{'sha256', 'text'}}")
        digest, text = entry["sha256"], entry["text"]
        if not isinstance(digest, str) or not _HEX64_RE.match(digest):
            raise FormatError(f"{what}: files[{path!r}].sha256 is not a hex SHA-256")
        if not isinstance(text, str):
            raise FormatError(f"{what}: files[{path!r}].text must be a string")
        actual = sha256_hex(text.encode("utf-8"))
        if actual != digest:
            raise DigestMismatchError(
                f"{what}: file {path} hashes to {actual[:16]}…, the manifest says {digest[:16]}…"
            )
        files[path] = text
    if canonical_json(obj) != payload:
        raise FormatError(f"{what}: payload is not in canonical JSON form (RFC 8785)")
    return manifest, data, files


def _check_envelope(envelope: dsse.Envelope, max_bytes: int, *, what: str) -> None:
    """Size and payload type: the checks before anything in the envelope is looked at."""
    size = len(envelope.raw) if envelope.raw is not None else len(envelope.to_json())
    _check_size(size, max_bytes, what=what)
    if envelope.payload_type != BUNDLE_PAYLOAD_TYPE:
        raise FormatError(
            f"{what}: payloadType is {envelope.payload_type!r}, expected {BUNDLE_PAYLOAD_TYPE!r}"
        )


@dataclass(frozen=True)
class PolicyBundle:
    """A parsed policy bundle. Build it with :meth:`from_envelope` to trust it."""

    manifest: Manifest
    data: Mapping[str, Any]
    files: Mapping[str, str]
    digest: Sha256
    payload: bytes = field(repr=False)
    envelope: dsse.Envelope | None = field(default=None, repr=False)
    signers: frozenset[KeyId] = frozenset()
    signature_verified: bool = False

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

    @classmethod
    def from_envelope(
        cls,
        envelope: dsse.Envelope,
        root: TrustRoot,
        *,
        last_version: int | None = None,
        now: datetime | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        what: str = "bundle",
    ) -> PolicyBundle:
        """Verify a signed bundle against ``root`` and return it; raise on any failure."""
        _check_envelope(envelope, max_bytes, what=what)
        signers = root.verify_role(envelope, "policy", payload_type=BUNDLE_PAYLOAD_TYPE, what=what)
        manifest, data, files = _parse_payload(envelope.payload, what=what)
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
            manifest,
            MappingProxyType(data),
            MappingProxyType(files),
            sha256_hex(envelope.payload),
            envelope.payload,
            envelope,
            signers,
            True,
        )

    @classmethod
    def unverified(
        cls,
        envelope: dsse.Envelope,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        what: str = "bundle",
    ) -> PolicyBundle:
        """Parse a bundle and check its size, format and file digests — NOT its signatures.

        For inspection (``warden policy show``) and explicitly unverified evaluation only.
        """
        _check_envelope(envelope, max_bytes, what=what)
        manifest, data, files = _parse_payload(envelope.payload, what=what)
        return cls(
            manifest,
            MappingProxyType(data),
            MappingProxyType(files),
            sha256_hex(envelope.payload),
            envelope.payload,
            envelope,
        )

    @classmethod
    def from_source(cls, directory: str | Path, *, now: datetime | None = None) -> PolicyBundle:
        """An unsigned bundle straight from a source directory (development and tests)."""
        source = load_source(directory)
        payload = build_payload(source, now=now)
        manifest, data, files = _parse_payload(payload, what=str(directory))
        if not files:
            raise PolicyError(f"{directory}: no Rego files")
        return cls(
            manifest,
            MappingProxyType(data),
            MappingProxyType(files),
            sha256_hex(payload),
            payload,
        )
