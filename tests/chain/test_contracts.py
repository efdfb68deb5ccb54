"""Contract bindings: compiled artifacts are cached on disk by content, calls are encoded and
decoded from the ABI."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionward.chain import contracts
from sessionward.chain.contracts import ContractArtifact, ReturnDataMalformed, compile_vyper

MAIN = """# pragma version ~=0.4.3
from . import helper

@external
@view
def answer() -> uint256:
    return helper.VALUE

@external
@view
def pair(a: uint256, b: address) -> (uint256, address):
    return a, b
"""


def _project(root: Path, value: int) -> Path:
    root.mkdir(exist_ok=True)
    (root / "helper.vy").write_text(f"VALUE: constant(uint256) = {value}\n")
    main = root / "Main.vy"
    main.write_text(MAIN)
    return main


def test_artifacts_are_reused_until_any_source_in_the_tree_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONWARD_CACHE_DIR", str(tmp_path / "cache"))
    compiled: list[Path] = []
    real = contracts._compile_uncached

    def counting(path: Path) -> dict[str, object]:
        compiled.append(path)
        return real(path)

    monkeypatch.setattr(contracts, "_compile_uncached", counting)
    main = _project(tmp_path / "src", 41)
    first = compile_vyper(main)
    again = compile_vyper(main)
    assert again == first and len(compiled) == 1
    _project(tmp_path / "src", 42)  # only the imported module changes
    changed = compile_vyper(main)
    assert len(compiled) == 2 and changed.runtime != first.runtime
    (tmp_path / "cache" / "vyper").mkdir(exist_ok=True)
    for entry in (tmp_path / "cache" / "vyper").glob("*.json"):
        entry.write_text("{corrupt")
    assert compile_vyper(main) == changed and len(compiled) == 3  # rebuilt, not trusted


def test_calls_are_encoded_and_results_decoded_from_the_abi(probe_code: ContractArtifact) -> None:
    assert probe_code.encode("store", 5) == bytes.fromhex("6057361d") + (5).to_bytes(32, "big")
    assert probe_code.encode("store(uint256)", 5) == probe_code.encode("store", 5)
    assert probe_code.decode_output("value", (7).to_bytes(32, "big")) == (7,)
    assert probe_code.deployment_code(7) == probe_code.initcode + (7).to_bytes(32, "big")
    with pytest.raises(KeyError):
        probe_code.encode("missing")
    with pytest.raises(ReturnDataMalformed):
        probe_code.decode_output("value", b"\x01")  # not a canonical uint256 encoding
