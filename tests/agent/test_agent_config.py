"""AgentConfig: file < environment < flags; unknown keys and bad values name file, key, reason.

Also holds ``docs/agent-config.md`` to the code: every field of :class:`AgentConfig` and
:class:`ModelConfig` is documented, the document names no key that does not exist, and its
example ``agent.yaml`` loads.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from agent.config import (
    ENV_PREFIX,
    AgentConfig,
    CheckEngine,
    ModelConfig,
    check_hub_address,
    load_agent_config,
)
from trust.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "agent-config.md"
BASE = "node_id: emea-1\nhub: 127.0.0.1:7443\ninsecure: true\n"
MODEL = "models:\n  - {name: credit, data: v.csv, label: y}\n"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "agent.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_file_env_flags_precedence(tmp_path: Path) -> None:
    p = _write(tmp_path, BASE + "push_batch: 10\nlog_level: debug\nheartbeat_interval_s: 5\n")
    cfg = load_agent_config(p, env={})
    assert (cfg.push_batch, cfg.log_level, cfg.heartbeat_interval_s) == (10, "debug", 5.0)
    cfg = load_agent_config(p, env={"WARDEN_AGENT_PUSH_BATCH": "20",
                                    "WARDEN_AGENT_LOG_LEVEL": "warning"},
                            overrides={"log_level": "error", "push_batch": None})
    # push_batch: env beats file (the flag was not given); log_level: flag beats env.
    assert (cfg.push_batch, cfg.log_level, cfg.heartbeat_interval_s) == (20, "error", 5.0)
    cfg = load_agent_config(p, env={"WARDEN_AGENT_NODE_ID": "apac-2"},
                            overrides={"node_id": "us-3"})
    assert cfg.node_id == "us-3"
    assert load_agent_config(p, env={"WARDEN_AGENT_NODE_ID": "apac-2"}).node_id == "apac-2"


def test_defaults(tmp_path: Path) -> None:
    cfg = load_agent_config(_write(tmp_path, BASE), env={})
    assert cfg.models == () and cfg.ca is None and cfg.passphrase_file is None
    assert (cfg.watch_backoff_initial_s, cfg.watch_backoff_max_s) == (1.0, 60.0)
    assert (cfg.push_batch, cfg.push_interval_s, cfg.heartbeat_interval_s) == (100, 1.0, 30.0)
    assert cfg.log_level == "info" and cfg.insecure is True
    assert cfg.source == tmp_path / "agent.yaml"


def test_relative_paths_resolve_against_the_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    node = tmp_path / "node"
    node.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory must not matter for the file's paths
    p = _write(node, "node_id: emea-1\nhub: hub.example.com:7443\nca: tls/ca.crt\n"
               "passphrase_file: secrets/pass\n" + MODEL)
    cfg = load_agent_config(p, env={})
    here = node.resolve()
    assert cfg.ca == here / "tls" / "ca.crt"
    assert cfg.passphrase_file == here / "secrets" / "pass"
    assert cfg.models[0].data == here / "v.csv"
    # Unset paths default to files inside state_dir, itself the file's directory.
    assert cfg.state_dir == here
    assert (cfg.root, cfg.node_key, cfg.registry) == (
        here / "root.json", here / "node.key", here / "models")


def test_state_dir_moves_the_defaults_and_env_paths_follow_the_cwd(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    p = _write(tmp_path, BASE + "state_dir: /var/lib/warden\nregistry: /srv/models\n")
    cfg = load_agent_config(p, env={})
    assert cfg.node_key == Path("/var/lib/warden/node.key")
    assert cfg.root == Path("/var/lib/warden/root.json")
    assert cfg.registry == Path("/srv/models")  # set explicitly: not under state_dir
    cfg = load_agent_config(p, env={"WARDEN_AGENT_STATE_DIR": "st"})
    assert cfg.state_dir == tmp_path / "st" and cfg.node_key == tmp_path / "st" / "node.key"


def test_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_agent_config(None, env={"WARDEN_AGENT_NODE_ID": "n1",
                                       "WARDEN_AGENT_HUB": "localhost:1",
                                       "WARDEN_AGENT_INSECURE": "yes"})
    assert cfg.source is None and cfg.state_dir == tmp_path
    with pytest.raises(ConfigError, match="agent config: missing key 'node_id'"):
        load_agent_config(None, env={})


def test_models_are_parsed(tmp_path: Path) -> None:
    p = _write(tmp_path, BASE + "models:\n"
               "  - {name: credit, data: a.csv, label: y, sensitive: [gender, age],"
               " stages: [staging], engine: local}\n"
               "  - {name: churn.v2, data: /d/b.parquet, label: churned}\n")
    cfg = load_agent_config(p, env={})
    credit, churn = cfg.models
    assert credit == ModelConfig("credit", tmp_path.resolve() / "a.csv", "y",
                                 ("gender", "age"), ("staging",), CheckEngine.LOCAL)
    assert churn.sensitive == () and churn.stages == ("staging", "production")
    assert churn.data == Path("/d/b.parquet")
    assert cfg.model("churn.v2") is churn and cfg.model("nope") is None


def test_unknown_key_in_file_names_key_and_file(tmp_path: Path) -> None:
    p = _write(tmp_path, BASE + "push_bacth: 5\n")
    with pytest.raises(ConfigError) as exc:
        load_agent_config(p, env={})
    assert exc.value.message == f"{p}: unknown key 'push_bacth'"
    assert exc.value.hint is not None and "push_batch" in exc.value.hint


def test_unknown_key_in_a_model_names_key_and_file(tmp_path: Path) -> None:
    p = _write(tmp_path, BASE + "models:\n  - {name: m, data: d, label: y, lable: z}\n")
    with pytest.raises(ConfigError) as exc:
        load_agent_config(p, env={})
    assert exc.value.message == f"{p}: unknown key models[0].lable"


def test_unknown_environment_variable_is_an_error(tmp_path: Path) -> None:
    p = _write(tmp_path, BASE)
    with pytest.raises(ConfigError) as exc:
        load_agent_config(p, env={"WARDEN_AGENT_PUSH_BACTH": "5", "WARDEN_HUB_X": "ignored"})
    assert "WARDEN_AGENT_PUSH_BACTH" in exc.value.message
    assert "environment" in exc.value.message
    assert exc.value.hint is not None and "WARDEN_AGENT_PUSH_BATCH" in exc.value.hint
    with pytest.raises(ConfigError, match="WARDEN_AGENT_MODELS: models can only be set in"):
        load_agent_config(p, env={"WARDEN_AGENT_MODELS": "[]"})


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("hub: 127.0.0.1:1\ninsecure: true\n", "'node_id'", "missing key"),
        ("node_id: n\ninsecure: true\n", "'hub'", "missing key"),
        ("node_id: 'bad id'\nhub: 127.0.0.1:1\ninsecure: true\n", "node_id", "must match"),
        ("node_id: -x\nhub: 127.0.0.1:1\ninsecure: true\n", "node_id", "must match"),
        ("node_id: n\nhub: 127.0.0.1\ninsecure: true\n", "hub", "must be HOST:PORT"),
        ("node_id: n\nhub: 127.0.0.1:0\ninsecure: true\n", "hub", "port in 1..65535"),
        ("node_id: n\nhub: 127.0.0.1:99999\ninsecure: true\n", "hub", "port in 1..65535"),
        ("node_id: n\nhub: ::1:7443\ninsecure: true\n", "hub", "must be HOST:PORT"),
        ("node_id: n\nhub: 'a b:1'\ninsecure: true\n", "hub", "must be HOST:PORT"),
        ("node_id: n\nhub: 10.0.0.1:7443\ninsecure: true\n", "insecure",
         "only allowed with a loopback hub"),
        ("node_id: n\nhub: 10.0.0.1:7443\n", "ca", "no CA certificate"),
        ("node_id: n\nhub: 10.0.0.1:7443\nca: ''\n", "ca", "must be a non-empty string"),
        ("node_id: n\nhub: 127.0.0.1:1\ninsecure: maybe\n", "insecure",
         "must be true or false"),
        (BASE + "push_batch: many\n", "push_batch", "must be a number"),
        (BASE + "push_batch: 2.5\n", "push_batch", "must be a whole number"),
        (BASE + "push_batch: '2.5'\n", "push_batch", "must be a whole number"),
        (BASE + "push_batch: true\n", "push_batch", "must be a number"),
        (BASE + "push_batch: 0\n", "push_batch", "between 1 and 10000"),
        (BASE + "push_batch: .inf\n", "push_batch", "must be a finite number"),
        (BASE + "push_interval_s: .nan\n", "push_interval_s", "must be a finite number"),
        (BASE + "push_interval_s: 0\n", "push_interval_s", "> 0"),
        (BASE + "heartbeat_interval_s: -1\n", "heartbeat_interval_s", "> 0"),
        (BASE + "watch_backoff_initial_s: 0\n", "watch_backoff_initial_s", "> 0"),
        (BASE + "watch_backoff_initial_s: 10\nwatch_backoff_max_s: 5\n",
         "watch_backoff_max_s", "must be ≥ watch_backoff_initial_s"),
        (BASE + "log_level: loud\n", "log_level", "is not one of debug, info"),
        (BASE + "root: [a, b]\n", "root", "must be a non-empty string"),
        (BASE + "models: {name: m}\n", "models", "must be a list of mappings"),
        (BASE + "models: [m]\n", "models[0]", "must be a mapping"),
        (BASE + "models:\n  - {name: m, label: y}\n", "models[0].data", "missing key"),
        (BASE + "models:\n  - {data: d, label: y}\n", "models[0].name", "missing key"),
        (BASE + "models:\n  - {name: m, data: d}\n", "models[0].label", "missing key"),
        (BASE + "models:\n  - {name: ../m, data: d, label: y}\n", "models[0].name",
         "must match"),
        (BASE + "models:\n  - {name: a..b, data: d, label: y}\n", "models[0].name",
         "must match"),
        (BASE + "models:\n  - {name: m, data: d, label: ''}\n", "models[0].label",
         "must be a non-empty string"),
        (BASE + "models:\n  - {name: m, data: d, label: y, sensitive: gender}\n",
         "models[0].sensitive", "must be a list of strings"),
        (BASE + "models:\n  - {name: m, data: d, label: y, sensitive: [1]}\n",
         "models[0].sensitive", "must hold non-empty strings"),
        (BASE + "models:\n  - {name: m, data: d, label: y, sensitive: [g, g]}\n",
         "models[0].sensitive", "lists 'g' twice"),
        (BASE + "models:\n  - {name: m, data: d, label: y, sensitive: [y]}\n",
         "models[0].sensitive", "names the label column"),
        (BASE + "models:\n  - {name: m, data: d, label: y, stages: []}\n",
         "models[0].stages", "at least one stage"),
        (BASE + "models:\n  - {name: m, data: d, label: y, stages: [Prod/x]}\n",
         "models[0].stages", "must match"),
        (BASE + "models:\n  - {name: m, data: d, label: y, engine: spark}\n",
         "models[0].engine", "is not one of local"),
        (BASE + "models:\n  - {name: m, data: d, label: y}\n  - {name: m, data: e, label: y}\n",
         "models", "listed more than once"),
        ("- a list\n", "top level", "must be a mapping"),
        (BASE + "push_batch: [\n", "", "not valid YAML"),
    ],
)
def test_bad_value_names_file_key_and_reason(tmp_path: Path, text: str, key: str,
                                             reason: str) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_agent_config(p, env={})
    message = exc.value.message
    assert message.startswith(f"{p}: "), message
    assert key in message and reason in message, message


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"WARDEN_AGENT_PUSH_BATCH": "2.5"}, "environment: push_batch must be a whole number"),
        ({"WARDEN_AGENT_INSECURE": "maybe"}, "environment: insecure must be true or false"),
        ({"WARDEN_AGENT_HUB": "nohost"}, "environment: hub 'nohost' must be HOST:PORT"),
        ({"WARDEN_AGENT_NODE_ID": "a/b"}, "environment: node_id 'a/b' must match"),
        ({"WARDEN_AGENT_PUSH_INTERVAL_S": "inf"}, "environment: push_interval_s must be a finite"),
    ],
)
def test_bad_environment_value_names_the_environment(tmp_path: Path, env: dict[str, str],
                                                     needle: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_agent_config(_write(tmp_path, BASE), env=env)


def test_bad_flag_value_names_the_command_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="command line: push_batch must be a whole number"):
        load_agent_config(_write(tmp_path, BASE), env={}, overrides={"push_batch": 1.5})


@pytest.mark.parametrize("target", ["127.0.0.1:7443", "localhost:1", "[::1]:7443",
                                    "hub.example.com:65535"])
def test_good_hub_addresses(target: str) -> None:
    assert check_hub_address(target, where="x") == target


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    # Last-one-wins would let one file say two hubs to two readers.
    p = _write(tmp_path, BASE + "push_batch: 5\npush_batch: 500\n")
    with pytest.raises(ConfigError) as exc:
        load_agent_config(p, env={})
    assert exc.value.message.startswith(str(p))
    assert "duplicate key 'push_batch'" in exc.value.message and "line 5" in exc.value.message


def test_duplicate_key_in_a_model_is_refused(tmp_path: Path) -> None:
    p = _write(tmp_path, BASE + "models:\n  - name: m\n    data: d\n    label: y\n    label: z\n")
    with pytest.raises(ConfigError, match="duplicate key 'label'"):
        load_agent_config(p, env={})


def test_non_utf8_file_names_file_and_byte_offset(tmp_path: Path) -> None:
    p = tmp_path / "agent.yaml"
    p.write_bytes(BASE.encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError) as exc:
        load_agent_config(p, env={})
    assert exc.value.message == f"{p}: not UTF-8 text (byte offset {len(BASE) + 5}: b'\\xe9')"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_agent_config(tmp_path / "nope.yaml", env={})
    with pytest.raises(ConfigError, match="is a directory"):
        load_agent_config(tmp_path, env={})


def test_config_is_frozen(tmp_path: Path) -> None:
    cfg = load_agent_config(_write(tmp_path, BASE + MODEL), env={})
    with pytest.raises(AttributeError):
        cfg.hub = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        cfg.models[0].label = "x"  # type: ignore[misc]
    assert isinstance(cfg, AgentConfig)


# --- docs/agent-config.md is held to the code --------------------------------------------

_HEADING = re.compile(r"^### `([^`]+)`\s*$", re.MULTILINE)
_AGENT_KEYS = {f.name for f in fields(AgentConfig)} - {"source"}
_MODEL_KEYS = {f"models[].{f.name}" for f in fields(ModelConfig)}


def _documented(text: str) -> set[str]:
    """Keys the document has a section for (model keys as ``models[].<key>``)."""
    return set(_HEADING.findall(text))


def _doc_gaps(text: str) -> tuple[set[str], set[str]]:
    """(fields with no section, sections or variables naming no field) of a config document."""
    documented = _documented(text)
    keys = _AGENT_KEYS | _MODEL_KEYS
    named = {var.removeprefix(ENV_PREFIX).lower()
             for var in re.findall(r"\bWARDEN_AGENT_[A-Z0-9_]+\b", text)}
    return keys - documented, (documented - keys) | (named - _AGENT_KEYS)


def test_every_config_field_is_documented() -> None:
    undocumented, _ = _doc_gaps(DOC.read_text(encoding="utf-8"))
    assert undocumented == set(), "fields missing from docs/agent-config.md"


def test_the_doc_names_no_key_that_does_not_exist() -> None:
    _, unknown = _doc_gaps(DOC.read_text(encoding="utf-8"))
    assert unknown == set(), "docs/agent-config.md names keys that do not exist"


def test_the_doc_checker_catches_planted_gaps() -> None:
    text = DOC.read_text(encoding="utf-8")
    planted = (text.replace("### `push_batch`", "### `push_batches`")
               .replace("### `models[].label`", "")
               + "\nEnv: `WARDEN_AGENT_NOPE`\n")
    undocumented, unknown = _doc_gaps(planted)
    assert undocumented == {"push_batch", "models[].label"}
    assert unknown == {"push_batches", "nope"}


def test_every_documented_env_variable_is_accepted(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    names = set(re.findall(r"Env:\s*`(WARDEN_AGENT_[A-Z0-9_]+)`", text))
    file_only = {"models", "alerts", "mlflow"}
    assert {n.removeprefix(ENV_PREFIX).lower() for n in names} == _AGENT_KEYS - file_only
    p = _write(tmp_path, BASE)
    for name in names:
        # Accepted as a key (a bad value may still be refused, but not as unknown).
        try:
            load_agent_config(p, env={name: "1"})
        except ConfigError as exc:
            assert "unknown variable" not in exc.message, name


def test_the_documented_example_loads(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) == 1
    cfg = load_agent_config(_write(tmp_path, blocks[0]), env={})
    assert cfg.node_id == "emea-1" and cfg.hub == "hub.example.com:7443"
    assert cfg.ca == tmp_path.resolve() / "ca.crt"
    assert [m.name for m in cfg.models] == ["credit-risk"]
    assert cfg.models[0].sensitive == ("gender", "age_band")
