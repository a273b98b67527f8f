"""What the hub's and the agent's config loaders share: reading the file, typing its values.

``hub.config`` and ``agent.config`` each build one frozen config object from a YAML file <
environment < flags; ``agent`` may not import ``hub``, so the pieces both need live here, once:

* :func:`read_config_text` — the file's text, which must be UTF-8 (a bad byte is named by its
  offset), with a :class:`~trust.errors.ConfigError` naming the file otherwise;
* :func:`coerce_value` — one scalar from YAML, the environment (always a string) or a flag,
  typed as ``bool``, ``int`` (a whole number: ``2.5`` is refused, never truncated), ``float``
  (finite) or a non-empty string/``Path``;
* :func:`resolve_path` — ``~`` expanded, relative paths taken from the config file's directory;
* :func:`read_config_mapping` — the file parsed as one YAML mapping (strict: no repeated key);
* :func:`environment_settings` — the ``PREFIX_*`` variables, an unknown one refused by name
  (a typo there would otherwise be silently ignored).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from trust import strict_yaml
from trust.errors import ConfigError

__all__ = [
    "check_section",
    "coerce_value",
    "environment_settings",
    "read_config_mapping",
    "read_config_text",
    "resolve_path",
]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def check_section(
    value: Any, *, at: str, where: str, known: frozenset[str], required: Sequence[str] = (),
    shape: str, what: str,
) -> Mapping[str, Any]:
    """``value`` if it is a mapping of ``known`` keys holding every ``required`` one (not
    null); otherwise a :class:`ConfigError` naming ``where`` and the key path under ``at``.
    ``shape`` says what the mapping holds ("a mapping with <shape>"), ``what`` names its keys
    in the hint ("known <what> keys: ...")."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: {at} must be a mapping with {shape}")
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {at}.{unknown[0]}",
                          hint=f"known {what} keys: {', '.join(sorted(known))}")
    for key in required:
        if value.get(key) is None:
            raise ConfigError(f"{where}: missing key {at}.{key}")
    return value


def coerce_value(name: str, kind: type, value: Any, *, where: str) -> Any:
    """``value`` as ``kind``; a :class:`ConfigError` naming ``where`` and ``name`` otherwise."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (*_TRUE, *_FALSE):
            return value.lower() in _TRUE
        raise ConfigError(f"{where}: {name} must be true or false, got {value!r}")
    if kind in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: {name} must be a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {name} must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{where}: {name} must be a finite number, got {value!r}")
        if kind is int:
            # int("12") and 12 are fine; 2.5 or "2.5" would silently become 2.
            if isinstance(value, float) or (isinstance(value, str) and not value.strip()
                                            .lstrip("+-").isdigit()):
                raise ConfigError(f"{where}: {name} must be a whole number, got {value!r}")
            return int(value)
        return number
    if not isinstance(value, str | Path) or str(value) == "":
        raise ConfigError(f"{where}: {name} must be a non-empty string, got {value!r}")
    return kind(value)


def resolve_path(path: Path, base: Path | None) -> Path:
    """``path`` with ``~`` expanded; relative to ``base`` (the config file's directory)."""
    path = path.expanduser()
    return path if path.is_absolute() or base is None else base / path


def read_config_text(source: Path, *, init_hint: str) -> str:
    """The config file's text; it must be UTF-8 (the encoding ``warden … init`` writes)."""
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such config file", hint=init_hint) from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read ({exc.strerror})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start:exc.end]
        raise ConfigError(f"{source}: not UTF-8 text (byte offset {exc.start}: {bad!r})",
                          hint="save the file as UTF-8") from None


def read_config_mapping(source: Path, *, init_hint: str) -> Mapping[str, Any]:
    """The config file as a mapping of keys (an empty file is an empty mapping)."""
    text = read_config_text(source, init_hint=init_hint)
    data = strict_yaml.load(text, source=str(source), error=ConfigError)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping of keys")
    return data


def environment_settings(
    environ: Mapping[str, str],
    prefix: str,
    known: Collection[str],
    *,
    file_only: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``{key: value}`` for every ``PREFIX_KEY`` variable; an unknown one is a ConfigError.

    ``file_only`` maps keys that exist but cannot come from the environment to the reason.
    """
    settable = ", ".join(prefix + k.upper() for k in known)
    values: dict[str, str] = {}
    for name, value in environ.items():
        if not name.startswith(prefix):
            continue
        key = name[len(prefix):].lower()
        if key not in known:
            reason = (file_only or {}).get(key, "unknown variable")
            raise ConfigError(f"environment: {name}: {reason}", hint=f"settable: {settable}")
        values[key] = value
    return values
