"""The agent's one frozen configuration object, built from ``agent.yaml``, environment and flags.

Precedence, lowest first: built-in defaults < ``agent.yaml`` < ``WARDEN_AGENT_<KEY>``
environment variables < command-line flags. :func:`load_agent_config` is the only place that
reads the environment; everything below it receives an :class:`AgentConfig`. Every key is
documented in ``docs/agent-config.md`` (a test fails when a field is not).

Invariants:

* An unknown key in the file (top level or in a ``models`` entry) is a :class:`ConfigError`
  naming the key and the file; so is an unknown ``WARDEN_AGENT_*`` variable (a typo there
  would otherwise be silently ignored).
* Relative paths in the file are resolved against the file's directory, so a node directory
  made by ``warden agent init`` can be moved as a whole; relative paths from the environment
  or flags are taken relative to the working directory. Every path in a built config is
  absolute.
* ``node_key``, ``registry`` and ``root`` default to files inside ``state_dir``, which itself
  defaults to the config file's directory (the node directory).
* The file is UTF-8 YAML read by :func:`trust.strict_yaml.load`: a key said twice, or bytes
  that are not UTF-8, are a :class:`ConfigError` naming the file (and the line or byte offset).
* ``insecure`` (plaintext gRPC) is only accepted when ``hub`` is a loopback address; otherwise
  ``ca`` (the hub's CA certificate) is required.
* Whole-number keys refuse fractions (``2.5`` is not silently 2) and every number is finite.
* Model names and stage names are safe single path components (they name directories of the
  registry), and a model name appears once.

Example ``agent.yaml``::

    node_id: emea-1
    hub: hub.example.com:7443
    ca: ca.crt
    root: root.json
    models:
      - name: credit-risk
        data: data/validation.parquet
        label: default
        sensitive: [gender, age_band]
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from agent.hooks import ALERT_EVENTS, RETRAIN_EVENTS, Hook, parse_hook, parse_hooks
from agent.mlflow_registry import MlflowRegistryConfig, parse_mlflow_registry
from agent.monitoring import MonitorConfig, parse_monitoring
from protos.client import is_loopback
from trust.config_file import (
    check_section,
    coerce_value,
    environment_settings,
    read_config_mapping,
    resolve_path,
)
from trust.errors import ConfigError, FormatError
from trust.record import NodeId, check_node_id

__all__ = [
    "DEFAULT_STAGES",
    "ENV_PREFIX",
    "LOG_LEVELS",
    "PRODUCTION_STAGE",
    "REGISTRY_KINDS",
    "AgentConfig",
    "CheckEngine",
    "ModelConfig",
    "check_hub_address",
    "load_agent_config",
]

ENV_PREFIX = "WARDEN_AGENT_"
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_STAGES: tuple[str, ...] = ("staging", "production")
# The stage production monitoring watches, and rollbacks move back.
PRODUCTION_STAGE = "production"
# Where model versions come from: a directory tree (agent/registry.py) or an MLflow model
# registry (agent/mlflow_registry.py).
REGISTRY_KINDS = ("directory", "mlflow")
# Files inside state_dir that the defaults name (relative to state_dir).
DEFAULT_NODE_KEY = Path("node.key")
DEFAULT_REGISTRY = Path("models")
DEFAULT_ROOT = Path("root.json")
# A hub accepts at most its max_batch records per Append (1000 by default); far larger
# batches only make one failed push cost more.
MAX_PUSH_BATCH = 10_000
# Below this an outbox cannot hold its schema and reserve (agent/outbox.py).
MIN_OUTBOX_BYTES = 64 * 1024

# A model or stage name is one directory name in the registry: no separators, no "..".
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_STAGE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_PORT = re.compile(r"[0-9]{1,5}")


class CheckEngine(StrEnum):
    """Where a model's checks run. Only in the agent process today."""

    LOCAL = "local"


@dataclass(frozen=True)
class ModelConfig:
    """One model this node governs, and the node's own validation data for it.

    Invariants: ``name`` and each stage are safe single path components; ``data`` is an
    absolute path; ``label`` is non-empty; ``sensitive`` and ``stages`` hold no duplicates,
    and ``stages`` is not empty.
    """

    name: str
    data: Path
    label: str
    # Columns fairness checks group by; they must never leave the node as raw values.
    sensitive: tuple[str, ...] = ()
    # Stages this node may promote the model to; a manifest's target stage outside it is refused.
    stages: tuple[str, ...] = DEFAULT_STAGES
    engine: CheckEngine = CheckEngine.LOCAL
    # The positive class of a binary label (None: the checks' default, 1/true).
    pos_label: str | None = None
    # Groups smaller than this are suppressed in fairness evidence (0: the policy decides).
    min_group_size: int = 0
    # Reference data for drift checks (e.g. the training sample); None: no drift check.
    reference: Path | None = None
    # For a predictions artefact: the column holding the model's predictions.
    pred: str = "prediction"
    # Whether a .joblib (pickle) artefact may be loaded: the node's decision, never the
    # trainer's; loading a pickle runs code.
    trust_pickle: bool = False
    # The retraining hook (agent/hooks.py): run after a drift alert or a rollback.
    retrain: Hook | None = None
    # Production monitoring of the version in the production stage (agent/monitoring.py).
    monitoring: MonitorConfig | None = None

    def __post_init__(self) -> None:
        if self.monitoring is not None and PRODUCTION_STAGE not in self.stages:
            raise ConfigError(f"model {self.name!r}: monitoring watches the "
                              f"{PRODUCTION_STAGE!r} stage, which is not in its stages "
                              f"({', '.join(self.stages)})")


@dataclass(frozen=True)
class AgentConfig:
    """Everything an agent process needs to know, fixed at start-up.

    Build it with :func:`load_agent_config`; constructing it directly runs the same
    cross-field checks (``__post_init__``) but not the per-key parsing.
    """

    node_id: NodeId
    hub: str
    ca: Path | None = None
    root: Path = DEFAULT_ROOT
    state_dir: Path = Path(".")
    node_key: Path = DEFAULT_NODE_KEY
    passphrase_file: Path | None = None
    registry: Path = DEFAULT_REGISTRY
    models: tuple[ModelConfig, ...] = ()
    # WatchPolicies reconnects after a failure with jittered exponential backoff in this range.
    watch_backoff_initial_s: float = 1.0
    watch_backoff_max_s: float = 60.0
    # Outbox records per Append call, and the pause between pushes while records are pending.
    push_batch: int = 100
    push_interval_s: float = 1.0
    heartbeat_interval_s: float = 30.0
    log_level: str = "info"
    insecure: bool = False
    # The policy bundle name this node enforces (one name; the hub may serve others).
    policy_name: str = "standard"
    # The hub log's checkpoint origin; None: learned from the first verified checkpoint at
    # enrollment and pinned in the state directory.
    hub_origin: str | None = None
    # How often the registry is scanned for new versions, and the hub witnessed.
    scan_interval_s: float = 5.0
    witness_interval_s: float = 10.0
    # Cap on the outbox database size (None: the disk is the limit).
    outbox_max_bytes: int | None = None
    # Alert hooks (agent/hooks.py), each firing for the events in its ``on``.
    alerts: tuple[Hook, ...] = ()
    # HOST:PORT of the Prometheus metrics endpoint (agent/metrics.py); None: not served.
    metrics_listen: str | None = None
    # "directory" (``registry``) or "mlflow" (the ``mlflow`` section).
    registry_kind: str = "directory"
    mlflow: MlflowRegistryConfig | None = None
    source: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        where = self._where()
        if self.insecure and not is_loopback(self.hub):
            raise ConfigError(
                f"{where}: insecure (plaintext) mode is only allowed with a loopback hub "
                f"address, not hub={self.hub!r}",
                hint="set ca to the hub's CA certificate (DIR/tls/ca.crt of 'warden hub init')",
            )
        if not self.insecure and self.ca is None:
            raise ConfigError(
                f"{where}: ca: no CA certificate for the hub and not insecure",
                hint="set ca to the hub's CA certificate, or use insecure on loopback",
            )
        for name in ("watch_backoff_initial_s", "watch_backoff_max_s", "push_interval_s",
                     "heartbeat_interval_s", "scan_interval_s", "witness_interval_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{where}: {name} must be a finite number of seconds > 0, "
                                  f"got {value}")
        if self.watch_backoff_max_s < self.watch_backoff_initial_s:
            raise ConfigError(
                f"{where}: watch_backoff_max_s ({self.watch_backoff_max_s}) must be ≥ "
                f"watch_backoff_initial_s ({self.watch_backoff_initial_s})")
        if not 1 <= self.push_batch <= MAX_PUSH_BATCH:
            raise ConfigError(f"{where}: push_batch must be between 1 and {MAX_PUSH_BATCH}, "
                              f"got {self.push_batch}",
                              hint="the hub refuses batches above its max_batch (default 1000)")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"{where}: log_level {self.log_level!r} is not one of "
                              f"{', '.join(LOG_LEVELS)}")
        if self.outbox_max_bytes is not None and self.outbox_max_bytes < MIN_OUTBOX_BYTES:
            raise ConfigError(f"{where}: outbox_max_bytes must be ≥ {MIN_OUTBOX_BYTES}, "
                              f"got {self.outbox_max_bytes}")
        if not self.policy_name.strip():
            raise ConfigError(f"{where}: policy_name must not be empty")
        if self.hub_origin is not None and not self.hub_origin.strip():
            raise ConfigError(f"{where}: hub_origin must not be empty (omit it to learn it)")
        names = [m.name for m in self.models]
        for name in names:
            if names.count(name) > 1:
                raise ConfigError(f"{where}: models: model {name!r} is listed more than once")
        if self.registry_kind not in REGISTRY_KINDS:
            raise ConfigError(f"{where}: registry_kind {self.registry_kind!r} is not one of "
                              f"{', '.join(REGISTRY_KINDS)}")
        if self.registry_kind == "mlflow":
            if self.mlflow is None:
                raise ConfigError(f"{where}: registry_kind is mlflow but there is no mlflow "
                                  "section", hint="add mlflow: {tracking_uri: ...}")
            for m in self.models:
                missing = [s for s in m.stages if s not in self.mlflow.aliases]
                if missing:
                    raise ConfigError(
                        f"{where}: model {m.name!r}: stage(s) {', '.join(missing)} have no "
                        "MLflow alias in mlflow.aliases",
                        hint="map every stage a model may be promoted to onto an alias, "
                        "e.g. aliases: {production: champion, staging: challenger}")
            if self.mlflow.models is not None:
                unseen = [m.name for m in self.models if m.name not in self.mlflow.models]
                if unseen:
                    raise ConfigError(f"{where}: models {', '.join(unseen)} are governed but "
                                      "not in mlflow.models, so the agent would never see them")
        elif self.mlflow is not None:
            raise ConfigError(f"{where}: an mlflow section is set but registry_kind is "
                              f"{self.registry_kind!r}", hint="set registry_kind: mlflow")

    @property
    def outbox_path(self) -> Path:
        """The durable outbox (SQLite) inside ``state_dir``."""
        return self.state_dir / "outbox.db"

    @property
    def bundle_path(self) -> Path:
        """The last good policy bundle (exact envelope bytes), replaced atomically."""
        return self.state_dir / "policy.bundle"

    @property
    def witness_path(self) -> Path:
        """The witness state: last verified checkpoint, pinned origin, halt flag."""
        return self.state_dir / "witness.json"

    def model(self, name: str) -> ModelConfig | None:
        """The configured model called ``name``, or None when this node does not govern it."""
        return next((m for m in self.models if m.name == name), None)

    def _where(self) -> str:
        return str(self.source) if self.source else "agent config"


def check_hub_address(value: str, *, where: str) -> str:
    """``value`` if it is ``HOST:PORT`` (IPv6 hosts in brackets) with a port in 1..65535.

    Raises :class:`ConfigError` naming ``where`` and the value otherwise, so a typo is refused
    at start-up rather than surfacing as an endless reconnect loop.
    """
    host, sep, port = value.rpartition(":")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    ok = (
        bool(sep) and bool(bare) and _PORT.fullmatch(port) is not None
        and 1 <= int(port) <= 65535
        and not any(c.isspace() or c in "/[]" for c in bare)
        and (":" not in bare or host.startswith("["))
    )
    if not ok:
        raise ConfigError(f"{where}: hub {value!r} must be HOST:PORT with a port in 1..65535",
                          hint="e.g. hub.example.com:7443 or [::1]:7443")
    return value


# Keys settable from the file, the environment and flags, with their type.
_SCALARS: dict[str, type] = {
    "node_id": str,
    "hub": str,
    "ca": Path,
    "root": Path,
    "state_dir": Path,
    "node_key": Path,
    "passphrase_file": Path,
    "registry": Path,
    "watch_backoff_initial_s": float,
    "watch_backoff_max_s": float,
    "push_batch": int,
    "push_interval_s": float,
    "heartbeat_interval_s": float,
    "log_level": str,
    "insecure": bool,
    "policy_name": str,
    "hub_origin": str,
    "scan_interval_s": float,
    "witness_interval_s": float,
    "outbox_max_bytes": int,
    "metrics_listen": str,
    "registry_kind": str,
}
# Keys that may be null (absent) in the file.
_OPTIONAL = frozenset({"ca", "passphrase_file", "hub_origin", "outbox_max_bytes",
                       "metrics_listen"})
# Keys only the file can set (structured values).
_FILE_ONLY = {"models": "models can only be set in agent.yaml",
              "alerts": "alerts can only be set in agent.yaml",
              "mlflow": "mlflow can only be set in agent.yaml"}
_KNOWN = frozenset({*_SCALARS, *_FILE_ONLY})
assert {f.name for f in fields(AgentConfig)} - {"source"} == _KNOWN
_REQUIRED = ("node_id", "hub")
_MODEL_KEYS = frozenset(f.name for f in fields(ModelConfig))
_MODEL_REQUIRED = ("name", "data", "label")


def _string_list(value: Any, *, key: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a list of strings, got {value!r}")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{where}: {key} must hold non-empty strings, got {item!r}")
        if item in out:
            raise ConfigError(f"{where}: {key} lists {item!r} twice")
        out.append(item)
    return tuple(out)


def _parse_model(item: Any, *, at: str, where: str, base: Path) -> ModelConfig:
    item = check_section(item, at=at, where=where, known=_MODEL_KEYS, required=_MODEL_REQUIRED,
                         shape="name, data, label", what="model")
    name = coerce_value(f"{at}.name", str, item["name"], where=where)
    if not _MODEL_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(f"{where}: {at}.name {name!r} must match "
                          "[A-Za-z0-9][A-Za-z0-9._-]{0,127} (it names a registry directory)")
    data = resolve_path(coerce_value(f"{at}.data", Path, item["data"], where=where), base)
    label = coerce_value(f"{at}.label", str, item["label"], where=where)
    sensitive = _string_list(item.get("sensitive"), key=f"{at}.sensitive", where=where)
    if label in sensitive:
        raise ConfigError(f"{where}: {at}.sensitive names the label column {label!r}")
    stages: tuple[str, ...] = DEFAULT_STAGES
    if "stages" in item:
        stages = _string_list(item["stages"], key=f"{at}.stages", where=where)
        if not stages:
            raise ConfigError(f"{where}: {at}.stages must name at least one stage")
        for stage in stages:
            if not _STAGE_NAME.fullmatch(stage):
                raise ConfigError(f"{where}: {at}.stages: stage {stage!r} must match "
                                  "[a-z][a-z0-9_-]{0,63} (it names a stage pointer file)")
    pos_label = item.get("pos_label")
    if pos_label is not None:
        if isinstance(pos_label, bool) or not isinstance(pos_label, (str, int)):
            raise ConfigError(f"{where}: {at}.pos_label must be a string or whole number, "
                              f"got {pos_label!r}")
        pos_label = str(pos_label)
    min_group_size = 0
    if item.get("min_group_size") is not None:
        min_group_size = coerce_value(f"{at}.min_group_size", int, item["min_group_size"],
                                      where=where)
        if min_group_size < 0:
            raise ConfigError(f"{where}: {at}.min_group_size must be ≥ 0, got {min_group_size}")
    reference = None
    if item.get("reference") is not None:
        reference = resolve_path(
            coerce_value(f"{at}.reference", Path, item["reference"], where=where), base)
    pred = "prediction"
    if item.get("pred") is not None:
        pred = coerce_value(f"{at}.pred", str, item["pred"], where=where)
        if not pred or pred == label:
            raise ConfigError(f"{where}: {at}.pred must be a non-empty column other than "
                              f"the label, got {pred!r}")
    trust_pickle = False
    if item.get("trust_pickle") is not None:
        trust_pickle = coerce_value(f"{at}.trust_pickle", bool, item["trust_pickle"],
                                    where=where)
    retrain = None
    if item.get("retrain") is not None:
        retrain = parse_hook(item["retrain"], at=f"{at}.retrain", where=where, base=base,
                             events=RETRAIN_EVENTS)
    engine = CheckEngine.LOCAL
    if item.get("engine") is not None:
        try:
            engine = CheckEngine(item["engine"])
        except ValueError:
            raise ConfigError(f"{where}: {at}.engine {item['engine']!r} is not one of "
                              f"{', '.join(e.value for e in CheckEngine)}") from None
    monitoring = None
    if item.get("monitoring") is not None:
        monitoring = parse_monitoring(item["monitoring"], at=f"{at}.monitoring", where=where,
                                      base=base)
    try:
        return ModelConfig(name=name, data=data, label=label, sensitive=sensitive,
                           stages=stages, engine=engine, pos_label=pos_label,
                           min_group_size=min_group_size, reference=reference, pred=pred,
                           trust_pickle=trust_pickle, retrain=retrain, monitoring=monitoring)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {at}: {exc.message}", hint=exc.hint) from None


def _parse_models(value: Any, *, where: str, base: Path) -> tuple[ModelConfig, ...]:
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ConfigError(f"{where}: models must be a list of mappings")
    return tuple(_parse_model(item, at=f"models[{i}]", where=where, base=base)
                 for i, item in enumerate(value))


def _from_mapping(data: Mapping[str, Any], *, where: str, base: Path) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _KNOWN:
            raise ConfigError(f"{where}: unknown key {key!r}",
                              hint=f"known keys: {', '.join(sorted(_KNOWN))}")
        if key == "models":
            values["models"] = _parse_models(value, where=where, base=base)
        elif key == "alerts":
            values["alerts"] = parse_hooks(value, at="alerts", where=where, base=base,
                                           events=ALERT_EVENTS)
        elif key == "mlflow":
            values["mlflow"] = None if value is None else parse_mlflow_registry(
                value, at="mlflow", where=where, base=base)
        elif value is None and key in _OPTIONAL:
            values[key] = None
        else:
            v = coerce_value(key, _SCALARS[key], value, where=where)
            if isinstance(v, Path):
                v = resolve_path(v, base)
            elif key == "node_id":
                try:
                    v = check_node_id(v)
                except FormatError as exc:
                    raise ConfigError(f"{where}: {exc.message}") from None
            elif key == "hub":
                v = check_hub_address(v, where=where)
            elif key == "metrics_listen":
                from agent.metrics import parse_listen  # prometheus_client: only when set

                v = parse_listen(v, where=where, key=key)
            values[key] = v
    return values


def load_agent_config(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> AgentConfig:
    """Build the :class:`AgentConfig` from a file, ``WARDEN_AGENT_*`` variables and flags.

    ``env`` defaults to ``os.environ``; ``overrides`` holds flag values (``None`` = not given).
    ``models`` can be set in the file or an override, never from the environment.
    """
    values: dict[str, Any] = {}
    source: Path | None = None
    cwd = Path.cwd()
    base = cwd
    if path is not None:
        source = Path(path)
        data = read_config_mapping(source, init_hint="create one with 'warden agent init'")
        base = source.resolve().parent
        values.update(_from_mapping(data, where=str(source), base=base))

    env_values = environment_settings(
        os.environ if env is None else env, ENV_PREFIX, _SCALARS,
        file_only=_FILE_ONLY)
    values.update(_from_mapping(env_values, where="environment", base=cwd))

    flag_values = {k: v for k, v in (overrides or {}).items() if v is not None}
    values.update(_from_mapping(flag_values, where="command line", base=cwd))

    where = str(source) if source else "agent config"
    for key in _REQUIRED:
        if key not in values:
            raise ConfigError(f"{where}: missing key {key!r}",
                              hint=f"set it in agent.yaml or as {ENV_PREFIX}{key.upper()}")
    # The node directory holds everything the agent writes; its defaults live inside it.
    state_dir = values.setdefault("state_dir", base)
    for key, default in (("node_key", DEFAULT_NODE_KEY), ("registry", DEFAULT_REGISTRY),
                         ("root", DEFAULT_ROOT)):
        if key not in values:
            values[key] = state_dir / default
    return AgentConfig(**values, source=source)
