"""Bad input to ``warden hub ...`` (issue 8, items 15, 17, 20, 21 and 5 for the hub).

One table, one test: every row is a command a user could type, run in-process. Rows that talk to
a hub get a real one (TLS on a free loopback port, SQLite) whose ledger holds 3 entries with
stored checkpoints at sizes 1 and 3 only; rows refused before any call name an address where
nothing listens. Each must be refused with one clear ``error:`` line — no
traceback, no token made, no directory left behind by a failed ``hub init``.

Placeholders: ``{hub}`` the hub's address, ``{dir}`` its directory (made by ``hub init``),
``{tmp}`` a scratch directory, ``{fresh}`` a path no row may leave behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.bad_input._table import Case, assert_refused, run_warden
from tests.hub.harness import HubWorld, enroll, make_world, node_client, running_hub
from tests.sim import SimNode
from trust import keys

CONN = ("--hub", "{hub}", "--hub-dir", "{dir}")
NOWHERE = ("--hub", "127.0.0.1:9", "--hub-dir", "{dir}")  # refused before any call
BIG = "99999999999999999999999"

CASES = [
    # -- item 15: numbers out of range are argparse errors naming the argument --------------
    Case("inclusion-negative-index", ("hub", "proof", "inclusion", "-1", *NOWHERE),
         r"INDEX: -1 .*≥ 0"),
    Case("inclusion-huge-index", ("hub", "proof", "inclusion", BIG, *NOWHERE),
         r"INDEX: .* at most 9223372036854775807"),
    Case("entries-negative-start", ("hub", "entries", "--start", "-5", *NOWHERE),
         r"--start: -5 .*≥ 0"),
    Case("entries-huge-start", ("hub", "entries", "--start", BIG, *NOWHERE),
         r"--start: .* at most 9223372036854775807"),
    # A huge value where the minimum is 1 is "too large", not "out of range: ≥ 1".
    Case("checkpoint-huge-size", ("hub", "checkpoint", "--size", BIG, *NOWHERE),
         r"--size: 9+ is too large; at most 9223372036854775807"),
    Case("consistency-huge-size", ("hub", "proof", "consistency", BIG, *NOWHERE),
         r"OLD_SIZE: 9+ is too large; at most 9223372036854775807"),
    Case("entries-huge-limit", ("hub", "entries", "--limit", BIG, *NOWHERE),
         r"--limit: 9+ is too large; at most 9223372036854775807"),
    Case("entries-negative-limit", ("hub", "entries", "--limit", "-2", *NOWHERE),
         r"--limit: -2 .*≥ 1"),
    Case("entries-zero-limit", ("hub", "entries", "--limit", "0", *NOWHERE),
         r"--limit: 0 .*≥ 1"),
    Case("entries-text-limit", ("hub", "entries", "--limit", "ten", *NOWHERE),
         r"--limit: 'ten' is not a whole number"),
    Case("checkpoint-negative-size", ("hub", "checkpoint", "--size", "-1", *NOWHERE),
         r"--size: -1 .*≥ 1"),
    Case("consistency-negative-size", ("hub", "proof", "consistency", "-3", *NOWHERE),
         r"OLD_SIZE: -3 .*≥ 1"),
    Case("consistency-zero-size", ("hub", "proof", "consistency", "0", *NOWHERE),
         r"OLD_SIZE: 0 .*≥ 1"),
    Case("timeout-zero", ("hub", "entries", "--timeout", "0", *NOWHERE),
         r"--timeout: 0 .*positive"),
    Case("timeout-negative", ("hub", "entries", "--timeout", "-1", *NOWHERE),
         r"--timeout: -1 .*positive"),
    Case("timeout-nan", ("hub", "entries", "--timeout", "nan", *NOWHERE),
         r"--timeout: nan .*positive"),
    Case("timeout-infinite", ("hub", "entries", "--timeout", "inf", *NOWHERE),
         r"--timeout: inf .*positive"),
    # -- item 21: an index past the tree, a consistency proof from a size never signed --------
    Case("inclusion-beyond-latest", ("hub", "proof", "inclusion", "42", *CONN),
         r"error: INDEX 42 is beyond the latest checkpoint \(tree size 3: entries 0 to 2\)"),
    Case("consistency-from-unsigned-size", ("hub", "proof", "consistency", "2", *CONN),
         r"no checkpoint .*size 2.*latest .*size 3"),
    Case("checkpoint-of-unsigned-size", ("hub", "checkpoint", "--size", "2", *CONN),
         r"no checkpoint of tree size 2; the latest checkpoint has tree size 3"),
    Case("consistency-beyond-latest", ("hub", "proof", "consistency", "4", *CONN),
         r"OLD_SIZE 4 is beyond the latest checkpoint .*size 3"),
    Case("consistency-size-and-from", ("hub", "proof", "consistency", "1", "--from",
                                       "{tmp}/seen.note", *NOWHERE), r"not both"),
    Case("consistency-neither-size-nor-from", ("hub", "proof", "consistency", *NOWHERE),
         r"OLD_SIZE or --from"),
    Case("consistency-from-garbage-note", ("hub", "proof", "consistency", "--from",
                                           "{tmp}/garbage.json", *NOWHERE),
         r"garbage.json: signed note"),
    Case("consistency-from-missing-note", ("hub", "proof", "consistency", "--from",
                                           "{tmp}/nope.note", *NOWHERE), r"nope.note: cannot read"),
    # -- item 20: reserved node id and a clock skew of three thousand years -------------------
    Case("token-for-reserved-hub-id", ("hub", "token", "create", "--config", "{dir}/hub.yaml",
                                       "--node", "hub"), r"--node 'hub' is reserved"),
    Case("config-huge-clock-skew", ("hub", "token", "create", "--config", "{dir}/skew.yaml",
                                    "--node", "n1"), r"skew.yaml: clock_skew_s must be .*86400"),
    # -- item 17 and item 5: hub.yaml that is not UTF-8, or says one key twice ---------------
    Case("config-not-utf8", ("hub", "token", "create", "--config", "{dir}/latin1.yaml",
                             "--node", "n1"), r"latin1.yaml: not UTF-8 .*byte offset \d+"),
    Case("config-duplicate-key", ("hub", "token", "create", "--config", "{dir}/dup.yaml",
                                  "--node", "n1"), r"dup.yaml: found duplicate key 'origin'"),
    # -- item 20: hub init refuses a root that cannot serve this hub, before writing ----------
    Case("init-root-without-hub-key", ("hub", "init", "{fresh}", "--root", "{tmp}/root.json",
                                       "--hub-key", "{tmp}/stranger.key"),
         r"root.json: .*'hub' role does not hold this hub's key"),
    Case("init-root-with-generated-key", ("hub", "init", "{fresh}", "--root",
                                          "{tmp}/root.json"),
         r"'hub' role does not hold this hub's key"),
    Case("init-garbage-root", ("hub", "init", "{fresh}", "--root", "{tmp}/garbage.json",
                               "--hub-key", "{tmp}/hub-officer.key"), r"garbage.json"),
    Case("init-missing-root", ("hub", "init", "{fresh}", "--root", "{tmp}/nope.json",
                               "--hub-key", "{tmp}/hub-officer.key"), r"nope.json"),
    Case("init-mysql-database", ("hub", "init", "{fresh}", "--database", "mysql://u@db/warden"),
         r"database 'mysql://u@db/warden'.*only sqlite and postgresql"),
    Case("init-missing-hub-key", ("hub", "init", "{fresh}", "--hub-key", "{tmp}/nope.key"),
         r"nope.key"),
    Case("init-bad-origin", ("hub", "init", "{fresh}", "--origin", "my hub"), r"'my hub'"),
]


@dataclass(frozen=True)
class Files:
    """The hub directory and the files the rows refer to."""

    world: HubWorld
    tmp: Path

    def fill(self, case: Case, port: int | None) -> list[str]:
        """``case.argv`` with its placeholders filled in."""
        names = {"hub": f"127.0.0.1:{port}", "dir": str(self.world.dir), "tmp": str(self.tmp),
                 "fresh": str(self.fresh(case))}
        return [a.format(**names) for a in case.argv]

    def fresh(self, case: Case) -> Path:
        """A path that must not exist after ``case`` ran."""
        return self.tmp / f"fresh-{case.id}"


@pytest.fixture(autouse=True, scope="module")
def _one_parser() -> Iterator[None]:
    """Build the ``warden`` parser once for the module: loading every command group's entry
    point per row would cost more than the rows (parsing does not change the parser)."""
    import trust.cli.main as cli_main

    parser = cli_main.build_parser()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli_main, "build_parser", lambda: parser)
        yield


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    """A hub directory (from ``hub init``) plus bad variants of its hub.yaml and a garbage
    root."""
    tmp = tmp_path_factory.mktemp("hub-table")
    world = make_world(tmp, verify_workers=0)
    config = (world.dir / "hub.yaml").read_text()
    (world.dir / "skew.yaml").write_text(config + "clock_skew_s: 99999999999\n")
    (world.dir / "latin1.yaml").write_bytes(config.encode() + b"# caf\xe9\n")
    (world.dir / "dup.yaml").write_text(config + "origin: other.warden/hub\n")
    (tmp / "garbage.json").write_text("this is not a trust root\n")
    keys.save_private(keys.generate(), tmp / "stranger.key")
    return Files(world, tmp)


@pytest.fixture(scope="module")
def port(files: Files) -> Iterator[int]:
    """The hub serving ``files``, with entries 0..2: an enrollment (checkpoint of size 1),
    then one append of two records (checkpoint of size 3) — so size 2 has no checkpoint.
    Started only for the rows that talk to a hub."""
    with running_hub(files.world) as hub:
        node = SimNode("emea-1")
        enroll(files.world, hub, node)
        with node_client(files.world, hub, node) as c:
            c.append(node.records(2))
        yield hub.port


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_hub_input_is_refused_clearly(
    case: Case, files: Files, request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = request.getfixturevalue("port") if "{hub}" in case.argv else None
    code, out, err = run_warden(files.fill(case, port), capsys)
    assert_refused(case, code, err)
    assert not files.fresh(case).exists(), "a failed command left files behind"
    assert "wdn_" not in out, "a token was made despite the error"


# -- item 21: the help example works, and a saved checkpoint the hub no longer extends fails --


def test_help_example_consistency_from_a_saved_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = make_world(tmp_path, verify_workers=0)
    with running_hub(world) as hub:
        conn = ["--hub", f"127.0.0.1:{hub.port}", "--hub-dir", str(world.dir)]
        node = SimNode("emea-1")
        enroll(world, hub, node)
        with node_client(world, hub, node) as c:
            c.append(node.records(2))
            # "warden hub checkpoint --hub-dir ./hub > seen.note    # today"
            code, note, err = run_warden(["hub", "checkpoint", *conn], capsys)
            assert code == 0, err
            (tmp_path / "seen.note").write_text(note)
            for _ in range(3):  # the ledger grows by separate appends: sizes 4, 5, 6
                c.append(node.records(1))
        # "warden hub proof consistency --from seen.note --hub-dir ./hub    # later"
        code, out, err = run_warden(["hub", "proof", "consistency", "--from",
                                     str(tmp_path / "seen.note"), *conn], capsys)
        assert (code, err) == (0, "")
        assert out.startswith("checkpoint of size 3 is a prefix of checkpoint of size 6; ")
        # A size the hub stored a checkpoint of works too.
        code, out, err = run_warden(["hub", "proof", "consistency", "4", *conn], capsys)
        assert code == 0 and out.startswith("checkpoint of size 4 is a prefix of checkpoint "
                                            "of size 6"), err


def test_saved_checkpoint_beyond_the_hubs_latest_is_a_proof_failure(
    files: Files, port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    # A note signed with the hub's key for a tree larger than the hub now shows: the log was
    # rolled back or forked. That is a verification failure (exit 1), never a pass.
    from trust.checkpoint import Checkpoint, sign_checkpoint

    origin = files.world.config.origin
    fork = sign_checkpoint(Checkpoint(origin, 10, b"\x01" * 32), origin, files.world.officers.hub)
    (files.tmp / "fork.note").write_bytes(fork)
    code, out, err = run_warden(["hub", "proof", "consistency", "--from",
                                 str(files.tmp / "fork.note"), "--hub", f"127.0.0.1:{port}",
                                 "--hub-dir", str(files.world.dir)], capsys)
    assert code == 1 and out == ""
    assert err.startswith(f"error: {files.tmp / 'fork.note'}: checkpoint of tree size 10 is "
                          "larger than the hub's latest (tree size 3)"), err
