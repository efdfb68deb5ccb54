"""The largest grant the size bounds allow can be enabled in one block, and the largest grant
the service accepts (at ``sessionward.domain.bounds.MAX_ENABLE_STORAGE_WORDS``) in one
transaction under EIP-7825's cap of 2**24 gas, with the service's 20 % estimate margin.

Every bound at its maximum (``sessionward.contracts.MAX_*`` and ``STRING_BOUNDS``, which a test
keeps equal to the Vyper constants): 16 permissions of 4 ``in`` rules of 16 values each (every
value is a fresh storage slot, the most expensive rule), 16 capabilities, 15 destinations, 8
token limits with periods, every string at its length bound. Measured as a fresh transaction
(intrinsic calldata gas included, refunds applied). Run with ``-s`` to see the figure.
"""

from __future__ import annotations

from typing import Any

import boa
import pytest
from contracts_support import (
    DAY,
    World,
    addr,
    intrinsic_gas,
    make_key,
    transaction_gas,
)

from sessionward import contracts
from sessionward.contracts.encoding import grant_struct
from sessionward.crypto.keccak import keccak256
from sessionward.domain import bounds
from sessionward.domain.catalog import default_catalog
from sessionward.domain.envelope import Envelope
from sessionward.domain.grant import enable_storage_words, validate_grant

pytestmark = pytest.mark.ignore_isolation  # measuring resets boa's access journal

BLOCK_GAS_LIMIT = 30_000_000
OFFCHAIN_ONLY = 0xFFFF
OP_IN = 4
ESTIMATE_MARGIN_PERCENT = 20  # the service's margin on the enable estimate (service/onchain.py)


def _padded(text: str, size: int) -> str:
    return (text + "x" * size)[:size]


def _largest_permission(index: int, world: World) -> dict[str, Any]:
    # A 128-byte function string whose selector is its own keccak prefix (the contract checks
    # only that pairing); distinct per permission so every (target, selector) is new.
    function = _padded(f"f{index}_", contracts.STRING_BOUNDS["function"] - 9) + "(uint256)"
    values = [
        (index * 1_000 + r * 100 + v + 1).to_bytes(32, "big")
        for r in range(contracts.MAX_RULES)
        for v in range(contracts.MAX_RULE_VALUES)
    ]
    return {
        # Not a limited token: a custom function on one is refused (TOKEN_FUNCTION_UNDEFINED).
        "target": addr(world.router) if index % 2 else addr(world.target),
        "selector": keccak256(function.encode())[:4],
        "function": function,
        "actionClass": _padded("custom", contracts.STRING_BOUNDS["actionClass"]),
        "maxValuePerCall": 1,
        "rules": [
            {
                "arg": _padded(f"arg{r}", contracts.STRING_BOUNDS["arg"]),
                "op": 4,
                "offset": 0,
                "values": values[
                    r * contracts.MAX_RULE_VALUES : (r + 1) * contracts.MAX_RULE_VALUES
                ],
            }
            for r in range(contracts.MAX_RULES)
        ],
    }


def _every_bound_grant(world: World, key: Any, permissions: list[dict[str, Any]]) -> dict[str, Any]:
    """A grant with ``permissions`` and every other field at its bound: 8 refilling token
    limits, 16 capabilities, 15 destinations, every string at its length bound."""
    grant: dict[str, Any] = world.wallet.grant(
        key,
        permissions=permissions,
        token_limits=[
            {
                "token": addr(world.token) if i == 0 else make_key(f"tok{i}").address,
                "limit": 10**30,
                "period": DAY,
            }
            for i in range(contracts.MAX_TOKEN_LIMITS)
        ],
        value_limit=10**18,
        value_period=DAY,
        max_uses=2**32 - 1,
        max_fee_wei=10**18,
        capabilities=[
            _padded(f"cap{i}", contracts.STRING_BOUNDS["capability"])
            for i in range(contracts.MAX_CAPABILITIES)
        ],
        destinations=[make_key(f"dest{i}").address for i in range(contracts.MAX_DESTINATIONS)],
    )
    grant["envelope"]["maxValueUsd"] = _padded("1", contracts.STRING_BOUNDS["maxValueUsd"])
    return grant


def _enable_measured(world: World, grant: dict[str, Any]) -> tuple[bytes, int, int, int]:
    """Enable ``grant`` as a fresh transaction: its call data, execution gas, receipt gas and
    the gas limit it needs (execution before refunds plus intrinsic gas, or the EIP-7623
    floor)."""
    wallet = world.wallet
    signature = wallet.sign_grant(grant)
    data = wallet.contract.enable_session.prepare_calldata(grant_struct(grant), signature)
    execution, total = transaction_gas(
        world.relayer, wallet.contract, data, lambda: wallet.enable(grant, signature)
    )
    tokens = sum(4 if b else 1 for b in data)
    return data, execution, total, max(execution + intrinsic_gas(data), 21_000 + 10 * tokens)


def test_the_largest_grant_the_bounds_allow_enables_within_a_30m_block(world: World) -> None:
    key = make_key("largest")
    permissions = [_largest_permission(i, world) for i in range(contracts.MAX_PERMISSIONS)]
    grant = _every_bound_grant(world, key, permissions)
    data, execution, total, _ = _enable_measured(world, grant)
    print(f"\nlargest grant: {len(data):,} bytes of call data, {total:,} gas ({execution:,} EVM)")
    assert world.wallet.state(key).status == 1
    assert total <= BLOCK_GAS_LIMIT


def _stored_words(grant: dict[str, Any]) -> int:
    """What ``enable_session`` writes, counted as the domain counts it
    (:func:`sessionward.domain.grant.enable_storage_words`)."""
    envelope = grant["envelope"]
    words = sum(3 if t["period"] else 1 for t in envelope["tokenLimits"])
    for permission in envelope["permissions"]:
        words += 2
        for rule in permission["rules"]:
            if rule["offset"] != OFFCHAIN_ONLY:
                words += len(rule["values"]) if rule["op"] in (4, 5) else 1
    return words


def _service_bound_permissions(world: World, budget: int) -> list[dict[str, Any]]:
    """16 permissions at their string bounds whose ``in`` rules store ``budget`` words in
    all; every other rule slot holds an off-chain-only rule of 16 values (no storage, but the
    most call data and hashing a rule can carry): the costliest grant at the word bound."""
    permissions = [_largest_permission(i, world) for i in range(contracts.MAX_PERMISSIONS)]
    for permission in permissions:
        for rule in permission["rules"]:
            stored = min(budget, contracts.MAX_RULE_VALUES)
            rule["values"] = rule["values"][: stored or contracts.MAX_RULE_VALUES]
            rule["op"] = OP_IN
            rule["offset"] = 0 if stored else OFFCHAIN_ONLY
            budget -= stored
    assert budget == 0
    return permissions


def test_the_largest_grant_the_service_accepts_enables_under_the_eip7825_cap(
    world: World,
) -> None:
    key = make_key("largest-accepted")
    fixed = 3 * contracts.MAX_TOKEN_LIMITS + 2 * contracts.MAX_PERMISSIONS
    budget = bounds.MAX_ENABLE_STORAGE_WORDS - fixed
    grant = _every_bound_grant(world, key, _service_bound_permissions(world, budget))
    assert _stored_words(grant) == bounds.MAX_ENABLE_STORAGE_WORDS
    data, execution, total, needed = _enable_measured(world, grant)
    print(
        f"\nlargest accepted grant ({bounds.MAX_ENABLE_STORAGE_WORDS} words): "
        f"{len(data):,} bytes of call data, {total:,} gas ({execution:,} EVM)"
    )
    print(f"gas limit needed {needed:,}, with the margin {needed * 6 // 5:,}")
    assert world.wallet.state(key).status == 1
    ceiling = bounds.enable_gas_ceiling(words=_stored_words(grant), calldata_bytes=len(data))
    assert needed <= ceiling <= bounds.MAX_TRANSACTION_GAS
    assert needed * (100 + ESTIMATE_MARGIN_PERCENT) // 100 <= bounds.MAX_TRANSACTION_GAS


def _accepted_envelope(world: World, chain_id: int, now: int) -> dict[str, Any]:
    """An envelope ``validate_grant`` accepts with exactly ``MAX_ENABLE_STORAGE_WORDS`` words:
    8 refilling token limits (24 words), 16 custom permissions (32 words) with ``in`` rules
    filling the rest, the function name at its length bound."""
    params = "(uint256,uint256,uint256,uint256)"
    name_len = contracts.STRING_BOUNDS["function"] - len(params)
    # Argument names as long as the envelope's 256-character function text leaves room for.
    names = [_padded(f"{c}_", 30) for c in "abcd"]
    limits = [make_key(f"limited{i}").address for i in range(contracts.MAX_TOKEN_LIMITS)]
    budget = bounds.MAX_ENABLE_STORAGE_WORDS - 3 * len(limits) - 2 * contracts.MAX_PERMISSIONS
    permissions = []
    for i in range(contracts.MAX_PERMISSIONS):
        rules = []
        for r, name in enumerate(names):
            take = min(budget, contracts.MAX_RULE_VALUES)
            budget -= take
            if take:
                values = [str(i * 1_000 + r * 100 + v + 1) for v in range(take)]
                rules.append({"arg": name, "op": "in", "values": values})
        function = _padded(f"f{i}_", name_len) + "(" + ",".join(f"uint256 {n}" for n in names)
        permissions.append(
            {"target": addr(world.target), "function": function + ")", "rules": rules}
        )
    assert budget == 0
    return {
        "capabilities": [],
        "allowedDestinations": [addr(world.target)],
        "permissions": permissions,
        "tokenLimits": [{"token": t, "limit": str(10**30), "period": DAY} for t in limits],
        "chainId": chain_id,
        "expiresAt": now + 3_000,
        "sessionKey": make_key("accepted").address,
    }


def test_the_largest_grant_validate_grant_accepts_enables_under_the_eip7825_cap(
    world: World,
) -> None:
    """Built by the domain (what the service would have the owner sign), not by hand."""
    wallet = world.wallet
    now = int(boa.env.timestamp)
    scope = validate_grant(
        Envelope.from_json(_accepted_envelope(world, wallet.chain_id, now)),
        catalog=default_catalog(),
        account=wallet.address,
        chain_id=wallet.chain_id,
        now=now,
    )
    words = enable_storage_words(scope.token_limits.values(), scope.permissions.values())
    assert words == bounds.MAX_ENABLE_STORAGE_WORDS
    grant = scope.grant_message(credential=b"\x01" * 32, nonce=next(wallet.nonces), epoch=0)
    assert _stored_words(grant) == words
    data, _, total, needed = _enable_measured(world, grant)
    print(f"\naccepted grant at the bound: {len(data):,} bytes, {total:,} gas, limit {needed:,}")
    assert wallet.state(make_key("accepted")).status == 1
    assert needed <= bounds.enable_gas_ceiling(words=words, calldata_bytes=len(data))
    assert needed * (100 + ESTIMATE_MARGIN_PERCENT) // 100 <= bounds.MAX_TRANSACTION_GAS


def test_the_computed_ceiling_covers_a_minimal_grant(world: World) -> None:
    """The ceiling an account still being deployed gets (bounds.enable_gas_ceiling) holds at
    the small end too: one permission without rules, no token limit."""
    wallet = world.wallet
    key = make_key("minimal")
    function = "transfer(address,uint256)"
    grant = wallet.grant(
        key,
        permissions=[
            {
                "target": addr(world.target),
                "selector": keccak256(function.encode())[:4],
                "function": function,
                "actionClass": "custom",
                "maxValuePerCall": 0,
                "rules": [],
            }
        ],
    )
    data, _, total, needed = _enable_measured(world, grant)
    ceiling = bounds.enable_gas_ceiling(words=_stored_words(grant), calldata_bytes=len(data))
    print(
        f"\nminimal grant: {len(data):,} bytes, {total:,} gas, limit {needed:,}, ceiling {ceiling:,}"
    )
    assert wallet.state(key).status == 1
    assert needed <= ceiling
