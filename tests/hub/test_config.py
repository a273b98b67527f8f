"""HubConfig: file < environment < flags; unknown keys are errors naming key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import HubConfig, Role, load_config
from trust.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "hub.yaml"
    p.write_text(text)
    return p


def test_file_env_flags_precedence(tmp_path: Path) -> None:
    p = _write(tmp_path, "listen: 127.0.0.1:1000\nmax_batch: 10\ninsecure: true\n")
    cfg = load_config(p, env={"WARDEN_HUB_MAX_BATCH": "20"}, overrides={"listen": None})
    assert cfg.listen == "127.0.0.1:1000" and cfg.max_batch == 20
    cfg = load_config(p, env={"WARDEN_HUB_LISTEN": "127.0.0.1:2000"},
                      overrides={"listen": "127.0.0.1:3000"})
    assert cfg.listen == "127.0.0.1:3000"


def test_verify_workers_default_to_one_per_core(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    p = _write(tmp_path, "insecure: true\n")
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert load_config(p, env={}).verify_processes == 8
    monkeypatch.setattr("os.cpu_count", lambda: 1)  # one core: no point in a pool
    assert load_config(p, env={}).verify_processes == 0
    cfg = load_config(p, env={"WARDEN_HUB_VERIFY_WORKERS": "3"})
    assert cfg.verify_workers == cfg.verify_processes == 3
    assert load_config(p, env={}, overrides={"verify_workers": 0}).verify_processes == 0


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    p = _write(tmp_path, "insecure: true\nhub_key: keys/hub.key\ndatabase: sqlite:///l.db\n")
    cfg = load_config(p, env={})
    assert cfg.hub_key == tmp_path.resolve() / "keys" / "hub.key"
    assert cfg.database == f"sqlite:///{tmp_path.resolve()}/l.db"
    assert cfg.trust_root == tmp_path.resolve() / "root.json"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("insecure: true\nlisten_addr: x\n", "unknown key 'listen_addr'"),
        ("insecure: true\ntls: {cert: a, key: b, ca: c, extra: d}\n", "tls.extra"),
        ("insecure: true\noperators: [{name: a, role: root, token_sha256: " + "0" * 64 + "}]\n",
         "role 'root'"),
        ("insecure: true\noperators: [{name: a, role: admin, token_sha256: abc}]\n",
         "64 hex"),
        ("insecure: true\nmax_batch: many\n", "max_batch must be a number"),
        ("insecure: true\nmax_batch: 0\n", "max_batch must be ≥ 1"),
        ("- a list\n", "top level must be a mapping"),
        ("listen: 127.0.0.1:1\n", "no 'tls' section"),
        ("insecure: true\nlisten: 0.0.0.0:7443\n", "only allowed on a loopback"),
        ("insecure: true\nlog_level: loud\n", "log_level"),
        ("insecure: true\nverify_workers: -1\n", "verify_workers must be ≥ 0"),
        ("insecure: [\n", "not valid YAML"),
        ("insecure: true\nclock_skew_s: 99999999999\n", "clock_skew_s must be between 1 and 86400"),
        ("insecure: true\ndrain_s: .nan\n", "drain_s must be a finite number"),
        ("insecure: true\ndatabase: mysql://u@db/warden\n", "only sqlite and postgresql"),
        # Infinite or fractional values for whole-number keys (an OverflowError traceback
        # and a silent truncation before).
        ("insecure: true\nclock_skew_s: .inf\n", "clock_skew_s must be a finite number"),
        ("insecure: true\nmax_record_bytes: -.inf\n", "max_record_bytes must be a finite"),
        ("insecure: true\nverify_workers: 2.5\n", "verify_workers must be a whole number"),
        ("insecure: true\nmax_watch_streams: '2.5'\n", "max_watch_streams must be a whole"),
    ],
)
def test_bad_config_names_key_and_file(tmp_path: Path, text: str, needle: str) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(p, env={})
    assert needle in info.value.message
    if "loopback" not in needle and "tls" not in needle:
        assert str(p) in info.value.message


def test_unknown_environment_variable_is_an_error(tmp_path: Path) -> None:
    p = _write(tmp_path, "insecure: true\n")
    with pytest.raises(ConfigError, match="WARDEN_HUB_LISTN"):
        load_config(p, env={"WARDEN_HUB_LISTN": "127.0.0.1:1"})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml", env={})


def test_config_is_frozen(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "insecure: true\n"), env={})
    with pytest.raises(AttributeError):
        cfg.listen = "x"  # type: ignore[misc]
    assert isinstance(cfg, HubConfig)


def test_init_writes_a_loadable_config(tmp_path: Path) -> None:
    from hub.tls import hash_token, init_hub

    result = init_hub(tmp_path / "hub", origin="test.example/hub")
    cfg = load_config(result.config, env={})
    assert cfg.tls is not None and cfg.tls.cert.exists() and cfg.tls.ca.exists()
    assert {op.role for op in cfg.operators} == set(Role)
    for role, token in result.tokens.items():
        assert any(op.role is role and op.token_sha256 == hash_token(token)
                   for op in cfg.operators)
        assert result.token_files[role].stat().st_mode & 0o077 == 0
        assert token not in result.config.read_text()
    assert (tmp_path / "hub" / "hub.key").stat().st_mode & 0o077 == 0
    assert (tmp_path / "hub" / "tls" / "server.key").stat().st_mode & 0o077 == 0
    with pytest.raises(ConfigError, match="already exists"):
        init_hub(tmp_path / "hub")


@pytest.mark.parametrize("origin", ["my hub", "a+b"])
def test_origin_that_cannot_name_a_checkpoint_key_is_refused(tmp_path: Path, origin: str) -> None:
    p = _write(tmp_path, f"insecure: true\norigin: {origin!r}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={})
    assert str(p) in exc.value.message and repr(origin) in exc.value.message
    with pytest.raises(ConfigError, match="origin"):
        load_config(_write(tmp_path, "insecure: true\n"), env={"WARDEN_HUB_ORIGIN": origin})


def test_init_refuses_a_bad_origin_before_writing(tmp_path: Path) -> None:
    from hub.tls import init_hub

    with pytest.raises(ConfigError, match="'my hub'"):
        init_hub(tmp_path / "hub", origin="my hub")
    assert not (tmp_path / "hub").exists()


def test_duplicate_key_in_hub_yaml_is_refused(tmp_path: Path) -> None:
    # Last-one-wins would let one file say two origins to two readers (issue 8, item 5).
    p = _write(tmp_path, "insecure: true\norigin: a.example/hub\norigin: b.example/hub\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={})
    assert str(p) in exc.value.message
    assert "duplicate key 'origin'" in exc.value.message and "line 3" in exc.value.message


def test_non_utf8_hub_yaml_names_file_and_byte_offset(tmp_path: Path) -> None:
    p = tmp_path / "hub.yaml"
    p.write_bytes(b"insecure: true\n# caf\xe9\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={})
    assert exc.value.message == f"{p}: not UTF-8 text (byte offset 20: b'\\xe9')"


@pytest.mark.parametrize("url", ["sqlite:///l.db", "l.db", "postgresql://u@h/d",
                                 "postgresql+psycopg://u@h/d", "postgres://u@h/d"])
def test_supported_database_urls_are_accepted(tmp_path: Path, url: str) -> None:
    p = _write(tmp_path, "insecure: true\n")
    assert load_config(p, env={}, overrides={"database": url}).database.endswith(url.split("/")[-1])


def test_clock_skew_of_one_day_is_the_largest_accepted(tmp_path: Path) -> None:
    p = _write(tmp_path, "insecure: true\n")
    assert load_config(p, env={"WARDEN_HUB_CLOCK_SKEW_S": "86400"}).clock_skew_s == 86400
    with pytest.raises(ConfigError, match="clock_skew_s must be between 1 and 86400"):
        load_config(p, env={"WARDEN_HUB_CLOCK_SKEW_S": "86401"})
