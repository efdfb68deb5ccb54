"""Specification of the action catalog (sessionward.domain.catalog and catalog.toml).

The shipped catalog is data the whole policy rests on: its tiers, its never-delegable set and
what each function moves out of the account. A catalog that contradicts itself is refused when
it is loaded, never at decision time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from domain_support import (
    APPROVE,
    CHAIN_ID,
    EXACT_INPUT_SINGLE,
    INCREASE_ALLOWANCE,
    INSTALL_MODULE,
    MULTISEND,
    PERMIT,
    PERMIT2,
    PERMIT2_APPROVE,
    ROUTER_A,
    SET_APPROVAL_FOR_ALL,
    SWAP_V2,
    TOKEN_X,
    TRANSFER,
    TRANSFER_FROM,
    TRANSFER_OWNERSHIP,
    UPGRADE_TO_AND_CALL,
    USDC,
    WETH,
    WITHDRAW,
)

from sessionward.domain.abi import parse_signature, validate_argument_path
from sessionward.domain.catalog import (
    TARGET,
    Catalog,
    CatalogError,
    KnownContract,
    Outflow,
    Tier,
    catalog_from_documents,
    default_catalog,
    load_catalog,
)

MINIMAL: dict[str, Any] = {
    "tiers": {"safe": {"max_ttl": 86400}, "guarded": {"max_ttl": 3600}},
    "actions": {
        "erc20.transfer": {
            "tier": "guarded",
            "target_kind": "erc20",
            "functions": [
                {
                    "signature": "transfer(address to,uint256 amount)",
                    "recipients": ["to"],
                    "outflow": {"token": "$target", "amount": "amount"},
                }
            ],
        }
    },
}


def _with(**changes: Any) -> dict[str, Any]:
    doc = {**MINIMAL, **changes}
    return doc


# --- the shipped catalog -------------------------------------------------------------------


def test_tier_ttls_are_one_hour_guarded_and_one_day_safe() -> None:
    catalog = default_catalog()
    assert catalog.max_ttl == {Tier.GUARDED: 3600, Tier.SAFE: 86400}


@pytest.mark.parametrize(
    "signature",
    [TRANSFER_OWNERSHIP, SET_APPROVAL_FOR_ALL, INSTALL_MODULE, UPGRADE_TO_AND_CALL],
    ids=lambda s: s.name,
)
def test_owner_module_upgrade_and_approve_all_functions_are_forbidden(signature: Any) -> None:
    assert signature.selector in default_catalog().forbidden


@pytest.mark.parametrize(
    "text",
    [
        "renounceOwnership()",
        "addOwnerWithThreshold(address,uint256)",
        "removeOwner(address,address,uint256)",
        "swapOwner(address,address,address)",
        "changeThreshold(uint256)",
        "enableModule(address)",
        "disableModule(address,address)",
        "uninstallModule(uint256,address,bytes)",
        "upgradeTo(address)",
        "setGuard(address)",
        "setModuleGuard(address)",
        "setFallbackHandler(address)",
        "execTransactionFromModule(address,uint256,bytes,uint8)",
    ],
)
def test_the_rest_of_the_never_delegable_set_is_forbidden(text: str) -> None:
    assert parse_signature(text).selector in default_catalog().forbidden


def test_forbidden_classes_name_every_never_delegable_class() -> None:
    assert default_catalog().forbidden_classes() == frozenset(
        {
            "account.ownership",
            "account.modules",
            "account.upgrade",
            "account.guards",
            "nft.approveAll",
        }
    )


def test_no_delegable_function_is_also_forbidden_or_in_the_forbidden_tier() -> None:
    catalog = default_catalog()
    for action in catalog.actions.values():
        assert action.tier in (Tier.SAFE, Tier.GUARDED)
        for fn in action.functions:
            assert fn.signature.selector not in catalog.forbidden
            assert fn.action_class == action.name and fn.tier is action.tier


def test_every_approval_like_function_refuses_the_unlimited_amount() -> None:
    catalog = default_catalog()
    expected = {
        "erc20.approve": "amount",
        "erc20.increaseAllowance": "addedValue",
        "erc20.permit": "value",
        "permit2.approve": "amount",
        "permit2.permit": "permitSingle.details.amount",
    }
    for name, path in expected.items():
        (fn,) = catalog.actions[name].functions
        assert fn.forbid_max == path


def test_outflows_say_which_token_and_amount_leave_the_account() -> None:
    catalog = default_catalog()

    def outflow(name: str, index: int = 0) -> Outflow | None:
        return catalog.actions[name].functions[index].outflow

    assert outflow("erc20.transfer") == Outflow(TARGET, "amount")
    assert outflow("erc20.transferFrom") == Outflow(TARGET, "amount", owner="from")
    assert outflow("erc20.approve") == Outflow(TARGET, "amount")
    assert outflow("erc20.increaseAllowance") == Outflow(TARGET, "addedValue")
    assert outflow("erc20.permit") == Outflow(TARGET, "value", owner="owner")
    assert outflow("permit2.approve") == Outflow("token", "amount")
    assert outflow("weth.withdraw") == Outflow(TARGET, "wad")
    assert outflow("weth.deposit") is None
    swaps = catalog.actions["swap.execute"].functions
    assert swaps[0].outflow == Outflow("path[0]", "amountIn")
    assert all(fn.outflow == Outflow("params.tokenIn", "params.amountIn") for fn in swaps[1:])


def test_catalog_signatures_match_the_well_known_selectors() -> None:
    catalog = default_catalog()
    selectors = {
        "erc20.transfer": TRANSFER.selector,
        "erc20.transferFrom": TRANSFER_FROM.selector,
        "erc20.approve": APPROVE.selector,
        "erc20.increaseAllowance": INCREASE_ALLOWANCE.selector,
        "erc20.permit": PERMIT.selector,
        "permit2.approve": PERMIT2_APPROVE.selector,
        "weth.withdraw": WITHDRAW.selector,
    }
    for name, selector in selectors.items():
        assert catalog.actions[name].functions[0].signature.selector == selector
    assert TRANSFER.selector.hex() == "a9059cbb"
    assert APPROVE.selector.hex() == "095ea7b3"
    assert TRANSFER_FROM.selector.hex() == "23b872dd"
    assert SWAP_V2.selector.hex() == "38ed1739"
    assert EXACT_INPUT_SINGLE.selector.hex() == "414bf389"
    swap_selectors = {f.signature.selector for f in catalog.actions["swap.execute"].functions}
    assert {SWAP_V2.selector, EXACT_INPUT_SINGLE.selector} <= swap_selectors


def test_recipient_paths_point_at_address_arguments() -> None:
    for action in default_catalog().actions.values():
        for fn in action.functions:
            for path in fn.recipients:
                assert validate_argument_path(fn.signature, path).canonical == "address"


def test_only_weth_deposit_carries_native_value() -> None:
    payable = {
        fn.action_class
        for action in default_catalog().actions.values()
        for fn in action.functions
        if fn.payable
    }
    assert payable == {"weth.deposit"}


def test_known_contracts_are_indexed_by_chain_and_address(catalog: Catalog) -> None:
    usdc = catalog.contract(CHAIN_ID, USDC)
    assert usdc is not None and usdc.symbol == "USDC" and usdc.decimals == 6
    assert catalog.kinds_of(CHAIN_ID, WETH) == frozenset({"erc20", "weth"})
    assert catalog.kinds_of(CHAIN_ID, ROUTER_A) == frozenset({"router"})
    assert catalog.kinds_of(CHAIN_ID, PERMIT2) == frozenset({"permit2"})
    assert catalog.kinds_of(10, USDC) == frozenset()
    assert catalog.contract(10, USDC) is None
    assert catalog.multisend_addresses(CHAIN_ID) == frozenset({MULTISEND})
    assert catalog.multisend_addresses(10) == frozenset()


def test_with_contracts_returns_a_new_catalog_and_leaves_the_original_alone() -> None:
    base = default_catalog()
    extended = base.with_contracts([KnownContract(CHAIN_ID, TOKEN_X, frozenset({"erc20"}), "X")])
    assert extended.kinds_of(CHAIN_ID, TOKEN_X) == frozenset({"erc20"})
    assert base.kinds_of(CHAIN_ID, TOKEN_X) == frozenset()
    assert extended.actions is base.actions


def test_default_catalog_is_loaded_once() -> None:
    assert default_catalog() is default_catalog()


# --- loading and refusing catalogs ---------------------------------------------------------


def test_a_minimal_catalog_loads_and_is_indexed_by_selector() -> None:
    catalog = catalog_from_documents([MINIMAL])
    (fn,) = catalog.by_selector[TRANSFER.selector]
    assert fn.action_class == "erc20.transfer" and fn.recipients == ("to",)


def test_later_documents_win_for_the_same_names() -> None:
    override = {"tiers": {"guarded": {"max_ttl": 600}}}
    assert catalog_from_documents([MINIMAL, override]).max_ttl[Tier.GUARDED] == 600


@pytest.mark.parametrize(
    "document,message",
    [
        (_with(tiers={"safe": {"max_ttl": 86400}}), "guarded"),
        (_with(tiers={"safe": {"max_ttl": 1}, "guarded": {"max_ttl": 0}}), "max_ttl"),
        (_with(tiers={"safe": {"max_ttl": 1}, "guarded": {"max_ttl": "1h"}}), "max_ttl"),
        (
            _with(
                tiers={
                    "safe": {"max_ttl": 1},
                    "guarded": {"max_ttl": 1},
                    "forbidden": {"max_ttl": 1},
                }
            ),
            "forbidden",
        ),
        (
            _with(
                tiers={"safe": {"max_ttl": 1}, "guarded": {"max_ttl": 1}, "risky": {"max_ttl": 1}}
            ),
            "risky",
        ),
        (
            _with(actions={"x": {"tier": "forbidden", "functions": [{"signature": "f()"}]}}),
            "forbidden",
        ),
        (_with(actions={"x": {"tier": "guarded", "functions": []}}), "at least one function"),
        (
            _with(actions={"x": {"tier": "guarded", "functions": [{"signature": "f(uint256"}]}}),
            "actions.x",
        ),
        (
            _with(
                actions={
                    "x": {
                        "tier": "guarded",
                        "functions": [{"signature": "f(address to)", "recipients": ["recipient"]}],
                    }
                }
            ),
            "recipient",
        ),
        (
            _with(
                actions={
                    "x": {
                        "tier": "guarded",
                        "functions": [
                            {
                                "signature": "f(address to)",
                                "outflow": {"token": "$target", "amount": "amount"},
                            }
                        ],
                    }
                }
            ),
            "amount",
        ),
        (
            _with(forbidden=[{"signature": "transfer(address,uint256)", "class": "x"}]),
            "both delegable",
        ),
        (_with(contracts=[{"chain_id": 1, "address": "0x1234"}]), "address"),
        (_with(contracts=[{"chain_id": 0, "address": USDC}]), "chain_id"),
    ],
    ids=[
        "missing-tier",
        "zero-ttl",
        "text-ttl",
        "forbidden-ttl",
        "unknown-tier",
        "forbidden-action",
        "no-functions",
        "bad-signature",
        "bad-recipient-path",
        "bad-outflow-path",
        "delegable-and-forbidden",
        "bad-contract-address",
        "bad-chain-id",
    ],
)
def test_inconsistent_catalogs_are_refused_at_load_time(
    document: dict[str, Any], message: str
) -> None:
    with pytest.raises(CatalogError) as info:
        catalog_from_documents([document])
    assert message in str(info.value)


def test_a_user_file_extends_the_shipped_catalog(tmp_path: Path) -> None:
    extra = tmp_path / "catalog.toml"
    extra.write_text(
        "[tiers.guarded]\nmax_ttl = 1800\n\n"
        "[[contracts]]\nchain_id = 1\n"
        f'address = "{TOKEN_X}"\nkinds = ["erc20"]\nname = "Token X"\nsymbol = "TKX"\n',
        encoding="utf-8",
    )
    catalog = load_catalog(extra)
    assert catalog.max_ttl == {Tier.GUARDED: 1800, Tier.SAFE: 86400}
    assert catalog.kinds_of(CHAIN_ID, TOKEN_X) == frozenset({"erc20"})
    assert catalog.actions.keys() == default_catalog().actions.keys()


def test_unreadable_or_invalid_user_files_are_catalog_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError):
        load_catalog(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[tiers.guarded\n", encoding="utf-8")
    with pytest.raises(CatalogError):
        load_catalog(broken)
