"""``warden hub init`` checks everything before it makes anything (issue 8, item 20).

A hub whose trust root does not hold its key signs checkpoints nobody can verify; a garbage
root or a database URL the hub cannot open only shows up at ``serve``. Each is refused before
the first file is written, and a failure part-way through writing removes exactly what that
run made — never a file or directory that was there before.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub.config import load_config
from hub.tls import init_hub
from trust import keys
from trust.errors import ConfigError, FormatError, SignatureError, WardenError

from .harness import Officers


@pytest.fixture
def officers(tmp_path: Path) -> Officers:
    """Officers with their root in ``tmp/root.json`` and the hub key in ``tmp/hub.key``."""
    o = Officers()
    (tmp_path / "root.json").write_bytes(o.root_envelope())
    keys.save_private(o.hub, tmp_path / "hub.key")
    return o


def test_root_without_this_hubs_key_is_refused(tmp_path: Path, officers: Officers) -> None:
    keys.save_private(keys.generate(), tmp_path / "stranger.key")
    with pytest.raises(ConfigError) as exc:
        init_hub(tmp_path / "hub", hub_key=tmp_path / "stranger.key",
                 trust_root=tmp_path / "root.json")
    assert str(tmp_path / "root.json") in exc.value.message
    assert "'hub' role does not hold this hub's key" in exc.value.message
    assert not (tmp_path / "hub").exists()


def test_root_with_a_freshly_generated_key_is_refused(tmp_path: Path, officers: Officers) -> None:
    # A key made by this very init cannot be in a root signed before it.
    with pytest.raises(ConfigError, match="does not hold this hub's key") as exc:
        init_hub(tmp_path / "hub", trust_root=tmp_path / "root.json")
    assert exc.value.hint is not None and "--hub-key" in exc.value.hint
    assert not (tmp_path / "hub").exists()


def test_garbage_root_is_refused(tmp_path: Path, officers: Officers) -> None:
    (tmp_path / "garbage.json").write_text('{"not": "a root"}')
    with pytest.raises(FormatError, match="garbage.json"):
        init_hub(tmp_path / "hub", hub_key=tmp_path / "hub.key",
                 trust_root=tmp_path / "garbage.json")
    assert not (tmp_path / "hub").exists()


def test_root_that_does_not_verify_is_refused(tmp_path: Path, officers: Officers) -> None:
    # A root signed by a key outside its own root role: well-formed, but not a root.
    from trust import dsse
    from trust.root import ROOT_PAYLOAD_TYPE

    env = dsse.Envelope.from_json((tmp_path / "root.json").read_bytes())
    forged = dsse.sign(ROOT_PAYLOAD_TYPE, env.payload, [keys.generate()]).to_json()
    (tmp_path / "forged.json").write_bytes(forged)
    with pytest.raises(SignatureError, match="forged.json"):
        init_hub(tmp_path / "hub", hub_key=tmp_path / "hub.key",
                 trust_root=tmp_path / "forged.json")
    assert not (tmp_path / "hub").exists()


@pytest.mark.parametrize("url", ["mysql://u@db/warden", "oracle://db", "sqlite+pysqlcipher:///x"])
def test_unsupported_database_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="only sqlite and postgresql"):
        init_hub(tmp_path / "hub", database=url)
    assert not (tmp_path / "hub").exists()


def test_host_that_is_no_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--host 'my host'"):
        init_hub(tmp_path / "hub", hosts=["hub.example.com", "my host"])
    assert not (tmp_path / "hub").exists()


def test_missing_hub_key_leaves_no_directories(tmp_path: Path) -> None:
    with pytest.raises(WardenError, match="nope.key"):
        init_hub(tmp_path / "a" / "b" / "hub", hub_key=tmp_path / "nope.key")
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_removes_only_what_this_run_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The directory and a tokens/ folder with a file of the operator's existed before.
    d = tmp_path / "hub"
    (d / "tokens").mkdir(parents=True)
    (d / "tokens" / "README").write_text("mine\n")
    real_open = os.open

    def full_disk(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        if str(path).endswith("compliance.token"):
            raise OSError(28, "No space left on device", str(path))
        return real_open(path, flags, mode)

    monkeypatch.setattr("hub.tls.os.open", full_disk)
    with pytest.raises(ConfigError, match="compliance.token: cannot write .No space left"):
        init_hub(d)
    assert sorted(p.relative_to(d).as_posix() for p in d.rglob("*")) == [
        "tokens", "tokens/README"]


def test_init_with_the_root_holding_its_key_serves_that_root(
    tmp_path: Path, officers: Officers
) -> None:
    result = init_hub(tmp_path / "hub", hub_key=tmp_path / "hub.key",
                      trust_root=tmp_path / "root.json", database="postgresql://u@db/w")
    assert result.hub_key_id == officers.hub.key_id
    assert (tmp_path / "hub" / "root.json").read_bytes() == (tmp_path / "root.json").read_bytes()
    assert load_config(result.config, env={}).database == "postgresql://u@db/w"
    assert keys.load_private(tmp_path / "hub" / "hub.key").key_id == officers.hub.key_id
