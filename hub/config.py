"""The hub's one frozen configuration object, built from ``hub.yaml``, environment and flags.

Precedence, lowest first: built-in defaults < ``hub.yaml`` < ``WARDEN_HUB_<KEY>`` environment
variables < command-line flags. :func:`load_config` is the only place that reads the
environment; everything below it receives a :class:`HubConfig`.

Invariants:

* An unknown key in the file is a :class:`ConfigError` naming the key and the file; so is an
  unknown ``WARDEN_HUB_*`` variable (a typo there would otherwise be silently ignored).
* Relative paths in the file are resolved against the file's directory, so a hub directory
  made by ``warden hub init`` can be moved as a whole.
* The file is UTF-8 YAML read by :func:`trust.strict_yaml.load`: a key said twice, or bytes
  that are not UTF-8, are a :class:`ConfigError` naming the file (and the line or byte offset).
* ``insecure`` (plaintext gRPC) is only accepted on a loopback listen address.
* ``database`` is SQLite (a ``sqlite:///`` URL or a plain path) or PostgreSQL: anything else
  is refused when the config is built, not when the first connection is tried.
* ``clock_skew_s`` is at most :data:`MAX_CLOCK_SKEW_S` (a day): a larger window would let a
  captured signed call be replayed for that long.
* Operator tokens are never stored: only their SHA-256 (they are 256-bit random strings, so a
  fast hash is enough — there is nothing to brute-force).

Example ``hub.yaml``::

    listen: 127.0.0.1:7443
    database: sqlite:///ledger.db        # or postgresql+psycopg://user@host/db
    origin: warden.example/hub            # first line of every checkpoint
    hub_key: hub.key                      # signs checkpoints and hub ledger entries
    trust_root: root.json                 # the hub's copy of the trust root
    tls: {cert: tls/server.crt, key: tls/server.key, ca: tls/ca.crt}
    verify_workers: 4                     # record-verifier processes (default: one per core)
    operators:
      - {name: alice, role: compliance, token_sha256: 9f86d0...}
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from protos.client import is_loopback
from trust.checkpoint import check_name
from trust.config_file import (
    coerce_value,
    environment_settings,
    read_config_mapping,
    resolve_path,
)
from trust.errors import ConfigError, FormatError
from trust.timeutil import parse_duration

__all__ = [
    "DATABASE_SCHEMES",
    "ENV_PREFIX",
    "MAX_CLOCK_SKEW_S",
    "HubConfig",
    "OperatorToken",
    "Role",
    "TlsFiles",
    "check_database",
    "check_origin",
    "load_config",
    "is_loopback",
]

ENV_PREFIX = "WARDEN_HUB_"
DEFAULT_DATABASE = "sqlite:///ledger.db"
DEFAULT_HUB_KEY = Path("hub.key")
DEFAULT_TRUST_ROOT = Path("root.json")
# Per-call signatures are accepted this far from the hub's clock (and nonces kept this long).
MAX_CLOCK_SKEW_S = 24 * 3600
# URL schemes hub/db.py can open (a value without "://" is a SQLite file path).
DATABASE_SCHEMES = frozenset({"sqlite", "postgres", "postgresql", "postgresql+psycopg"})


class Role(StrEnum):
    """Operator roles. Nodes are not a role: they authenticate with their enrolled key."""

    ADMIN = "admin"
    COMPLIANCE = "compliance"
    AUDITOR = "auditor"


@dataclass(frozen=True)
class OperatorToken:
    """One operator bearer token, by the SHA-256 of its value."""

    name: str
    role: Role
    token_sha256: str


@dataclass(frozen=True)
class TlsFiles:
    """Server certificate chain, its private key, and the CA that issued it."""

    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True)
class HubConfig:
    """Everything a hub process needs to know, fixed at start-up."""

    listen: str = "127.0.0.1:7443"
    database: str = DEFAULT_DATABASE
    origin: str = "warden.local/hub"
    hub_key: Path = DEFAULT_HUB_KEY
    trust_root: Path = DEFAULT_TRUST_ROOT
    tls: TlsFiles | None = None
    insecure: bool = False
    operators: tuple[OperatorToken, ...] = ()
    # Ledger and transport limits.
    max_batch: int = 1000
    max_message_bytes: int = 16 * 1024 * 1024
    page_size: int = 1000
    # Append replies with the newest checkpoint at most this old; 0 = sign on every append.
    checkpoint_interval_ms: int = 0
    # Per-call node signatures: accepted clock skew and replay window.
    clock_skew_s: int = 300
    # Seconds SIGTERM waits for in-flight calls before cancelling them.
    drain_s: float = 10.0
    # Watch streams poll the database at this period (catches other hub processes).
    watch_poll_ms: int = 250
    max_workers: int = 64
    # Open Watch streams: overall and per caller (node or operator); one more is refused
    # with RESOURCE_EXHAUSTED. Streams are parked without a thread each (see hub/server.py).
    max_watch_streams: int = 4096
    max_watch_streams_per_caller: int = 16
    # Largest audit record (envelope bytes) Append accepts; GetEntries pages are cut so a
    # page's envelopes stay under page_bytes (at least one entry per page).
    max_record_bytes: int = 1024 * 1024
    page_bytes: int = 4 * 1024 * 1024
    # Processes that verify appended records' signatures (cryptography holds the GIL while
    # verifying, so threads cannot share that work); None = one per CPU, 0 = in the RPC thread.
    verify_workers: int | None = None
    log_level: str = "info"
    enrollment_token_ttl: str = "24h"
    source: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        check_origin(self.origin, where=self._where())
        check_database(self.database, where=self._where())
        if self.insecure and not is_loopback(self.listen):
            raise ConfigError(
                f"insecure (plaintext) mode is only allowed on a loopback address, "
                f"not listen={self.listen!r}",
                hint="listen on 127.0.0.1 or configure tls",
            )
        if not self.insecure and self.tls is None:
            raise ConfigError(
                f"{self._where()}: no 'tls' section and not insecure",
                hint="run 'warden hub init DIR' to create TLS files, or use --insecure on loopback",
            )
        for name in ("max_batch", "max_message_bytes", "page_size", "max_workers", "clock_skew_s",
                     "max_watch_streams", "max_watch_streams_per_caller", "max_record_bytes",
                     "page_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{self._where()}: {name} must be ≥ 1, got {getattr(self, name)}")
        if self.clock_skew_s > MAX_CLOCK_SKEW_S:
            raise ConfigError(
                f"{self._where()}: clock_skew_s must be between 1 and {MAX_CLOCK_SKEW_S} "
                f"seconds (one day), got {self.clock_skew_s}",
                hint="the default is 300; keep the hosts' clocks in sync with NTP instead",
            )
        if not math.isfinite(self.drain_s) or self.drain_s < 0:
            raise ConfigError(f"{self._where()}: drain_s must be a finite number of seconds ≥ 0, "
                              f"got {self.drain_s}")
        if self.verify_workers is not None and self.verify_workers < 0:
            raise ConfigError(f"{self._where()}: verify_workers must be ≥ 0, got "
                              f"{self.verify_workers}")
        if self.checkpoint_interval_ms < 0 or self.watch_poll_ms < 1:
            raise ConfigError(f"{self._where()}: negative interval or worker count")
        parse_duration(self.enrollment_token_ttl, what="enrollment_token_ttl")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"{self._where()}: log_level {self.log_level!r} is not one of "
                              "debug, info, warning, error")

    @property
    def verify_processes(self) -> int:
        """How many verifier processes to run (``verify_workers`` resolved; 0 = none)."""
        if self.verify_workers is not None:
            return self.verify_workers
        cpus = os.cpu_count() or 1
        return cpus if cpus > 1 else 0

    def _where(self) -> str:
        return str(self.source) if self.source else "hub config"


def check_origin(origin: str, *, where: str) -> str:
    """``origin`` if checkpoints can be signed under it (it is also their note key name).

    Raises :class:`ConfigError` naming ``where`` and the value otherwise, so a hub never
    commits a state change and then fails to sign the checkpoint covering it.
    """
    try:
        return check_name(origin, what="origin")
    except FormatError:
        raise ConfigError(
            f"{where}: origin {origin!r} must be non-empty, without spaces or '+' "
            "(it is the checkpoint key name)",
            hint="use a name like hub.example.com/ledger",
        ) from None


def check_database(url: str, *, where: str) -> str:
    """``url`` if the hub can store its ledger there: SQLite or PostgreSQL (see hub/db.py).

    Raises :class:`ConfigError` naming ``where`` and the URL otherwise, so a wrong URL is
    refused by ``warden hub init`` and at start-up rather than at the first connection.
    """
    if "://" in url and url.split("://", 1)[0].lower() not in DATABASE_SCHEMES:
        raise ConfigError(
            f"{where}: database {url!r}: only sqlite and postgresql are supported",
            hint="use sqlite:///ledger.db or postgresql+psycopg://user@host/db",
        )
    return url


_SCALARS: dict[str, type] = {
    "listen": str,
    "database": str,
    "origin": str,
    "hub_key": Path,
    "trust_root": Path,
    "insecure": bool,
    "max_batch": int,
    "max_message_bytes": int,
    "page_size": int,
    "checkpoint_interval_ms": int,
    "clock_skew_s": int,
    "drain_s": float,
    "watch_poll_ms": int,
    "max_workers": int,
    "max_watch_streams": int,
    "max_watch_streams_per_caller": int,
    "max_record_bytes": int,
    "page_bytes": int,
    "verify_workers": int,
    "log_level": str,
    "enrollment_token_ttl": str,
}
_KNOWN = frozenset({*_SCALARS, "tls", "operators"})
assert {f.name for f in fields(HubConfig)} - {"source"} == _KNOWN


def _coerce(name: str, value: Any, *, where: str) -> Any:
    return coerce_value(name, _SCALARS[name], value, where=where)


def _resolve_db(url: str, base: Path | None) -> str:
    """Make a relative SQLite path relative to the config file's directory."""
    prefix = "sqlite:///"
    if base is not None and url.startswith(prefix) and not url.startswith(prefix + "/"):
        rest = url[len(prefix):]
        if rest and rest != ":memory:":
            return prefix + str(base / rest)
    return url


def _parse_tls(value: Any, *, where: str, base: Path | None) -> TlsFiles:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: tls must be a mapping with cert, key, ca")
    unknown = set(value) - {"cert", "key", "ca"}
    if unknown:
        raise ConfigError(f"{where}: unknown key tls.{sorted(unknown)[0]}")
    missing = {"cert", "key", "ca"} - set(value)
    if missing:
        raise ConfigError(f"{where}: missing key tls.{sorted(missing)[0]}")
    return TlsFiles(*(resolve_path(Path(str(value[k])), base) for k in ("cert", "key", "ca")))


def _parse_operators(value: Any, *, where: str) -> tuple[OperatorToken, ...]:
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ConfigError(f"{where}: operators must be a list")
    out: list[OperatorToken] = []
    for i, item in enumerate(value):
        at = f"{where}: operators[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{at} must be a mapping with name, role, token_sha256")
        unknown = set(item) - {"name", "role", "token_sha256"}
        if unknown:
            raise ConfigError(f"{at}: unknown key {sorted(unknown)[0]!r}")
        try:
            role = Role(str(item.get("role")))
        except ValueError:
            raise ConfigError(
                f"{at}: role {item.get('role')!r} is not one of admin, compliance, auditor"
            ) from None
        digest = str(item.get("token_sha256", "")).lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigError(f"{at}: token_sha256 must be 64 hex characters")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{at}: name must be a non-empty string")
        out.append(OperatorToken(name, role, digest))
    return tuple(out)


def _from_mapping(
    data: Mapping[str, Any], *, where: str, base: Path | None
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _KNOWN:
            raise ConfigError(f"{where}: unknown key {key!r}",
                              hint=f"known keys: {', '.join(sorted(_KNOWN))}")
        if key == "tls":
            values["tls"] = None if value is None else _parse_tls(value, where=where, base=base)
        elif key == "operators":
            values["operators"] = _parse_operators(value, where=where)
        else:
            v = _coerce(key, value, where=where)
            if isinstance(v, Path):
                v = resolve_path(v, base)
            if key == "database":
                v = _resolve_db(v, base)
            values[key] = v
    return values


def load_config(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> HubConfig:
    """Build the :class:`HubConfig` from a file, ``WARDEN_HUB_*`` variables and flag values.

    ``env`` defaults to ``os.environ``; ``overrides`` holds flag values (``None`` = not given).
    Relative paths from the environment or flags are taken relative to the working directory.
    """
    values: dict[str, Any] = {}
    source: Path | None = None
    base: Path | None = None
    if path is not None:
        source = Path(path)
        data = read_config_mapping(source, init_hint="create one with 'warden hub init DIR'")
        base = source.resolve().parent
        values.update(_from_mapping(data, where=str(source), base=base))

    env_values = environment_settings(os.environ if env is None else env, ENV_PREFIX, _SCALARS)
    values.update(_from_mapping(env_values, where="environment", base=Path.cwd()))

    flag_values = {k: v for k, v in (overrides or {}).items() if v is not None}
    values.update(_from_mapping(flag_values, where="command line", base=Path.cwd()))

    # Default paths are relative to the config file too.
    for key, default in (("hub_key", DEFAULT_HUB_KEY), ("trust_root", DEFAULT_TRUST_ROOT)):
        if key not in values:
            values[key] = resolve_path(default, base)
    if "database" not in values:
        values["database"] = _resolve_db(DEFAULT_DATABASE, base)
    return HubConfig(**values, source=source)

