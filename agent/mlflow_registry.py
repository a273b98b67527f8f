"""The MLflow model registry as a :class:`~agent.registry.Registry`: registered models and
versions from a tracking URI, lineage from the version's run, stages as MLflow 3 aliases.

Needs the ``mlflow`` extra (``mlflow-skinny``: the client and a ``sqlite:///`` store, no
server). Importing this module imports nothing from MLflow: the first call that talks to the
registry does. That import is heavy — ``mlflow.tracking.client`` pulls in ``mlflow.data``,
which imports pandas, NumPy, pyarrow and SciPy when they are installed (about +200 MB RSS) —
so an agent configured with an MLflow registry maps them from its first scan on.

What the registry reads (every tag is looked up on the model *version* first, then on its
*run*, so whoever registers a version can correct what the training run logged):

=======================  ==============================================================
manifest field           MLflow source
=======================  ==============================================================
``model.target_stage``   tag ``warden.target_stage``; else ``default_stage`` (``staging``;
                         ``None`` makes the tag required)
``model.owner``          tag ``owner``; else run tag ``mlflow.user``; else the version's
                         ``user_id``
``model.framework``      the flavor the artefact is loaded from (``sklearn``, ``onnx``)
``model.intended_use``   tag ``intended_use``; else the version's description
``model.features``       the input names of the model signature (``MLmodel``), when it has
                         named columns
``artifact.path``        the sklearn flavor's ``pickled_model`` (``model.skops`` when logged
                         with ``serialization_format="skops"``, ``model.pkl`` for a pickle,
                         which loads only with the node's ``trust_pickle``) or the onnx
                         flavor's ``data``; without ``MLmodel``, the one model file there
``artifact.sha256``      computed when the artefacts are downloaded (MLflow keeps none)
``training_data.source`` tag ``data_uri``
``training_data.sha256`` tag ``data_hash``, else ``dvc_data_hash``, when it is a SHA-256
                         (64 hex digits, ``sha256:`` prefix allowed); DVC's own MD5 (32 hex
                         digits, ``.dir`` suffix allowed) is not one and declares nothing
                         (the DVC check recomputes from the pointer file instead)
``training_data.dvc``    tag ``data_dvc``: the training data's ``.dvc`` file or ``dvc.lock``;
                         a relative path is one of the version's artefacts (log the pointer
                         with the model), an absolute one a file on the node
``code.commit``          tag ``mlflow.source.git.commit``
``code.repository``      tag ``mlflow.source.git.repoURL``
``parameters``           the run's params (strings, as MLflow keeps them)
``trained_at``           the run's start time (UTC); else the version's creation time
=======================  ==============================================================

Layout of the cache (``cache_dir``, one directory per version, written only here)::

    <name>/<version>/artifacts/...     the version's artefacts as downloaded, never modified
    <name>/<version>/download.json     what was downloaded, from where, the artefact's digest
    <name>/<version>/manifest.json     the manifest synthesized from MLflow (rewritten by
                                       every read, so a corrected tag is seen)

:class:`~agent.registry.ModelVersion` ``.directory`` is the ``artifacts`` directory (a model
card logged with the model is found there), ``.manifest_path`` is ``manifest.json``.

Invariants:

* **Stages are aliases** (``production`` → ``champion``, ``staging`` → ``challenger`` by
  default, configurable); the deprecated MLflow stages are never read or written. A stage
  with no alias is a :class:`~trust.errors.ConfigError`, never a guess.
* Only versions whose status is ``READY`` exist for the caller (listed, readable, and
  targets of a stage or an annotation); a version being registered is not listed yet.
* A version is downloaded once: into a temporary directory beside its place, which is
  renamed into place only when complete (``download.json`` written last inside it), so a
  crash leaves either no directory or a complete one. A cached version whose source or
  creation time no longer matches MLflow's (a model deleted and registered anew reuses
  version numbers) is downloaded again; a cached artefact whose digest changed is refused
  (:class:`~trust.errors.DigestMismatchError`), never re-downloaded silently.
* **MLflow unreachable** — an ``http(s)://`` server down, a ``sqlite:///`` file missing or
  unreadable, a database error — is :class:`~trust.errors.StorageUnavailableError` naming
  the URI (its password hidden), never an MLflow traceback: the governor leaves the version
  pending and the daemon retries on its next pass, governing what it already knows. An
  object MLflow says does not exist is :class:`~trust.errors.NotFoundError`; a version whose
  artefacts are missing or unusable is :class:`~trust.errors.FormatError` naming model and
  version (the version's fault: it gets a ``validation_error`` record).
* The registry never creates an MLflow store: a ``sqlite:///`` URI whose file does not exist
  is refused before MLflow is called (MLflow would silently create an empty database). It
  never uses MLflow's process-wide tracking or registry URI either (``models:/`` URIs resolve
  through it, so artefacts are downloaded from the version's storage location instead).
* MLflow reads its HTTP knobs only from the environment: before each call the registry sets
  ``MLFLOW_HTTP_REQUEST_TIMEOUT`` and ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` (and the backoff
  factor to 1) in this process from its configuration, so a down server fails in seconds
  (MLflow's defaults, 7 retries with backoff factor 2 and a 120 s timeout, take minutes). It
  also sets ``MLFLOW_CONFIGURE_LOGGING=false`` (MLflow's loggers then propagate to the
  agent's log instead of writing their own lines to stderr) and disables the download
  progress bar, unless the operator set those two.
* :meth:`MlflowRegistry.annotate` writes version tags one by one (MLflow has no batch call
  for them); a failure part-way leaves some written, and writing them again is harmless.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
import tempfile
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, TypeVar

from agent.checks.files import load_manifest, sha256_file
from agent.formats import MODEL_SUFFIXES
from agent.registry import (
    ModelVersion,
    Registry,
    check_annotations,
    check_name,
    manifest_from_document,
)
from trust import strict_yaml
from trust._internal.files import fsync_dir, replace_file
from trust.canonical import Sha256, canonical_json, loads_object
from trust.config_file import check_section, coerce_value, resolve_path
from trust.errors import (
    ConfigError,
    DigestMismatchError,
    FormatError,
    NotFoundError,
    StorageUnavailableError,
    WardenError,
)
from trust.timeutil import format_time

__all__ = [
    "DEFAULT_ALIASES",
    "DEFAULT_CACHE_DIR",
    "MlflowRegistry",
    "MlflowRegistryConfig",
    "TAG_CODE_COMMIT",
    "TAG_CODE_REPOSITORY",
    "TAG_DATA_DVC",
    "TAG_DATA_HASH",
    "TAG_DATA_URI",
    "TAG_DVC_DATA_HASH",
    "TAG_INTENDED_USE",
    "TAG_OWNER",
    "TAG_TARGET_STAGE",
    "parse_mlflow_registry",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

DEFAULT_ALIASES: Mapping[str, str] = MappingProxyType(
    {"production": "champion", "staging": "challenger"})
"""Stage → MLflow alias when the configuration names none."""
DEFAULT_CACHE_DIR = "mlflow-cache"
"""Under the node's ``state_dir``, when the configuration names no ``cache_dir``."""

TAG_TARGET_STAGE = "warden.target_stage"
TAG_OWNER = "owner"
TAG_INTENDED_USE = "intended_use"
TAG_DATA_URI = "data_uri"
TAG_DATA_HASH = "data_hash"
TAG_DVC_DATA_HASH = "dvc_data_hash"
TAG_DATA_DVC = "data_dvc"
TAG_CODE_COMMIT = "mlflow.source.git.commit"
TAG_CODE_REPOSITORY = "mlflow.source.git.repoURL"
_TAG_USER = "mlflow.user"

ARTEFACTS_DIR = "artifacts"
DOWNLOAD_FILE = "download.json"
MANIFEST_NAME = "manifest.json"
_DOWNLOAD_SCHEMA = "warden.mlflow-download/v1"
_READY = "READY"
_MLMODEL = "MLmodel"

# Schemes MLflow's tracking/registry stores take; a bare path would make MLflow create a
# file store (./mlruns) wherever the agent runs.
_SCHEMES = frozenset({"sqlite", "http", "https", "postgresql", "mysql", "mssql", "file",
                      "databricks", "databricks-uc"})
_STAGE = re.compile(r"[a-z][a-z0-9_-]{0,63}")  # as agent.config's model stages
_ALIAS = re.compile(r"[A-Za-z0-9_-]{1,255}")
_VERSION_ALIAS = re.compile(r"[vV]\d+")  # MLflow reserves these (and "latest")
_SHA256 = re.compile(r"(?:sha256:)?([0-9a-fA-F]{64})")
_MD5 = re.compile(r"(?:md5:)?[0-9a-fA-F]{32}(?:\.dir)?")
_MAX_REASON = 300

_DEFAULT_TIMEOUT = 5
_DEFAULT_RETRIES = 1


# -- configuration ---------------------------------------------------------------------------


def _shown(uri: str) -> str:
    """``uri`` with any password replaced by ``***`` (URIs are named in errors and logs)."""
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError:
        return uri
    if parts.password is None:
        return uri
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _check_uri(uri: object, *, what: str) -> str:
    if not isinstance(uri, str) or not uri.strip():
        raise ConfigError(f"{what} must be a non-empty URI, got {uri!r}")
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else ""
    if scheme not in _SCHEMES:
        raise ConfigError(
            f"{what} {_shown(uri)!r} is not an MLflow store URI",
            hint="e.g. http://mlflow.internal:5000 or sqlite:////var/lib/mlflow/mlflow.db "
                 f"(schemes: {', '.join(sorted(_SCHEMES))})")
    if scheme == "sqlite" and _sqlite_path(uri) is None:
        raise ConfigError(f"{what} {uri!r} names no database file",
                          hint="sqlite:////absolute/path/mlflow.db")
    return uri


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative: to the working directory, as
    SQLAlchemy reads it); ``None`` if it names none (``:memory:``, empty)."""
    if not uri.lower().startswith("sqlite:///"):
        return None
    rest = uri[len("sqlite:///"):].split("?", 1)[0]
    if not rest or rest == ":memory:":
        return None
    return Path(urllib.parse.unquote(rest))


def _check_aliases(aliases: object, *, what: str) -> dict[str, str]:
    if not isinstance(aliases, Mapping) or not aliases:
        raise ConfigError(f"{what} must map each stage to an MLflow alias, got {aliases!r}",
                          hint="e.g. {production: champion, staging: challenger}")
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for stage, alias in aliases.items():
        if not isinstance(stage, str) or not _STAGE.fullmatch(stage):
            raise ConfigError(f"{what}: stage {stage!r} must match [a-z][a-z0-9_-]{{0,63}}")
        if (not isinstance(alias, str) or not _ALIAS.fullmatch(alias)
                or alias.lower() == "latest" or _VERSION_ALIAS.fullmatch(alias)):
            raise ConfigError(
                f"{what}.{stage}: {alias!r} is not an MLflow alias",
                hint="1-255 letters, digits, '_' or '-'; 'latest' and 'v<number>' are "
                     "reserved by MLflow")
        if alias in seen:
            raise ConfigError(f"{what}: stages {seen[alias]!r} and {stage!r} both use alias "
                              f"{alias!r}", hint="each stage needs its own alias")
        seen[alias] = stage
        out[stage] = alias
    return out


def _check_models(models: object, *, what: str) -> tuple[str, ...]:
    if isinstance(models, str) or not isinstance(models, Sequence) or not models:
        raise ConfigError(f"{what} must be a non-empty list of registered model names, "
                          f"got {models!r}")
    out: list[str] = []
    for item in models:
        try:
            out.append(check_name(item, what=f"{what}: model name"))
        except FormatError as exc:
            raise ConfigError(exc.message, hint=exc.hint) from None
    if len(set(out)) != len(out):
        raise ConfigError(f"{what} lists a model twice: {out!r}")
    return tuple(out)


def _check_int(value: object, *, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{what} must be a whole number from {low} to {high}, got {value!r}")
    return value


_CONFIG_KEYS = frozenset({"tracking_uri", "registry_uri", "aliases", "models", "cache_dir",
                          "default_stage", "request_timeout", "max_retries"})


@dataclass(frozen=True)
class MlflowRegistryConfig:
    """The ``mlflow`` section of ``agent.yaml``, checked (see :func:`parse_mlflow_registry`)."""

    tracking_uri: str
    registry_uri: str | None = None
    aliases: Mapping[str, str] = field(default_factory=lambda: DEFAULT_ALIASES)
    models: tuple[str, ...] | None = None
    cache_dir: Path | None = None
    default_stage: str | None = "staging"
    request_timeout: int = _DEFAULT_TIMEOUT
    max_retries: int = _DEFAULT_RETRIES

    def registry(self, *, state_dir: Path) -> MlflowRegistry:
        """The registry this section describes; the cache defaults to
        ``state_dir/mlflow-cache``."""
        return MlflowRegistry(
            self.tracking_uri, registry_uri=self.registry_uri, aliases=self.aliases,
            cache_dir=self.cache_dir or state_dir / DEFAULT_CACHE_DIR, models=self.models,
            default_stage=self.default_stage, request_timeout=self.request_timeout,
            max_retries=self.max_retries)


def _resolve_sqlite(uri: str, base: Path) -> str:
    path = _sqlite_path(uri)
    if path is None or path.is_absolute():
        return uri
    query = uri.split("?", 1)[1] if "?" in uri else None
    resolved = f"sqlite:///{resolve_path(path, base)}"
    return resolved if query is None else f"{resolved}?{query}"


def parse_mlflow_registry(value: Any, *, at: str, where: str, base: Path
                          ) -> MlflowRegistryConfig:
    """The ``mlflow`` section of ``agent.yaml`` (a mapping); ConfigError naming ``where``
    and ``at.<key>`` for an unknown key or a bad value.

    Keys:

    * ``tracking_uri`` (string, required) — the MLflow tracking store:
      ``http(s)://host:port`` for a server, ``sqlite:///file.db`` for a local store (a
      relative file is taken from the directory of ``agent.yaml``; the file must exist: the
      agent never creates a store), ``postgresql://…`` for MLflow's own database;
    * ``registry_uri`` (string, default: ``tracking_uri``) — the model registry store, when
      it is another one;
    * ``aliases`` (mapping stage → alias, default ``{production: champion, staging:
      challenger}``) — the MLflow alias that *is* each stage; it replaces the default
      whole, so every stage a model may be promoted to (its ``stages``) needs one; aliases
      are 1-255 letters, digits, ``_``/``-`` (``latest`` and ``v<n>`` are MLflow's);
    * ``models`` (list of names, default: every registered model) — the registered models
      this node sees;
    * ``cache_dir`` (path, default ``<state_dir>/mlflow-cache``) — where versions' artefacts
      are downloaded, once each;
    * ``default_stage`` (stage or ``null``, default ``staging``) — the target stage of a
      version without a ``warden.target_stage`` tag; ``null`` makes the tag required;
    * ``request_timeout`` (whole seconds, 1-600, default 5) and ``max_retries`` (0-10,
      default 1) — per HTTP request to an MLflow server, so that a server that is down is
      noticed in seconds and the daemon moves on (it retries on its next pass).
    """
    value = check_section(value, at=at, where=where, known=_CONFIG_KEYS,
                          shape="at least tracking_uri", what=at)
    if value.get("tracking_uri") is None:
        raise ConfigError(f"{where}: missing key {at}.tracking_uri",
                          hint="e.g. http://mlflow.internal:5000 or sqlite:///mlflow.db")

    def uri(key: str) -> str:
        text = coerce_value(f"{at}.{key}", str, value[key], where=where)
        return _check_uri(_resolve_sqlite(text, base), what=f"{where}: {at}.{key}")

    tracking = uri("tracking_uri")
    registry = uri("registry_uri") if value.get("registry_uri") is not None else None
    aliases: Mapping[str, str] = DEFAULT_ALIASES
    if value.get("aliases") is not None:
        aliases = _check_aliases(value["aliases"], what=f"{where}: {at}.aliases")
    models = None
    if value.get("models") is not None:
        models = _check_models(value["models"], what=f"{where}: {at}.models")
    cache_dir = None
    if value.get("cache_dir") is not None:
        cache_dir = resolve_path(
            coerce_value(f"{at}.cache_dir", Path, value["cache_dir"], where=where), base)
    default_stage: str | None = "staging"
    if "default_stage" in value:
        default_stage = value["default_stage"]
        if default_stage is not None and (not isinstance(default_stage, str)
                                          or not _STAGE.fullmatch(default_stage)):
            raise ConfigError(f"{where}: {at}.default_stage must be a stage name "
                              f"([a-z][a-z0-9_-]{{0,63}}) or null, got {default_stage!r}")
    timeout = _DEFAULT_TIMEOUT
    if value.get("request_timeout") is not None:
        timeout = _check_int(
            coerce_value(f"{at}.request_timeout", int, value["request_timeout"], where=where),
            what=f"{where}: {at}.request_timeout", low=1, high=600)
    retries = _DEFAULT_RETRIES
    if value.get("max_retries") is not None:
        retries = _check_int(
            coerce_value(f"{at}.max_retries", int, value["max_retries"], where=where),
            what=f"{where}: {at}.max_retries", low=0, high=10)
    return MlflowRegistryConfig(tracking, registry, MappingProxyType(dict(aliases)), models,
                                cache_dir, default_stage, timeout, retries)


# -- talking to MLflow -----------------------------------------------------------------------


def _import_mlflow() -> Any:
    """The ``mlflow`` package, imported on first use with the agent's logging defaults."""
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        import mlflow
        import mlflow.artifacts
    except ImportError as exc:
        raise ConfigError(f"the MLflow registry needs mlflow-skinny ({exc})",
                          hint="pip install 'warden[mlflow]'") from None
    return mlflow


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    text = message if isinstance(message, str) and message else str(exc)
    first = (text.strip().splitlines() or [type(exc).__name__])[0]
    if len(first) > _MAX_REASON:
        first = first[: _MAX_REASON - 1] + "…"
    return f"{type(exc).__name__}: {first}"


def _error_code(exc: BaseException) -> str | None:
    code = getattr(exc, "error_code", None)
    return code if isinstance(code, str) else None


@dataclass(frozen=True)
class _Cached:
    """A version's downloaded artefacts (``download.json``)."""

    source: str
    created: int | None
    artefact: str  # relative to the version's cache directory, e.g. artifacts/model.skops
    sha256: Sha256
    framework: str | None
    features: tuple[str, ...] | None

    def to_json(self) -> bytes:
        return canonical_json({
            "schema": _DOWNLOAD_SCHEMA, "source": self.source, "created": self.created,
            "artefact": self.artefact, "sha256": self.sha256, "framework": self.framework,
            "features": None if self.features is None else list(self.features),
        }) + b"\n"

    @classmethod
    def load(cls, path: Path) -> _Cached | None:
        """The marker at ``path``; ``None`` if absent or not one this module wrote."""
        try:
            doc = loads_object(path.read_bytes(), what=str(path))
        except (OSError, FormatError):
            return None
        features = doc.get("features")
        if doc.get("schema") != _DOWNLOAD_SCHEMA or not all(
                isinstance(doc.get(k), str) for k in ("source", "artefact", "sha256")):
            return None
        return cls(doc["source"], doc.get("created"), doc["artefact"], Sha256(doc["sha256"]),
                   doc.get("framework"), None if features is None else tuple(features))


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (-1, version)


def _as_str(value: Any) -> str | None:
    return None if value is None else str(value)


class MlflowRegistry(Registry):
    """:class:`~agent.registry.Registry` over an MLflow tracking/registry store (see the
    module docstring for the mapping, the cache and the errors).

    Nothing is contacted or created at construction; every call asks MLflow afresh, so a
    version registered while the agent runs is listed by the next :meth:`versions`.
    """

    def __init__(
        self,
        tracking_uri: str,
        *,
        registry_uri: str | None = None,
        aliases: Mapping[str, str] = DEFAULT_ALIASES,
        cache_dir: str | os.PathLike[str],
        models: Sequence[str] | None = None,
        default_stage: str | None = "staging",
        request_timeout: int = _DEFAULT_TIMEOUT,
        max_retries: int = _DEFAULT_RETRIES,
    ) -> None:
        self.tracking_uri = _check_uri(tracking_uri, what="MLflow tracking URI")
        self.registry_uri = _check_uri(registry_uri or tracking_uri, what="MLflow registry URI")
        self.aliases: Mapping[str, str] = MappingProxyType(
            _check_aliases(aliases, what="MLflow aliases"))
        self.cache_dir = Path(cache_dir)
        self.models_filter = None if models is None else _check_models(models,
                                                                      what="MLflow models")
        if default_stage is not None and not _STAGE.fullmatch(str(default_stage)):
            raise ConfigError(f"MLflow default stage {default_stage!r} is not a stage name")
        self.default_stage = default_stage
        self.request_timeout = _check_int(request_timeout, what="MLflow request timeout",
                                          low=1, high=600)
        self.max_retries = _check_int(max_retries, what="MLflow max retries", low=0, high=10)
        self._client: Any = None
        self._where = (_shown(self.tracking_uri) if self.registry_uri == self.tracking_uri
                       else f"{_shown(self.tracking_uri)} (registry {_shown(self.registry_uri)})")

    def __repr__(self) -> str:
        return f"MlflowRegistry({self._where!r})"

    # -- calls ------------------------------------------------------------------------------

    def _check_stores(self) -> None:
        for uri in {self.tracking_uri, self.registry_uri}:
            path = _sqlite_path(uri)
            if path is not None and not path.is_file():
                raise StorageUnavailableError(
                    f"MLflow store {_shown(uri)}: no database file {path}",
                    hint="the agent never creates an MLflow store: check the URI, or wait "
                         "until the trainer's store exists (retried on the next pass)")

    def _environment(self) -> None:
        # MLflow's HTTP client reads these at each request (mlflow.utils.rest_utils).
        wanted = {"MLFLOW_HTTP_REQUEST_TIMEOUT": str(self.request_timeout),
                  "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(self.max_retries),
                  "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
        for key, value in wanted.items():
            if os.environ.get(key) != value:
                os.environ[key] = value

    def _call(self, what: str, fn: Callable[[Any], _T]) -> _T:
        """``fn(client)``, MLflow's failures turned into Warden's (module docstring)."""
        self._check_stores()
        self._environment()
        mlflow = _import_mlflow()
        try:
            if self._client is None:
                self._client = mlflow.MlflowClient(tracking_uri=self.tracking_uri,
                                                   registry_uri=self.registry_uri)
            return fn(self._client)
        except WardenError:
            raise
        except mlflow.exceptions.MlflowException as exc:
            if _error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
                raise NotFoundError(f"MLflow at {self._where}: {what}: "
                                    f"{self._redact(_reason(exc))}") from None
            raise self._unavailable(what, exc) from None
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy, requests, OSError, ...
            # Whatever the store or the network raises, the registry is not usable right
            # now: nothing is decided on it, the daemon retries on its next pass.
            raise self._unavailable(what, exc) from None

    def _redact(self, text: str) -> str:
        """``text`` without the URIs' passwords (MLflow's messages quote the URL whole)."""
        for uri in (self.tracking_uri, self.registry_uri):
            try:
                password = urllib.parse.urlsplit(uri).password
            except ValueError:
                continue
            if password:
                text = text.replace(password, "***")
                text = text.replace(urllib.parse.unquote(password), "***")
        return text

    def _unavailable(self, what: str, exc: BaseException) -> StorageUnavailableError:
        return StorageUnavailableError(
            f"MLflow at {self._where} is unavailable: cannot {what} "
            f"({self._redact(_reason(exc))})",
            hint="the agent keeps governing what it knows and retries on its next pass")

    # -- names ------------------------------------------------------------------------------

    def _model(self, name: str) -> str:
        name = check_name(name, what="model name")
        if self.models_filter is not None and name not in self.models_filter:
            raise NotFoundError(f"MLflow at {self._where}: model {name!r} is not one of the "
                                f"models this node serves ({', '.join(self.models_filter)})")
        return name

    def _version(self, name: str, version: str) -> str:
        version = check_name(version, what="version")
        if not version.isdigit():
            raise NotFoundError(f"MLflow at {self._where}: model {name!r} has no version "
                                f"{version!r} (MLflow versions are whole numbers)")
        return str(int(version))

    def _alias(self, stage: str) -> str:
        stage = check_name(stage, what="stage")
        alias = self.aliases.get(stage)
        if alias is None:
            raise ConfigError(
                f"stage {stage!r} has no MLflow alias (aliases: "
                + ", ".join(f"{s} -> {a}" for s, a in self.aliases.items()) + ")",
                hint="add it under mlflow.aliases in agent.yaml")
        return alias

    def _ready(self, name: str, version: str, *, what: str) -> Any:
        """The MLflow ModelVersion ``version`` of ``name``; NotFoundError unless READY."""
        mv = self._call(f"read model {name!r} version {version}",
                        lambda c: c.get_model_version(name, version))
        if mv.status != _READY:
            raise NotFoundError(f"MLflow at {self._where}: model {name!r} version {version} "
                                f"is not READY (status {mv.status}); {what}")
        return mv

    def _require_model(self, name: str) -> Any:
        return self._call(f"read model {name!r}", lambda c: c.get_registered_model(name))

    # -- Registry ---------------------------------------------------------------------------

    def models(self) -> tuple[str, ...]:
        def search(c: Any) -> list[str]:
            names: list[str] = []
            token = None
            while True:
                page = c.search_registered_models(max_results=100, page_token=token)
                names.extend(rm.name for rm in page)
                token = page.token
                if not token:
                    return names

        out = []
        for name in self._call("list registered models", search):
            if self.models_filter is not None and name not in self.models_filter:
                continue
            try:
                out.append(check_name(name, what="model name"))
            except FormatError:
                _log.debug("MLflow model skipped: not a safe name",
                           extra={"fields": {"model": name}})
        return tuple(sorted(out))

    def versions(self, name: str) -> tuple[str, ...]:
        name = self._model(name)

        def search(c: Any) -> list[Any]:
            found: list[Any] = []
            token = None
            while True:
                page = c.search_model_versions(f"name = '{name}'", max_results=1000,
                                               page_token=token)
                found.extend(page)
                token = page.token
                if not token:
                    return found

        found = self._call(f"list the versions of model {name!r}", search)
        if not found:
            self._require_model(name)  # NotFoundError for no such model; else: none yet
        ready = {str(mv.version) for mv in found if mv.status == _READY}
        return tuple(sorted(ready, key=_version_key))

    def read(self, name: str, version: str) -> ModelVersion:
        name = self._model(name)
        version = self._version(name, version)
        mv = self._ready(name, version, what="it cannot be read")
        run = self._run(mv)
        cached = self._download(name, version, mv)
        vdir = self.cache_dir / name / version
        manifest_path = vdir / MANIFEST_NAME
        doc = self._manifest(name, version, mv, run, cached)
        data = canonical_json(doc) + b"\n"
        try:
            if not manifest_path.is_file() or manifest_path.read_bytes() != data:
                replace_file(manifest_path, data)
        except OSError as exc:
            raise StorageUnavailableError(f"{manifest_path}: cannot write the manifest "
                                          f"({exc.strerror or exc})") from None
        manifest = manifest_from_document(load_manifest(manifest_path), manifest_path,
                                          name, version)
        artefact_path = vdir / manifest.artefact
        actual = Sha256(sha256_file(artefact_path))
        if actual != cached.sha256:
            raise DigestMismatchError(
                f"{artefact_path}: SHA-256 is {actual}, but it was {cached.sha256} when "
                f"downloaded from {cached.source}",
                hint=f"the cached copy changed; remove {vdir} to download it again")
        return ModelVersion(manifest, vdir / ARTEFACTS_DIR, manifest_path, artefact_path,
                            actual)

    def current(self, name: str, stage: str) -> str | None:
        name = self._model(name)
        alias = self._alias(stage)
        mlflow = _import_mlflow()

        def get(c: Any) -> Any:
            try:
                return c.get_model_version_by_alias(name, alias)
            except mlflow.exceptions.MlflowException as exc:
                # A missing alias is INVALID_PARAMETER_VALUE (sqlite), RESOURCE_DOES_NOT_EXIST
                # elsewhere; a missing model is the latter too: told apart below.
                if _error_code(exc) in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
                    return None
                raise

        mv = self._call(f"read alias {alias!r} of model {name!r}", get)
        if mv is None:
            self._require_model(name)
            return None
        if mv.status != _READY:
            raise NotFoundError(f"MLflow at {self._where}: alias {alias!r} (stage {stage!r}) "
                                f"of model {name!r} names version {mv.version}, which is not "
                                f"READY (status {mv.status})")
        return str(mv.version)

    def stages(self, name: str) -> dict[str, str]:
        name = self._model(name)
        set_aliases = dict(self._require_model(name).aliases or {})
        out: dict[str, str] = {}
        for stage, alias in self.aliases.items():
            if alias in set_aliases:
                version = self.current(name, stage)
                if version is not None:
                    out[stage] = version
        return out

    def set_stage(self, name: str, stage: str, version: str) -> None:
        name = self._model(name)
        alias = self._alias(stage)
        version = self._version(name, version)
        self._ready(name, version, what=f"stage {stage!r} not changed")
        self._call(f"set alias {alias!r} of model {name!r} to version {version}",
                   lambda c: c.set_registered_model_alias(name, alias, version))

    def annotate(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        name = self._model(name)
        version = self._version(name, version)
        checked = check_annotations(tags, what=f"model {name!r} version {version}")
        self._ready(name, version, what="nothing annotated")

        def write(c: Any) -> None:
            for key in sorted(checked):
                c.set_model_version_tag(name, version, key, checked[key])

        self._call(f"tag model {name!r} version {version}", write)

    def annotations(self, name: str, version: str) -> dict[str, str]:
        name = self._model(name)
        version = self._version(name, version)
        mv = self._ready(name, version, what="no annotations")
        return {str(k): str(v) for k, v in (mv.tags or {}).items()}

    # -- reading a version -----------------------------------------------------------------

    def _run(self, mv: Any) -> Any:
        """The version's run, or ``None`` when it has none (registered from a path, or the
        run was deleted): lineage then comes from the version's tags alone."""
        if not mv.run_id:
            return None
        try:
            return self._call(f"read run {mv.run_id}", lambda c: c.get_run(mv.run_id))
        except NotFoundError:
            return None

    def _download(self, name: str, version: str, mv: Any) -> _Cached:
        parent = self.cache_dir / name
        final = parent / version
        created = mv.creation_timestamp if isinstance(mv.creation_timestamp, int) else None
        cached = _Cached.load(final / DOWNLOAD_FILE)
        if cached is not None and cached.source == mv.source and cached.created == created:
            return cached
        uri = self._call(f"locate the artefacts of model {name!r} version {version}",
                         lambda c: c.get_model_version_download_uri(name, version))
        try:
            parent.mkdir(parents=True, exist_ok=True)
            for stale in parent.glob(f".{version}.*.tmp"):  # a crash mid-download
                shutil.rmtree(stale, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", suffix=".tmp", dir=parent))
        except OSError as exc:
            raise StorageUnavailableError(f"{parent}: cannot create the download directory "
                                          f"({exc.strerror or exc})") from None
        try:
            mlflow = _import_mlflow()
            try:
                got = Path(self._call(
                    f"download the artefacts of model {name!r} version {version} from "
                    f"{_shown(uri)}",
                    lambda c: mlflow.artifacts.download_artifacts(
                        artifact_uri=uri, dst_path=str(tmp / ".download"),
                        tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)))
            except NotFoundError as exc:  # the source is gone: the version's fault
                raise FormatError(f"MLflow model {name!r} version {version} has no artefact: "
                                  f"{exc.message}") from None
            # MLflow puts a directory's files under its last path component, and a single
            # file as itself: either way they end up in <tmp>/artifacts.
            if got.is_dir():
                os.rename(got, tmp / ARTEFACTS_DIR)
            else:
                (tmp / ARTEFACTS_DIR).mkdir()
                if got.is_file():
                    os.rename(got, tmp / ARTEFACTS_DIR / got.name)
            shutil.rmtree(tmp / ".download", ignore_errors=True)
            rel, framework, features = _find_artefact(tmp / ARTEFACTS_DIR, name, version, uri)
            result = _Cached(mv.source, created, f"{ARTEFACTS_DIR}/{rel}",
                             Sha256(sha256_file(tmp / ARTEFACTS_DIR / rel)), framework,
                             features)
            replace_file(tmp / DOWNLOAD_FILE, result.to_json())
            if final.exists():  # an older download of another version with this number
                old = Path(tempfile.mkdtemp(prefix=f".{version}.", suffix=".tmp", dir=parent))
                os.replace(final, old / version)
                shutil.rmtree(old, ignore_errors=True)
            os.rename(tmp, final)
            fsync_dir(parent)
        except OSError as exc:
            raise StorageUnavailableError(f"{final}: cannot store the downloaded artefacts "
                                          f"({exc.strerror or exc})") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone already when renamed into place
        _log.debug("MLflow version downloaded", extra={"fields": {
            "model": name, "version": version, "artefact": result.artefact}})
        return result

    def _manifest(self, name: str, version: str, mv: Any, run: Any,
                  cached: _Cached) -> dict[str, Any]:
        """The lineage manifest of the version (module docstring: the mapping)."""
        vtags = {str(k): str(v) for k, v in (mv.tags or {}).items()}
        rtags = {} if run is None else {str(k): str(v) for k, v in run.data.tags.items()}
        who = f"MLflow model {name!r} version {version}"

        def tag(key: str) -> str | None:
            value = (vtags.get(key) or rtags.get(key) or "").strip()
            return value or None

        stage = tag(TAG_TARGET_STAGE) or self.default_stage
        if stage is None:
            raise FormatError(f"{who}: no tag {TAG_TARGET_STAGE!r}",
                              hint="tag the version with the stage to promote it to, e.g. "
                                   f"{TAG_TARGET_STAGE}=staging")
        check_name(stage, what=f"{who}: tag {TAG_TARGET_STAGE!r}")
        model: dict[str, Any] = {"name": name, "version": version, "target_stage": stage}
        owner = tag(TAG_OWNER) or rtags.get(_TAG_USER) or _as_str(mv.user_id)
        intended = tag(TAG_INTENDED_USE) or (mv.description or "").strip() or None
        for key, value in (("owner", owner), ("framework", cached.framework),
                           ("intended_use", intended)):
            if value:
                model[key] = value
        if cached.features:
            model["features"] = list(cached.features)
        doc: dict[str, Any] = {
            "model": model,
            "artifact": {"path": cached.artefact, "sha256": cached.sha256},
        }
        code = {k: v for k, v in (("commit", tag(TAG_CODE_COMMIT)),
                                  ("repository", tag(TAG_CODE_REPOSITORY))) if v}
        if code:
            doc["code"] = code
        data: dict[str, Any] = {}
        if (uri := tag(TAG_DATA_URI)) is not None:
            data["source"] = uri
        if (sha := _data_sha256(tag(TAG_DATA_HASH), tag(TAG_DVC_DATA_HASH), who)) is not None:
            data["sha256"] = sha
        if (pointer := tag(TAG_DATA_DVC)) is not None:
            data["dvc"] = _dvc_pointer(pointer, who)
        if data:
            doc["training_data"] = data
        if run is not None:
            doc["parameters"] = {str(k): str(v) for k, v in run.data.params.items()}
        millis = run.info.start_time if run is not None else mv.creation_timestamp
        if isinstance(millis, int):
            doc["trained_at"] = format_time(dt.datetime.fromtimestamp(millis / 1000, dt.UTC))
        return doc


def _data_sha256(data_hash: str | None, dvc_hash: str | None, who: str) -> str | None:
    """The training data's SHA-256 from the hash tags (module docstring), or ``None``."""
    for key, value in ((TAG_DATA_HASH, data_hash), (TAG_DVC_DATA_HASH, dvc_hash)):
        if value is None:
            continue
        if m := _SHA256.fullmatch(value):
            return m.group(1).lower()
        if _MD5.fullmatch(value):
            continue  # DVC's MD5: a digest, but not the SHA-256 the manifest declares
        raise FormatError(f"{who}: tag {key!r} is neither a SHA-256 nor a DVC MD5: {value!r}",
                          hint="64 hex digits (sha256: prefix allowed)")
    return None


def _dvc_pointer(value: str, who: str) -> str:
    """The ``data_dvc`` tag as the manifest's ``training_data.dvc`` (relative to the
    manifest's directory, so an artefact's path is under ``artifacts/``)."""
    path = PurePosixPath(value)
    if not (path.name == "dvc.lock" or (path.name.endswith(".dvc") and path.name != ".dvc")):
        raise FormatError(f"{who}: tag {TAG_DATA_DVC!r} must name a .dvc file or a dvc.lock, "
                          f"got {value!r}")
    if path.is_absolute():
        return value
    if ".." in path.parts or "\\" in value:
        raise FormatError(f"{who}: tag {TAG_DATA_DVC!r} {value!r} leads outside the version's "
                          "artefacts", hint="name a .dvc file or dvc.lock logged with the "
                          "model, or an absolute path on the node")
    return f"{ARTEFACTS_DIR}/{path.as_posix()}"


def _signature_inputs(signature: Any, where: str) -> tuple[str, ...] | None:
    """The column names of an ``MLmodel`` signature's inputs; ``None`` when it has none
    (no signature, or tensor inputs)."""
    if not isinstance(signature, Mapping) or not signature.get("inputs"):
        return None
    from trust.canonical import loads_strict

    inputs = loads_strict(signature["inputs"], what=f"{where}: signature.inputs")
    if not isinstance(inputs, list):
        raise FormatError(f"{where}: signature.inputs is not a list")
    raw = [spec.get("name") if isinstance(spec, Mapping) else None for spec in inputs]
    names = [n for n in raw if isinstance(n, str) and n]
    if not names or len(names) != len(raw):
        return None
    if len(set(names)) != len(names):
        raise FormatError(f"{where}: signature.inputs lists a column twice: {names!r}")
    return tuple(names)


def _find_artefact(d: Path, name: str, version: str, uri: str
                   ) -> tuple[str, str | None, tuple[str, ...] | None]:
    """``(artefact path relative to d, framework, feature names)`` for downloaded files."""
    who = f"MLflow model {name!r} version {version}"
    files = sorted(p for p in d.rglob("*") if p.is_file()) if d.is_dir() else []
    if not files:
        raise FormatError(f"{who} has no artefact: nothing to download at {_shown(uri)}",
                          hint="register a version whose source holds a logged model "
                               "(mlflow.sklearn.log_model or mlflow.onnx.log_model)")
    mlmodel = d / _MLMODEL
    framework: str | None = None
    features: tuple[str, ...] | None = None
    if mlmodel.is_file():
        where = f"{who}: {_MLMODEL}"
        try:
            doc = strict_yaml.load(mlmodel.read_bytes(), source=where)
        except OSError as exc:
            raise FormatError(f"{where}: cannot read ({exc.strerror or exc})") from None
        flavors = doc.get("flavors") if isinstance(doc, Mapping) else None
        if not isinstance(flavors, Mapping):
            raise FormatError(f"{where}: no flavors")
        if isinstance(flavors.get("sklearn"), Mapping):
            framework, rel = "sklearn", flavors["sklearn"].get("pickled_model")
        elif isinstance(flavors.get("onnx"), Mapping):
            framework, rel = "onnx", flavors["onnx"].get("data")
        else:
            raise FormatError(
                f"{where}: flavors {', '.join(sorted(map(str, flavors)))}: none that Warden "
                "loads", hint="log the model with mlflow.sklearn (serialization_format="
                "'skops') or mlflow.onnx")
        if not isinstance(rel, str) or not rel:
            raise FormatError(f"{where}: the {framework} flavor names no model file")
        features = _signature_inputs(doc.get("signature"), where)
    else:
        found = [p for p in files if p.suffix.lower() in MODEL_SUFFIXES]
        if len(found) != 1:
            raise FormatError(
                f"{who}: no {_MLMODEL} and {len(found)} model files at {_shown(uri)}"
                + (f" ({', '.join(p.name for p in found)})" if found else ""),
                hint="log the model with an MLflow flavor, or register a directory holding "
                     "exactly one .skops, .joblib/.pkl or .onnx file")
        rel = found[0].relative_to(d).as_posix()
    path = d / rel
    inside = path.resolve().is_relative_to(d.resolve())
    if not inside or not path.is_file():
        raise FormatError(f"{who}: model file {rel!r} is missing from the artefacts at "
                          f"{_shown(uri)}")
    if MODEL_SUFFIXES.get(path.suffix.lower()) is None:
        raise FormatError(f"{who}: model file {rel!r} has an unknown kind",
                          hint="expected " + ", ".join(MODEL_SUFFIXES))
    return rel, framework, features
