"""``warden hub init DIR``: everything a new hub needs, made in one directory.

Layout written (private files mode 0600)::

    DIR/hub.yaml                 the config (relative paths, so DIR can move)
    DIR/hub.key, DIR/hub.pub     ed25519 key that signs checkpoints and hub ledger entries;
                                 its public key goes into the trust root's ``hub`` role
    DIR/tls/ca.crt, ca.key       a private CA (ECDSA P-256, 10 years); agents pin ca.crt
    DIR/tls/server.crt, .key     the server certificate for localhost, 127.0.0.1, ::1 and
                                 any ``--host`` names (ECDSA P-256, 825 days)
    DIR/tokens/<role>.token      one operator bearer token per role (admin, compliance,
                                 auditor); hub.yaml holds only their SHA-256

TLS keys are ECDSA rather than ed25519 because every gRPC TLS stack accepts P-256
certificates; ed25519 stays the signature scheme of everything Warden signs.
Nothing is ever overwritten: an existing ``hub.yaml`` in DIR is an error. Every input is
checked before the first file is made, and a failure while writing removes what that run made,
so a failed ``init`` leaves no half-made hub (nor empty directories) behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import ipaddress
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.config import Role, check_database, check_origin
from trust import keys
from trust.errors import ConfigError

__all__ = ["InitResult", "hash_token", "init_hub", "new_token"]

_CA_DAYS = 3650
_SERVER_DAYS = 825
TOKEN_PREFIX = "wdn_"
# A DNS name of LDH labels (RFC 1123); internationalised names must be given as A-labels.
_DNS_NAME = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")


def new_token() -> str:
    """A fresh 256-bit bearer token, URL-safe text."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The lowercase hex SHA-256 a config or database stores in place of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class InitResult:
    """What ``init_hub`` made: paths and the operator tokens (shown once)."""

    directory: Path
    config: Path
    hub_key_id: str
    ca_cert: Path
    tokens: dict[Role, str]
    token_files: dict[Role, Path]


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _make_ca(name: str, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_server_cert(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    hosts: Sequence[str],
    now: dt.datetime,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _check_hosts(hosts: Sequence[str]) -> list[str]:
    """The ``--host`` values, each an IP address or a DNS name (else :class:`ConfigError`)."""
    out: list[str] = []
    for host in hosts:
        if not host:
            continue
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not _DNS_NAME.fullmatch(host):
                raise ConfigError(f"--host {host!r}: not an IP address or DNS name",
                                  hint="use ASCII letters, digits, '-' and '.' (IDNA A-labels)"
                                  ) from None
        out.append(host)
    return out


def _check_root(path: Path, hub_key_id: str) -> bytes:
    """The bytes of ``path`` once they verify as a trust root whose ``hub`` role holds
    ``hub_key_id``: a hub whose checkpoints nobody can verify is refused at ``init``."""
    from trust.root import TrustRoot

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such trust root file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read trust root ({exc.strerror})") from None
    # Verify the very bytes that are copied in (not a second read of the file).
    root = TrustRoot.from_envelope(data, what=str(path))
    role = root.meta.roles.get("hub")
    if role is None or hub_key_id not in role.keyids:
        raise ConfigError(
            f"{path}: the trust root's 'hub' role does not hold this hub's key {hub_key_id}",
            hint="pass --hub-key with the key whose public half is in the root's 'hub' role, or "
                 "run init without --root and add DIR/hub.pub to the root",
        )
    return data


def _missing_dirs(d: Path) -> list[Path]:
    """``d`` and those of its ancestors that do not exist yet, outermost first."""
    missing: list[Path] = []
    for p in (d, *d.parents):
        if p.exists():
            if not p.is_dir():
                raise ConfigError(f"{p}: exists and is not a directory")
            break
        missing.append(p)
    return missing[::-1]


def _materialise(d: Path, dirs: Sequence[tuple[Path, int]],
                 files: Sequence[tuple[Path, bytes, int]]) -> None:
    """Create ``dirs`` and ``files`` under ``d``; on any failure remove exactly what this call
    created (never a file or directory that was there before) and raise."""
    created: list[Path] = []
    try:
        for path in _missing_dirs(d):
            path.mkdir()
            created.append(path)
        for path, mode in dirs:
            if not path.is_dir():
                path.mkdir(mode=mode)
                created.append(path)
        for path, data, mode in files:
            try:
                _write(path, data, mode)
            except FileExistsError:
                raise ConfigError(f"{path}: already exists; refusing to overwrite it",
                                  hint="choose an empty directory") from None
            created.append(path)
    except BaseException as exc:
        for path in reversed(created):
            # Best effort: the original error is the one to report.
            with contextlib.suppress(OSError):
                path.rmdir() if path.is_dir() else path.unlink()
        if isinstance(exc, OSError):
            where = exc.filename or d
            raise ConfigError(f"{where}: cannot write ({exc.strerror})") from None
        raise


def init_hub(
    directory: str | Path,
    *,
    origin: str = "warden.local/hub",
    listen: str = "127.0.0.1:7443",
    hosts: Sequence[str] = (),
    hub_key: str | Path | None = None,
    trust_root: str | Path | None = None,
    database: str | None = None,
) -> InitResult:
    """Create a hub directory (see the module docstring); refuse to overwrite one.

    Every input is checked before anything is created (origin, database URL, hosts, the hub
    key, and the trust root: it must verify as a root and its ``hub`` role must hold the hub
    key); if writing fails part-way, what this call created is removed again.
    """
    d = Path(directory)
    config_path = d / "hub.yaml"
    check_origin(origin, where="--origin")
    database = check_database(database or "sqlite:///ledger.db", where="--database")
    all_hosts = ["localhost", "127.0.0.1", "::1", *_check_hosts(hosts)]
    if config_path.exists():
        raise ConfigError(f"{config_path}: already exists; refusing to overwrite a hub",
                          hint="choose an empty directory")
    _missing_dirs(d)  # refuses a path under a file before any key is made
    # The hub signing key: generated, or an existing one (officers may already have put its
    # public half into the trust root).
    signing = keys.load_private(hub_key) if hub_key is not None else keys.generate()
    root_bytes = None if trust_root is None else _check_root(Path(trust_root), signing.key_id)

    now = dt.datetime.now(dt.UTC)
    ca_key, ca_cert = _make_ca(origin, now)
    srv_key, srv_cert = _make_server_cert(ca_key, ca_cert, all_hosts, now)
    files: list[tuple[Path, bytes, int]] = [
        (d / "hub.key", signing.to_pem(), 0o600),
        (d / "hub.pub", signing.public.to_pem(), 0o644),
    ]
    if root_bytes is not None:
        files.append((d / "root.json", root_bytes, 0o644))
    files += [
        (d / "tls" / "ca.key", _key_pem(ca_key), 0o600),
        (d / "tls" / "ca.crt", ca_cert.public_bytes(serialization.Encoding.PEM), 0o644),
        (d / "tls" / "server.key", _key_pem(srv_key), 0o600),
        (d / "tls" / "server.crt", srv_cert.public_bytes(serialization.Encoding.PEM), 0o644),
    ]

    tokens: dict[Role, str] = {}
    token_files: dict[Role, Path] = {}
    operators = []
    for role in Role:
        token = new_token()
        tokens[role] = token
        path = d / "tokens" / f"{role.value}.token"
        files.append((path, token.encode("ascii") + b"\n", 0o600))
        token_files[role] = path
        operators.append({"name": f"{role.value}-1", "role": role.value,
                          "token_sha256": hash_token(token)})

    config = {
        "listen": listen,
        "database": database,
        "origin": origin,
        "hub_key": "hub.key",
        "trust_root": "root.json",
        "tls": {"cert": "tls/server.crt", "key": "tls/server.key", "ca": "tls/ca.crt"},
        "operators": operators,
    }
    header = (
        "# Warden hub configuration (made by 'warden hub init').\n"
        "# Paths are relative to this file. WARDEN_HUB_<KEY> variables and flags override it.\n"
        "# Operator tokens are stored only as SHA-256; the tokens are in tokens/*.token.\n"
    )
    # hub.yaml last: a directory is only a hub once everything it names is in place.
    files.append((config_path, (header + yaml.safe_dump(config, sort_keys=False)).encode(),
                  0o600))
    _materialise(d, [(d / "tls", 0o755), (d / "tokens", 0o700)], files)
    return InitResult(d, config_path, signing.key_id, d / "tls" / "ca.crt", tokens, token_files)
