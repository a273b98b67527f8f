"""The agent's policy state (issue 10): the pinned root and its rotation, the last good bundle
on disk, and one signed record for each change or refusal.

Every bad input named by the issue ends in a clear log line and one signed record: a bundle
signed by the wrong keys, an older bundle replayed, a root N+2 offered without N+1, and the
clock moved backwards. Keys come from fixed seeds and every time is fixed, so expiry
boundaries are exact.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.config import AgentConfig
from agent.outbox import Outbox
from agent.policy_state import STATE_FILE, OfferOutcome, PolicyState, trusted_now
from trust import dsse
from trust.canonical import canonical_json, sha256_hex
from trust.errors import StorageUnavailableError
from trust.keys import SigningKey
from trust.policy.bundle import BUNDLE_PAYLOAD_TYPE, BUNDLE_SCHEMA
from trust.record import AuditRecord, EventType, NodeId
from trust.root import Role, RootMetadata
from trust.timeutil import format_time

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NODE = "emea-1"
NODE_KEY = SigningKey.from_seed(b"\x11" * 32)
LOG_NAME = "tests.agent.policy_state"
LOG = logging.getLogger(LOG_NAME)
REGO = 'package warden\n\nimport rego.v1\n\ndecision := {"allow": true, "violations": []}\n'


def _key(n: int) -> SigningKey:
    return SigningKey.from_seed(bytes([n]) * 32)


R1, R2, R3 = _key(1), _key(2), _key(3)  # root role of root v1, v2, v3
OFFICERS = (_key(10), _key(11), _key(12))  # policy role of roots v1 and v2
NEW_OFFICERS = (_key(20), _key(21), _key(22))  # policy role from root v3 on
HUB = _key(30)
STRANGERS = (_key(40), _key(41))


def root_bytes(version: int, root_key: SigningKey, signers: tuple[SigningKey, ...], *,
               officers: tuple[SigningKey, ...] = OFFICERS,
               expires: datetime = NOW + timedelta(days=365)) -> bytes:
    """Root ``version`` with root role ``root_key`` (1-of-1), policy 2-of-3 ``officers``."""
    used = (root_key, *officers, HUB)
    meta = RootMetadata(
        version=version, expires=expires, keys={k.key_id: k.public for k in used},
        roles={"root": Role((root_key.key_id,), 1),
               "policy": Role(tuple(k.key_id for k in officers), 2),
               "hub": Role((HUB.key_id,), 1)})
    return meta.envelope(signers).to_json()


V1 = root_bytes(1, R1, (R1,))
V2 = root_bytes(2, R2, (R1, R2))
V3 = root_bytes(3, R3, (R2, R3), officers=NEW_OFFICERS)


def bundle(version: int, signers: tuple[SigningKey, ...] = OFFICERS[:2], *,
           name: str = "standard", expires: datetime = NOW + timedelta(days=30),
           min_accuracy: float = 0.8) -> bytes:
    """A signed policy bundle envelope (exact bytes)."""
    payload = canonical_json({
        "schema": BUNDLE_SCHEMA,
        "manifest": {"name": name, "version": version, "expires": format_time(expires),
                     "description": "test", "entrypoint": "data.warden.decision",
                     "decision": "document"},
        "data": {"min_accuracy": min_accuracy},
        "files": {"decision.rego": {"sha256": sha256_hex(REGO.encode()), "text": REGO}},
    })
    return dsse.sign(BUNDLE_PAYLOAD_TYPE, payload, signers).to_json()


@pytest.fixture
def config(tmp_path: Path) -> AgentConfig:
    (tmp_path / "root.json").write_bytes(V1)
    return AgentConfig(node_id=NodeId(NODE), hub="127.0.0.1:7443", insecure=True,
                       root=tmp_path / "root.json", state_dir=tmp_path)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    with Outbox.open(tmp_path / "outbox.db", NODE, NODE_KEY) as box:
        yield box


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger=LOG_NAME)
    return caplog


def load(config: AgentConfig, now: datetime = NOW) -> PolicyState:
    return PolicyState.load(config, now=now, log=LOG)


def records(outbox: Outbox) -> list[AuditRecord]:
    """Every record written, verified under the node key."""
    return [AuditRecord.from_envelope(e.envelope, NODE_KEY.public) for e in outbox.entries()]


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == LOG_NAME and r.levelno >= logging.ERROR]


# -- bundles ---------------------------------------------------------------------------------


def test_apply_v1_then_v2_records_first_and_replaces_the_file(
    config: AgentConfig, outbox: Outbox, log: pytest.LogCaptureFixture
) -> None:
    state = load(config)
    assert state.version() is None and state.enforceable(NOW) is None
    b1, b2 = bundle(1), bundle(2)
    assert state.offer_bundle(b1, outbox, now=NOW).outcome is OfferOutcome.APPLIED
    offer = state.offer_bundle(b2, outbox, now=NOW)
    assert offer.outcome is OfferOutcome.APPLIED and offer.version == 2
    assert state.version() == 2 and state.bundle_envelope == b2
    assert config.bundle_path.read_bytes() == b2
    enforced = state.enforceable(NOW)
    assert enforced is not None and enforced.version == 2

    r1, r2 = records(outbox)
    assert [r.event for r in (r1, r2)] == [EventType.POLICY_APPLIED] * 2
    assert r2 == offer.record
    assert (r2.subject.model, r2.subject.version, r2.subject.artifact_sha256) == (
        "policy:standard", "2", sha256_hex(b2))
    assert r2.policy is not None and (r2.policy.name, r2.policy.version) == ("standard", 2)
    assert r2.policy.digest == enforced.digest  # what decision records name
    assert r1.evidence["previous_version"] is None and r2.evidence["previous_version"] == 1
    assert r2.evidence["root_version"] == 1
    assert r2.evidence["expires"] == format_time(NOW + timedelta(days=30))
    assert "policy standard v2 applied (was v1)" in log.text


@pytest.mark.parametrize(
    ("offered", "reason"),
    [
        pytest.param(lambda: bundle(3, STRANGERS), "SignatureError", id="signed-by-wrong-keys"),
        pytest.param(lambda: bundle(3, OFFICERS[:1]), "ThresholdError", id="under-threshold"),
        pytest.param(lambda: bundle(1), "RollbackError", id="older-version-replayed"),
        pytest.param(lambda: bundle(2, min_accuracy=0.1), "RollbackError",
                     id="same-version-other-content"),
        pytest.param(lambda: bundle(3, expires=NOW - timedelta(seconds=1)), "ExpiredError",
                     id="expired"),
        pytest.param(lambda: b'{"payload": "garbage"}', "FormatError", id="not-a-bundle"),
    ],
)
def test_a_bad_bundle_is_rejected_with_a_record_and_an_error_line(
    config: AgentConfig, outbox: Outbox, log: pytest.LogCaptureFixture,
    offered: Callable[[], bytes], reason: str,
) -> None:
    state = load(config)
    state.offer_bundle(bundle(1), outbox, now=NOW)
    good = bundle(2)
    state.offer_bundle(good, outbox, now=NOW)
    bad = offered()

    offer = state.offer_bundle(bad, outbox, now=NOW)

    assert offer.outcome is OfferOutcome.REJECTED and offer.reason == reason
    rec = records(outbox)[-1]
    assert rec == offer.record and rec.event is EventType.POLICY_REJECTED
    assert rec.evidence["kind"] == "bundle" and rec.evidence["reason"] == reason
    assert rec.evidence["current_version"] == 2
    assert rec.subject.artifact_sha256 == sha256_hex(bad)
    assert rec.evidence["message"] and rec.evidence["message"] in errors(log)[-1]
    assert errors(log)[-1].startswith("policy bundle ")
    # Nothing changed: the good bundle stays in force, in memory and on disk.
    assert state.bundle_envelope == good and config.bundle_path.read_bytes() == good


def test_replayed_v1_names_both_versions(config: AgentConfig, outbox: Outbox,
                                         log: pytest.LogCaptureFixture) -> None:
    state = load(config)
    b1 = bundle(1)
    state.offer_bundle(b1, outbox, now=NOW)
    state.offer_bundle(bundle(2), outbox, now=NOW)
    offer = state.offer_bundle(b1, outbox, now=NOW)
    assert offer.reason == "RollbackError"
    assert "v1 is older than the last applied version 2" in errors(log)[-1]
    rec = records(outbox)[-1]
    assert (rec.subject.version, rec.evidence["offered_version"]) == ("1", 1)


def test_the_same_rejected_bundle_offered_three_times_gives_one_record_even_across_restart(
    config: AgentConfig, outbox: Outbox
) -> None:
    state = load(config)
    bad = bundle(1, STRANGERS)
    offers = [state.offer_bundle(bad, outbox, now=NOW) for _ in range(3)]
    assert [o.outcome for o in offers] == [OfferOutcome.REJECTED] * 3
    assert [o.duplicate for o in offers] == [False, True, True]
    assert [r.event for r in records(outbox)] == [EventType.POLICY_REJECTED]

    again = load(config).offer_bundle(bad, outbox, now=NOW)  # a restart: still one record
    assert again.duplicate and len(records(outbox)) == 1
    # Other bad bytes are recorded on their own.
    load(config).offer_bundle(bundle(2, STRANGERS), outbox, now=NOW)
    assert len(records(outbox)) == 2


def test_resending_the_current_bundle_or_a_cosigned_copy_changes_nothing(
    config: AgentConfig, outbox: Outbox
) -> None:
    state = load(config)
    b1 = bundle(1)
    state.offer_bundle(b1, outbox, now=NOW)
    assert state.offer_bundle(b1, outbox, now=NOW).outcome is OfferOutcome.UNCHANGED
    cosigned = bundle(1, (OFFICERS[1], OFFICERS[2]))  # same content, other signatures
    assert cosigned != b1
    assert state.offer_bundle(cosigned, outbox, now=NOW).outcome is OfferOutcome.UNCHANGED
    assert len(records(outbox)) == 1 and state.bundle_envelope == b1


def test_a_bundle_of_another_name_is_ignored_without_a_record(
    config: AgentConfig, outbox: Outbox, log: pytest.LogCaptureFixture
) -> None:
    state = load(config)
    offer = state.offer_bundle(bundle(5, name="lending"), outbox, now=NOW)
    assert offer.outcome is OfferOutcome.IGNORED
    assert records(outbox) == [] and state.version() is None
    assert "ignoring bundle lending v5: this node enforces 'standard'" in log.text


def test_no_record_no_apply_when_the_outbox_cannot_write(config: AgentConfig,
                                                         tmp_path: Path) -> None:
    box = Outbox.open(tmp_path / "outbox.db", NODE, NODE_KEY)
    box.close()  # every append now raises StorageUnavailableError
    state = load(config)
    with pytest.raises(StorageUnavailableError):
        state.offer_bundle(bundle(1), box, now=NOW)
    assert state.version() is None and not config.bundle_path.exists()


# -- restart and expiry ---------------------------------------------------------------------


def test_the_last_good_bundle_survives_a_restart_and_is_enforced_offline(
    config: AgentConfig, outbox: Outbox
) -> None:
    b2 = bundle(2)
    state = load(config)
    state.offer_bundle(bundle(1), outbox, now=NOW)
    state.offer_bundle(b2, outbox, now=NOW)

    later = NOW + timedelta(days=10)  # no hub since: only the disk
    reloaded = load(config, later)
    assert reloaded.bundle_envelope == b2
    enforced = reloaded.enforceable(later)
    assert enforced is not None and enforced.version == 2
    # Rollback protection survives the restart too.
    assert reloaded.offer_bundle(bundle(1), outbox, now=later).reason == "RollbackError"


def test_expiry_is_recorded_once_even_across_reload_and_fails_closed(
    config: AgentConfig, outbox: Outbox, log: pytest.LogCaptureFixture
) -> None:
    expires = NOW + timedelta(hours=1)
    b1 = bundle(1, expires=expires)
    state = load(config)
    state.offer_bundle(b1, outbox, now=NOW)
    state.check_expiry(outbox, now=NOW)
    assert len(records(outbox)) == 1 and state.enforceable(NOW) is not None

    after = expires + timedelta(seconds=1)
    assert state.enforceable(expires) is None  # expiry is exclusive: at `expires`, expired
    state.check_expiry(outbox, now=after)
    state.check_expiry(outbox, now=after + timedelta(minutes=5))
    reloaded = load(config, after)
    reloaded.check_expiry(outbox, now=after + timedelta(minutes=10))

    expired = [r for r in records(outbox) if r.event is EventType.POLICY_EXPIRED]
    assert len(expired) == 1
    assert expired[0].subject.artifact_sha256 == sha256_hex(b1)
    assert expired[0].evidence == {"kind": "bundle", "expires": format_time(expires),
                                   "root_version": 1}
    assert reloaded.bundle_envelope == b1  # held, to be reported as expired ...
    assert reloaded.enforceable(after) is None  # ... never enforced
    assert errors(log).count(
        f"policy standard v1 expired at {format_time(expires)}: no promotion until a fresh "
        "bundle arrives") == 1

    # A fresh bundle is enforced again, and its own expiry is recorded afresh.
    b2 = bundle(2, expires=after + timedelta(hours=1))
    reloaded.offer_bundle(b2, outbox, now=after)
    assert reloaded.enforceable(after) is not None
    reloaded.check_expiry(outbox, now=after + timedelta(hours=2))
    assert [r.event for r in records(outbox)].count(EventType.POLICY_EXPIRED) == 2


def test_a_saved_bundle_that_no_longer_verifies_is_ignored_and_kept(
    config: AgentConfig, log: pytest.LogCaptureFixture
) -> None:
    forged = bundle(9, STRANGERS)
    config.bundle_path.write_bytes(forged)
    before = sorted(p.name for p in config.state_dir.iterdir())

    state = load(config)

    assert state.bundle is None and state.enforceable(NOW) is None
    assert config.bundle_path.read_bytes() == forged  # left for inspection
    assert sorted(p.name for p in config.state_dir.iterdir()) == before  # load writes nothing
    assert "the saved bundle does not verify against trust root v1; not enforced" in (
        errors(log)[-1])


def test_an_unreadable_state_file_falls_back_to_the_held_bundle(
    config: AgentConfig, outbox: Outbox, log: pytest.LogCaptureFixture
) -> None:
    load(config).offer_bundle(bundle(3), outbox, now=NOW)
    (config.state_dir / STATE_FILE).write_text("{not json")
    state = load(config)
    assert "cannot read the policy state" in errors(log)[-1]
    assert state.version() == 3
    assert state.offer_bundle(bundle(2), outbox, now=NOW).reason == "RollbackError"


def test_an_expired_pinned_root_starts_but_accepts_and_enforces_nothing(
    config: AgentConfig, outbox: Outbox, log: pytest.LogCaptureFixture
) -> None:
    load(config).offer_bundle(bundle(1, expires=NOW + timedelta(days=400)), outbox, now=NOW)
    later = NOW + timedelta(days=366)  # root v1 expires after 365 days
    state = load(config, later)
    assert "trust root v1" in errors(log)[-1] and "expired" in errors(log)[-1]
    assert state.bundle is not None and state.enforceable(later) is None
    assert state.offer_bundle(bundle(2, expires=NOW + timedelta(days=400)), outbox,
                              now=later).reason == "ExpiredError"
    state.check_expiry(outbox, now=later)
    state.check_expiry(outbox, now=later)
    root_expired = [r for r in records(outbox)
                    if r.event is EventType.POLICY_EXPIRED and r.evidence["kind"] == "root"]
    assert len(root_expired) == 1 and root_expired[0].subject.model == "root"


# -- roots -----------------------------------------------------------------------------------


def test_a_root_chain_is_applied_in_order_with_records_and_kept_for_audit(
    config: AgentConfig, outbox: Outbox, log: pytest.LogCaptureFixture
) -> None:
    state = load(config)
    assert state.offer_roots([V2, V3], outbox, now=NOW) == 2

    assert state.root.version == 3 and config.root.read_bytes() == V3
    roots = config.state_dir / "roots"
    assert [(roots / f"{v}.json").read_bytes() for v in (1, 2, 3)] == [V1, V2, V3]
    applied = records(outbox)
    assert [(r.event, r.subject.model, r.subject.version) for r in applied] == [
        (EventType.ROOT_APPLIED, "root", "2"), (EventType.ROOT_APPLIED, "root", "3")]
    assert applied[1].subject.artifact_sha256 == sha256_hex(V3)
    assert applied[1].evidence["previous_version"] == 2
    assert "trust root rotated: v2 → v3" in log.text
    assert load(config).root.version == 3
    # Offering the chain again (the daemon re-fetches it) changes nothing.
    assert state.offer_roots([V2, V3], outbox, now=NOW) == 0 and len(records(outbox)) == 2


def test_root_n_plus_2_without_n_plus_1_is_refused_and_the_pin_kept(
    config: AgentConfig, outbox: Outbox, log: pytest.LogCaptureFixture
) -> None:
    state = load(config)
    assert state.offer_roots([V3], outbox, now=NOW) == 0
    assert state.root.version == 1 and config.root.read_bytes() == V1
    assert not (config.state_dir / "roots").exists()
    (rec,) = records(outbox)
    assert rec.event is EventType.POLICY_REJECTED
    assert (rec.subject.model, rec.subject.version) == ("root", "3")
    assert rec.evidence["kind"] == "root" and rec.evidence["reason"] == "RollbackError"
    assert errors(log)[-1].startswith("trust root v3 rejected, keeping v1: ")
    assert "expected exactly 2" in errors(log)[-1]
    # The daemon re-fetches the chain periodically: still one record.
    state.offer_roots([V3], outbox, now=NOW)
    assert len(records(outbox)) == 1


@pytest.mark.parametrize(
    ("chain", "applied", "reason"),
    [
        pytest.param(lambda: [V2, root_bytes(3, R3, (R3,))], 1, "SignatureError",
                     id="v3-not-signed-by-v2"),
        pytest.param(lambda: [root_bytes(2, R2, (R2,))], 0, "SignatureError",
                     id="v2-not-signed-by-v1"),
        pytest.param(lambda: [V2, root_bytes(3, R3, (R2, R3),
                                             expires=NOW - timedelta(days=1))], 1,
                     "ExpiredError", id="expired-newest"),
        pytest.param(lambda: [V2, b"not json"], 1, "FormatError", id="garbage"),
    ],
)
def test_a_bad_step_stops_the_walk_at_the_last_good_root(
    config: AgentConfig, outbox: Outbox, chain: Callable[[], list[bytes]], applied: int,
    reason: str,
) -> None:
    state = load(config)
    assert state.offer_roots(chain(), outbox, now=NOW) == applied
    assert state.root.version == 1 + applied
    last = records(outbox)[-1]
    assert last.event is EventType.POLICY_REJECTED and last.evidence["reason"] == reason


def test_an_expired_intermediate_root_is_fine_when_the_newest_is_current(
    config: AgentConfig, outbox: Outbox
) -> None:
    later = NOW + timedelta(days=30)
    v2_short = root_bytes(2, R2, (R1, R2), expires=NOW + timedelta(days=1))
    assert load(config, later).offer_roots([v2_short, V3], outbox, now=later) == 2


def test_policy_keys_rotate_with_the_root(config: AgentConfig, outbox: Outbox,
                                          log: pytest.LogCaptureFixture) -> None:
    state = load(config)
    state.offer_bundle(bundle(1), outbox, now=NOW)
    by_new_keys = bundle(2, NEW_OFFICERS[:2])
    assert state.offer_bundle(by_new_keys, outbox, now=NOW).reason == "SignatureError"

    state.offer_roots([V2, V3], outbox, now=NOW)  # v3 hands the policy role to new officers

    # The held v1 was signed by the old officers: root v3 no longer vouches for it.
    assert state.bundle is None and state.enforceable(NOW) is None
    dropped = records(outbox)[-1]
    assert dropped.event is EventType.POLICY_REJECTED and dropped.subject.version == "1"
    assert "is not signed by the policy role of root v3: no longer enforced" in errors(log)[-1]
    # Refused under root v1, the same bytes are judged afresh under root v3: applied.
    offer = state.offer_bundle(by_new_keys, outbox, now=NOW)
    assert offer.outcome is OfferOutcome.APPLIED
    assert offer.record is not None and offer.record.evidence["root_version"] == 3
    assert load(config).enforceable(NOW) is not None  # and it verifies after a restart


def test_a_dropped_bundle_keeps_the_rollback_floor(config: AgentConfig,
                                                   outbox: Outbox) -> None:
    state = load(config)
    state.offer_bundle(bundle(2), outbox, now=NOW)
    state.offer_roots([V2, V3], outbox, now=NOW)
    assert state.bundle is None
    # An older version, even properly signed by the new officers, is a rollback.
    assert state.offer_bundle(bundle(1, NEW_OFFICERS[:2]), outbox,
                              now=NOW).reason == "RollbackError"
    # The same content re-signed by the new officers is accepted again.
    assert state.offer_bundle(bundle(2, NEW_OFFICERS[1:]), outbox,
                              now=NOW).outcome is OfferOutcome.APPLIED


# -- the clock -------------------------------------------------------------------------------


def test_a_clock_moved_backwards_cannot_un_expire_a_bundle(
    config: AgentConfig, outbox: Outbox, log: pytest.LogCaptureFixture
) -> None:
    expires = NOW + timedelta(hours=1)
    state = load(config)
    state.offer_bundle(bundle(1, expires=expires), outbox, now=NOW)
    late = NOW + timedelta(hours=2)
    state.check_expiry(outbox, now=trusted_now(outbox, late, log=LOG))  # head time: late

    rewound = NOW  # someone sets the system clock back two hours
    now = trusted_now(outbox, rewound, log=LOG)
    assert now == late
    warnings = [r.getMessage() for r in log.records if r.levelno == logging.WARNING]
    assert warnings[-1] == (f"the system clock ({format_time(rewound)}) is earlier than the "
                            f"last record ({format_time(late)}); governing on the last "
                            "record's time until it catches up")
    trusted_now(outbox, rewound, log=LOG)  # warned once per episode
    assert len([r for r in log.records if r.levelno == logging.WARNING]) == len(warnings)

    assert state.enforceable(now) is None
    # A bundle valid by the rewound clock but expired by the trusted one is refused.
    offer = state.offer_bundle(bundle(2, expires=NOW + timedelta(minutes=90)), outbox, now=now)
    assert offer.reason == "ExpiredError"
    rec = records(outbox)[-1]
    assert rec.event is EventType.POLICY_REJECTED and rec.time == late
    assert errors(log)[-1].startswith("policy bundle standard v2 rejected: ")
    times = [r.time for r in records(outbox)]
    assert times == sorted(times)  # records never go back in time

    caught_up = late + timedelta(minutes=1)
    assert trusted_now(outbox, caught_up, log=LOG) == caught_up
    assert "the system clock has caught up with the last record" in log.text


def test_trusted_now_is_the_clock_on_an_empty_outbox(outbox: Outbox) -> None:
    assert trusted_now(outbox, NOW) == NOW


def test_importing_policy_state_stays_light() -> None:
    code = ("import sys, agent.policy_state; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'numpy', 'regopy', 'scipy', 'pyarrow', 'grpc', 'sqlalchemy'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
