"""The contract sources agree with the Python side (bounds, reason codes, EIP-712 digests), fit
EIP-170, keep the deployed storage layout and ABI, and document every external function."""

from __future__ import annotations

import json
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import boa
import pytest
from contracts_support import (
    RECORD,
    TRANSFER,
    ZERO_ADDRESS,
    Wallet,
    World,
    addr,
    batch,
    make_key,
    permission,
    record,
    rule,
    single,
    token_limit,
)
from vyper import ast as vy_ast
from vyper.ast.natspec import _parse_docstring
from vyper.exceptions import NatSpecSyntaxException

from sessionward import contracts
from sessionward.chain.artifacts import session_module
from sessionward.chain.contracts import compile_vyper
from sessionward.contracts import load_deployer, source_path
from sessionward.contracts.encoding import grant_struct
from sessionward.crypto import typed_data
from sessionward.crypto.keccak import keccak256
from sessionward.reasons import ReasonCode

# Reason codes only the contracts use (proposed for ReasonCode; see docs/contracts.md).
CONTRACT_ONLY_REASONS = {"NOT_AUTHORIZED", "STORAGE_LAYOUT_MISMATCH"}
EIP170_LIMIT = 24_576
# SessionAccount's storage layout and ABI as deployed: factory proxies and EIP-7702 accounts
# keep their storage across implementation upgrades, so a refactoring of the contract modules
# must leave both exactly as recorded here. Regenerate only for an intended, documented change.
INTERFACE_FIXTURE = Path(__file__).with_name("session_account_interface.json")
# Every contract and module SessionWard ships is documented; the demo contracts are not.
DOCUMENTED_SOURCES = sorted(
    p.stem for p in contracts.CONTRACTS_DIR.glob("*.vy") if not p.stem.startswith("Demo")
)


def _vyper_constants(name: str) -> dict[str, str]:
    text = source_path(name).read_text()
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*): constant\([^)]*\) = (.+)$", text, re.MULTILINE))


def test_python_bounds_equal_the_contract_bounds() -> None:
    grants = _vyper_constants("session_grants")
    execution = _vyper_constants("erc7579")
    auth = _vyper_constants("account_auth")
    for name in (
        "MAX_PERMISSIONS",
        "MAX_RULES",
        "MAX_RULE_VALUES",
        "MAX_CAPABILITIES",
        "MAX_DESTINATIONS",
        "MAX_TOKEN_LIMITS",
    ):
        assert int(grants[name]) == getattr(contracts, name), name
    assert int(execution["MAX_BATCH"]) == contracts.MAX_BATCH
    assert int(execution["MAX_EXECUTION_BYTES"]) == contracts.MAX_EXECUTION_BYTES
    assert int(auth["MAX_OWNER_SIGNATURE"]) == contracts.MAX_OWNER_SIGNATURE
    text = source_path("session_grants").read_text()
    for field, bound in contracts.STRING_BOUNDS.items():
        assert f"String[{bound}]" in text, field
    assert contracts.MAX_RULE_VALUES >= contracts.MAX_DESTINATIONS + 1  # [account, destinations...]


def test_every_revert_reason_constant_names_itself_and_is_a_protocol_code() -> None:
    constants = _vyper_constants("reasons")
    table = re.search(
        r'_TABLE: constant\(Bytes\[(\d+)\]\) = b"([A-Z_]+)"', source_path("reasons").read_text()
    )
    assert table is not None and int(table.group(1)) == len(table.group(2))
    codes = {name: eval(value) for name, value in constants.items() if not name.startswith("_")}
    assert len(codes) >= 25
    for name, code in codes.items():
        offset, length = code >> 8, code & 255
        assert table.group(2)[offset : offset + length] == name
        assert name in ReasonCode.__members__ or name in CONTRACT_ONLY_REASONS, name


@pytest.mark.parametrize(
    "name", ["TARGET_NOT_ALLOWED", "SESSION_UNKNOWN", "STORAGE_LAYOUT_MISMATCH"]
)
def test_a_reason_constant_reverts_with_its_name_as_the_error_string(
    harness: Any, name: str
) -> None:
    code = eval(_vyper_constants("reasons")[name])
    with boa.reverts(name):
        harness.fail(code)


@cache
def _compiled_interface(name: str) -> dict[str, Any]:
    """The ABI and storage/code layout vyper reports for the deployable ``name``."""
    from vyper.compiler import compile_from_file_input
    from vyper.compiler.input_bundle import FilesystemInputBundle

    path = source_path(name)
    bundle = FilesystemInputBundle([path.parent, *(Path(p) for p in sys.path if p)])
    output = compile_from_file_input(
        bundle.load_file(path), input_bundle=bundle, output_formats=["abi", "layout"]
    )
    return {"abi": output["abi"], **output["layout"]}


def test_the_account_storage_layout_is_the_deployed_one() -> None:
    recorded = json.loads(INTERFACE_FIXTURE.read_text())
    compiled = _compiled_interface("SessionAccount")
    assert compiled["storage_layout"] == recorded["storage_layout"]
    assert compiled["code_layout"] == recorded["code_layout"]


def test_the_account_abi_is_the_deployed_one_entry_for_entry() -> None:
    recorded = json.loads(INTERFACE_FIXTURE.read_text())
    assert _compiled_interface("SessionAccount")["abi"] == recorded["abi"]


def test_the_account_fits_the_eip170_code_size_limit() -> None:
    for name in contracts.DEPLOYABLE:
        assert len(compile_vyper(source_path(name)).runtime) < EIP170_LIMIT, name
    assert len(session_module().runtime) < EIP170_LIMIT, "SessionWardModule"


def test_the_account_has_no_initializer_to_front_run() -> None:
    names = {entry.get("name") for entry in compile_vyper(source_path("SessionAccount")).abi}
    assert not {n for n in names if n and "init" in n.lower()}
    assert {
        "execute",
        "validateUserOp",
        "isValidSignature",
        "enable_session",
        "execute_with_session",
    } <= names


def test_source_path_refuses_names_that_are_not_sources() -> None:
    assert source_path("SessionAccount.vy") == source_path("SessionAccount")
    for bad in ("../pyproject", "Nope", "sessions/../SessionAccount"):
        with pytest.raises(ValueError):
            source_path(bad)


def _rich_grant(world: World) -> dict[str, object]:
    wallet = world.wallet
    grant = wallet.grant(
        make_key("rich"),
        permissions=[
            permission(
                world.token,
                "transfer(address to, uint256 amount)",
                rules=[
                    rule(0, "in", world.relayer, wallet.address, arg="to"),
                    rule(1, "lte", 10**18, arg="amount"),
                ],
                action_class="erc20.transfer",
            ),
            permission(
                world.router,
                "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
                rules=[
                    rule(0xFFFF, "eq", addr(world.token), arg="path[0]"),
                    rule(3, "eq", wallet.address, arg="to"),
                ],
                action_class="swap.execute",
                max_value=7,
            ),
            permission(world.target, RECORD, rules=[rule(2, "not_in", 1, 2, 3)]),
        ],
        token_limits=[token_limit(world.token, 5 * 10**18, 3600), token_limit(world.token2, 1, 0)],
        value_limit=10**17,
        value_period=86_400,
        max_uses=9,
        revoker=world.relayer,
        capabilities=["erc20.transfer", "swap.execute", "ünïcode ✓"],
        destinations=[world.relayer, world.router],
    )
    grant["envelope"]["maxValueUsd"] = "250.5"
    grant["envelope"]["rateCount"] = 3
    grant["envelope"]["rateInterval"] = 60
    grant["envelope"]["maxFeeWei"] = 123456789
    return grant


def test_the_grant_digest_is_byte_for_byte_the_python_one(world: World) -> None:
    wallet = world.wallet
    grant = _rich_grant(world)
    expected = typed_data.grant_digest(wallet.chain_id, wallet.address, grant)
    assert wallet.contract.grant_digest(grant_struct(grant)) == expected
    empty = wallet.grant(make_key("empty"), capabilities=())
    assert wallet.contract.grant_digest(grant_struct(empty)) == typed_data.grant_digest(
        wallet.chain_id, wallet.address, empty
    )


def test_the_grant_digest_binds_the_chain_and_the_account(world: World, wallet: Wallet) -> None:
    grant = _rich_grant(world)
    on_chain_1 = wallet.contract.grant_digest(grant_struct(grant))
    boa.env.evm.patch.chain_id = 2
    assert wallet.contract.grant_digest(grant_struct(grant)) != on_chain_1
    assert wallet.contract.domain_separator() == typed_data.domain_separator_for(2, wallet.address)


def test_session_call_and_revocation_digests_are_the_python_ones(
    world: World, wallet: Wallet
) -> None:
    key = make_key("digest")
    call = record(world, 1, c=b"\x07" * 32, value=5)
    for mode, ec in (single(call), batch([call, call])):
        expected = typed_data.session_call_digest(
            wallet.chain_id,
            wallet.address,
            key.address,
            typed_data.execution_hash(mode, ec),
            41,
            1_900_000_000,
        )
        assert (
            wallet.contract.session_call_digest(key.address, mode, ec, 41, 1_900_000_000)
            == expected
        )
    for session_key in (key.address, ZERO_ADDRESS):
        expected = typed_data.revocation_digest(wallet.chain_id, wallet.address, session_key, 3, 12)
        assert wallet.contract.revocation_digest(session_key, 3, 12) == expected


def test_the_rpc_artifact_is_the_code_titanoboa_runs() -> None:
    compiled = compile_vyper(source_path("DemoRouter"))
    assert compiled.name == "DemoRouter"
    assert compiled.runtime == load_deployer("DemoRouter").compiler_data.bytecode_runtime
    assert compiled.runtime in compiled.initcode  # initcode = deploy preamble ‖ runtime
    assert any(entry.get("name") == "exactInputSingle" for entry in compiled.abi)


def _natspec_gaps(source: str) -> list[str]:
    """What each ``@external`` function of ``source`` lacks of snekmate-style NatSpec:
    ``@notice``, ``@dev``, one ``@param`` per parameter, ``@return`` when it returns. Tags are
    parsed by vyper's own NatSpec parser, so an unknown tag, a ``@param`` naming no parameter
    or more ``@return`` than values is a gap too."""
    gaps: list[str] = []
    for function in vy_ast.parse_to_ast(source).get_children(vy_ast.FunctionDef):
        if "external" not in {getattr(d, "id", None) for d in function.decorator_list}:
            continue
        params = tuple(a.arg for a in function.args.args)
        returns = function.returns
        count = len(returns.elements) if isinstance(returns, vy_ast.Tuple) else int(bool(returns))
        docstring = getattr(function, "doc_string", None)
        if docstring is None:
            gaps.append(f"{function.name}: no docstring")
            continue
        try:
            fields = _parse_docstring(source, docstring.value, ("title", "license"), params, count)
        except NatSpecSyntaxException as exc:
            gaps.append(f"{function.name}: {exc.message}")
            continue
        for tag, key in (("@notice", "notice"), ("@dev", "details")):
            if key not in fields:
                gaps.append(f"{function.name}: no {tag}")
        for param in params:
            if param not in fields.get("params", {}):
                gaps.append(f"{function.name}: no @param {param}")
        if count and not fields.get("returns"):
            gaps.append(f"{function.name}: no @return")
    return gaps


# The shipped sources, the ERC-7579 module's included.
DOCUMENTED_PATHS = [source_path(name) for name in DOCUMENTED_SOURCES] + sorted(
    (contracts.CONTRACTS_DIR / "erc7579_module").glob("*.vy")
)


@pytest.mark.parametrize("path", DOCUMENTED_PATHS, ids=lambda p: p.stem)
def test_every_external_function_has_notice_dev_params_and_return(path: Path) -> None:
    assert _natspec_gaps(path.read_text()) == []


@pytest.mark.parametrize("path", DOCUMENTED_PATHS, ids=lambda p: p.stem)
def test_every_contract_and_module_states_its_title_and_notice(path: Path) -> None:
    source = path.read_text()
    name = path.stem
    docstring = getattr(vy_ast.parse_to_ast(source), "doc_string", None)
    assert docstring is not None, name
    fields = _parse_docstring(source, docstring.value, ("param", "return"))
    assert {"title", "notice"} <= fields.keys(), name


def test_the_natspec_check_reports_each_missing_tag() -> None:
    source = '''
@external
def bare(a: uint256) -> uint256:
    return a


@external
def partial(a: uint256, b: address) -> (uint256, bool):
    """
    @notice Something.
    @param a The first.
    """
    return a, True


@external
def wrong(a: uint256):
    """
    @notice Something.
    @dev Keeps nothing.
    @param c Not a parameter.
    """
    pass


@internal
def _hidden(a: uint256) -> uint256:
    return a
'''
    assert _natspec_gaps(source) == [
        "bare: no docstring",
        "partial: no @dev",
        "partial: no @param b",
        "partial: no @return",
        "wrong: Method has no parameter 'c'",
    ]
    assert len(DOCUMENTED_SOURCES) >= 13 and "sessions" in DOCUMENTED_SOURCES


# The sessions modules by how they touch the account's storage (docs/design.md, "Sessions
# modules and storage"): the seam a standalone ERC-7579 module would replace.
SESSION_STORAGE_MODULE = "sessions"
SESSION_STORAGE_USERS = {"session_enable", "session_enforce", "session_fees", "session_revocation"}
STATELESS_SESSION_MODULES = {"session_grants", "session_catalog"}


def _storage_and_uses(name: str) -> tuple[set[str], set[str]]:
    """The storage variables ``name`` declares and the modules it declares ``uses:`` of."""
    module = vy_ast.parse_to_ast(source_path(name).read_text())
    storage = {
        decl.target.id
        for decl in module.get_children(vy_ast.VariableDecl)
        if not (decl.is_constant or decl.is_immutable or decl.is_transient)
    }
    used = set()
    for decl in module.get_children(vy_ast.UsesDecl):
        annotation = decl.annotation
        items = annotation.elements if isinstance(annotation, vy_ast.Tuple) else [annotation]
        used |= {item.id for item in items}
    return storage, used


def test_session_storage_is_declared_only_in_the_storage_module() -> None:
    session_modules = {n for n in DOCUMENTED_SOURCES if n == "sessions" or n.startswith("session_")}
    assert session_modules == (
        {SESSION_STORAGE_MODULE} | SESSION_STORAGE_USERS | STATELESS_SESSION_MODULES
    )
    storage, used = _storage_and_uses(SESSION_STORAGE_MODULE)
    assert len(storage) == 14 and used == set()
    for name in SESSION_STORAGE_USERS:
        storage, used = _storage_and_uses(name)
        assert storage == set() and SESSION_STORAGE_MODULE in used, name
    for name in STATELESS_SESSION_MODULES:
        assert _storage_and_uses(name) == (set(), set()), name


def test_a_session_word_sits_at_keccak_of_the_map_slot_then_the_key(
    world: World, wallet: Wallet
) -> None:
    """Vyper derives ``HashMap`` slots as keccak256(slot ‖ key), Solidity as keccak256(key ‖
    slot): keyed by an address, Vyper's slot is not ERC-7562 "associated" with it."""
    key = make_key("slot")
    wallet.enable(wallet.grant(key, permissions=[permission(world.token, TRANSFER)]))
    slot = json.loads(INTERFACE_FIXTURE.read_text())["storage_layout"]["sessions"]
    base = slot["_session_state"]["slot"].to_bytes(32, "big")
    padded_key = bytes(12) + bytes.fromhex(key.address[2:])
    vyper_slot = int.from_bytes(keccak256(base + padded_key), "big")
    solidity_slot = int.from_bytes(keccak256(padded_key + base), "big")
    state = boa.env.get_storage(wallet.address, vyper_slot)
    assert state & 0xFF == 1  # STATUS_ACTIVE
    assert boa.env.get_storage(wallet.address, solidity_slot) == 0
