"""The networks setting: ``SESSIONWARD_NETWORKS`` (inline JSON, a JSON file or a TOML file) and
``[[networks]]`` in the configuration file; refused when ambiguous or unsafe; the single-chain
settings unchanged without it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sessionward.service.config import ConfigError, NetworkSettings, Settings

TWO = [
    {"name": "mainnet", "chain_id": 1, "rpc_url": "https://node.example/eth"},
    {
        "name": "base",
        "chain_id": 8453,
        "rpc_url": "https://node.example/base",
        "entry_point": "0x0000000071727De22E5E9d8BAf0edAc6f37da032",
        "relayer_key_env": "BASE_RELAYER_KEY",
        "deployment_file": "/etc/sessionward/base.json",
        "confirmations": 3,
        "fee_cap_wei": 10**15,
    },
]
EXPECTED = (
    NetworkSettings("mainnet", 1, rpc_url="https://node.example/eth"),
    NetworkSettings(
        "base",
        8453,
        rpc_url="https://node.example/base",
        entry_point="0x0000000071727De22E5E9d8BAf0edAc6f37da032",
        relayer_key_env="BASE_RELAYER_KEY",
        deployment_file=Path("/etc/sessionward/base.json"),
        confirmations=3,
        fee_cap_wei=10**15,
    ),
)
TOML = """
[[networks]]
name = "mainnet"
chain_id = 1
rpc_url = "https://node.example/eth"

[[networks]]
name = "base"
chain_id = 8453
rpc_url = "https://node.example/base"
entry_point = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"
relayer_key_env = "BASE_RELAYER_KEY"
deployment_file = "/etc/sessionward/base.json"
confirmations = 3
fee_cap_wei = 1000000000000000
"""


def test_without_networks_the_single_chain_settings_are_unchanged() -> None:
    settings = Settings.load({"SESSIONWARD_RPC_URL": "http://127.0.0.1:8545"})
    assert settings.networks == () and settings.rpc_url == "http://127.0.0.1:8545"
    assert Settings.load({}).networks == ()


def test_networks_are_read_from_inline_json(tmp_path: Path) -> None:
    settings = Settings.load({"SESSIONWARD_NETWORKS": json.dumps(TWO)})
    assert settings.networks == EXPECTED
    wrapped = Settings.load({"SESSIONWARD_NETWORKS": json.dumps({"networks": TWO})})
    assert wrapped.networks == EXPECTED


def test_networks_are_read_from_a_json_or_toml_file(tmp_path: Path) -> None:
    (tmp_path / "networks.json").write_text(json.dumps(TWO))
    (tmp_path / "networks.toml").write_text(TOML)
    for name in ("networks.json", "networks.toml"):
        loaded = Settings.load({"SESSIONWARD_NETWORKS": str(tmp_path / name)})
        assert loaded.networks == EXPECTED


def test_networks_are_read_from_the_configuration_file(tmp_path: Path) -> None:
    (tmp_path / "sessionward.toml").write_text(TOML)
    settings = Settings.load({}, file=tmp_path / "sessionward.toml")
    assert settings.networks == EXPECTED


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({1: {"name": "Mainnet"}}, "names must be distinct"),
        ({1: {"chain_id": 1}}, "chain ids must be distinct"),
        ({0: {"relayer_key_env": "BASE_RELAYER_KEY"}}, "cannot share a relayer key"),
        ({0: {"name": "1mainnet"}}, "starting with a letter"),
        ({0: {"chain_id": 0}}, "chain_id must be a positive integer"),
        ({0: {"chain_id": True}}, "chain_id must be an integer"),
        ({0: {"rpc_url": "ws://node"}}, "rpc_url must be an http"),
        ({0: {"entry_point": "0x1234"}}, "entry_point must be a 0x address"),
        ({0: {"confirmations": 0}}, "confirmations must be between 1"),
        ({0: {"fee_cap_wei": -1}}, "fee_cap_wei must be a positive integer"),
        ({0: {"relayer_key_file": "/k", "relayer_key_env": "K"}}, "are exclusive"),
        ({0: {"relayer_key_env": "not a name"}}, "must name an environment variable"),
        ({0: {"relayer_key": "0x11"}}, "unknown setting 'relayer_key'"),
        ({1: {"session_module": "module"}}, "session_module must be a 0x address"),
    ],
)
def test_an_invalid_network_is_refused_naming_the_setting(
    change: dict[int, dict[str, object]], message: str
) -> None:
    doc = [dict(entry) for entry in TWO]
    for index, values in change.items():
        doc[index].update(values)
    with pytest.raises(ConfigError, match=message):
        Settings.load({"SESSIONWARD_NETWORKS": json.dumps(doc)})


def test_networks_and_the_single_rpc_url_are_exclusive() -> None:
    with pytest.raises(ConfigError, match="exclusive"):
        Settings.load(
            {"SESSIONWARD_NETWORKS": json.dumps(TWO), "SESSIONWARD_RPC_URL": "http://x:8545"}
        )


def test_malformed_or_empty_networks_are_refused(tmp_path: Path) -> None:
    for text in ("[", "[]", '{"networks": 3}', "[3]", '[{"name": "a"}]'):
        with pytest.raises(ConfigError):
            Settings.load({"SESSIONWARD_NETWORKS": text})
    with pytest.raises(ConfigError, match="cannot read"):
        Settings.load({"SESSIONWARD_NETWORKS": str(tmp_path / "missing.toml")})


MODULE = "0x" + "ab" * 20


def test_the_session_module_is_a_setting_of_each_network_or_of_the_single_one() -> None:
    doc = [dict(entry) for entry in TWO]
    doc[1]["session_module"] = MODULE
    settings = Settings.load({"SESSIONWARD_NETWORKS": json.dumps(doc)})
    assert [n.session_module for n in settings.networks] == [None, MODULE]
    single = Settings.load({"SESSIONWARD_SESSION_MODULE": MODULE})
    assert single.session_module == MODULE
    with pytest.raises(ConfigError, match="session_module must be a 0x address"):
        Settings.load({"SESSIONWARD_SESSION_MODULE": "0x1234"})


def test_a_single_session_module_beside_networks_is_refused() -> None:
    with pytest.raises(ConfigError, match="go in each network"):
        Settings.load(
            {"SESSIONWARD_NETWORKS": json.dumps(TWO), "SESSIONWARD_SESSION_MODULE": MODULE}
        )
