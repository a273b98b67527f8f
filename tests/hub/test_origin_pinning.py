"""One origin per ledger: neither the store nor the hub signs a checkpoint under a second one.

Regression (issue 8, item 8): a changed ``origin`` on an existing ledger was accepted, the hub
signed new checkpoints under it, and consistency proofs then verified under neither origin.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import load_config
from hub.ledger.store import LedgerStore
from hub.server import start
from hub.state import HubState
from tests.ledger.ledger_helpers import HUB_SEED
from tests.sim import NOW, SimNode
from trust import keys
from trust.errors import ConfigError, LedgerError

from .harness import HubWorld, used_world  # noqa: F401


def test_store_refuses_to_sign_a_checkpoint_under_a_second_origin(tmp_path: Path) -> None:
    hub_key = keys.SigningKey.from_seed(HUB_SEED)
    store = LedgerStore.open(f"sqlite:///{tmp_path / 'l.db'}", hub_key=hub_key)
    try:
        node = SimNode("n1")
        store.register_node("n1", node.key.public, now=NOW)
        first = store.sign_checkpoint("a.example/hub", "a.example/hub", hub_key, now=NOW)
        store.append_records("n1", node.records(2), now=NOW)
        with pytest.raises(LedgerError, match=r"origin 'a.example/hub'; refusing to sign one"
                                              r" under 'b.example/hub'"):
            store.sign_checkpoint("b.example/hub", "b.example/hub", hub_key, now=NOW)
        latest = store.latest_checkpoint()
        assert latest == first and latest is not None and latest.origin == "a.example/hub"
    finally:
        store.close()


def test_hub_refuses_to_start_with_a_changed_origin(
    used_world: HubWorld,  # noqa: F811
) -> None:
    cfg = used_world.init.config  # as an operator would: edit hub.yaml, start the hub
    cfg.write_text(cfg.read_text().replace("test.warden/hub", "renamed.warden/hub"))
    changed = load_config(cfg, env={}, overrides={"listen": "127.0.0.1:0"})
    assert changed.origin == "renamed.warden/hub"
    with pytest.raises(ConfigError) as err:
        start(changed)  # what 'warden hub serve' calls
    msg = err.value.message
    assert msg.startswith(f"{cfg}: origin 'renamed.warden/hub' is not the origin "
                          "'test.warden/hub' of the checkpoints stored in ")
    assert "origin: test.warden/hub" in (err.value.hint or "")
    HubState.open(used_world.config).close()  # the stored origin still starts
