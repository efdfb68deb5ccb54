"""Shared support of the domain tests: addresses, signatures, request builders, usage bookkeeping.

Test modules import these names with ``from domain_support import ...``; the fixtures built on
them live in this folder's ``conftest.py``. The scenario-wide addresses come from
``tests/scenario.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from scenario import (  # noqa: F401 - re-exported for the test modules
    ACCOUNT,
    CHAIN_ID,
    MERCHANT,
    NOW,
    OTHER_ACCOUNT,
    ROUTER_A,
    ROUTER_B,
    SEED_EXPIRY,
    SESSION_KEY,
    STRANGER,
    TOKEN_X,
    USDC,
    WETH,
)
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import (
    Call,
    encode_batch_execution,
    encode_execute,
    encode_single_execution,
    mode_batch,
    mode_single,
)
from sessionward.domain.catalog import Catalog
from sessionward.domain.decision import Decision, Violation
from sessionward.domain.envelope import Envelope
from sessionward.domain.grant import Scope, validate_grant
from sessionward.domain.policy import CallRequest
from sessionward.domain.prices import PriceSource
from sessionward.domain.usage import Charge, Counter, Usage
from sessionward.reasons import ReasonCode

# --- more addresses of this folder -----------------------------------------------------------
ZERO = "0x" + "00" * 20
TOKEN_Y = "0x7171717171717171717171717171717171717171"  # unknown to every catalog
DAI = "0x6b175474e89094c44da98b954eedeac495271d0f"
PERMIT2 = "0x000000000022d473030f116ddee9f6b43ac78ba3"
MULTISEND = "0x40a2accbd92bca938b02010e17a5b8929b49130d"
ROUTER_A_CHECKSUM = (
    "0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D"  # EIP-55 form, as Etherscan shows it
)

USDC_UNIT = 10**6
ETHER = 10**18
MAX_UINT256 = 2**256 - 1

# --- function signatures -------------------------------------------------------------------
TRANSFER = parse_signature("transfer(address to,uint256 amount)")
TRANSFER_FROM = parse_signature("transferFrom(address from,address to,uint256 amount)")
APPROVE = parse_signature("approve(address spender,uint256 amount)")
INCREASE_ALLOWANCE = parse_signature("increaseAllowance(address spender,uint256 addedValue)")
PERMIT = parse_signature(
    "permit(address owner,address spender,uint256 value,uint256 deadline,uint8 v,bytes32 r,bytes32 s)"
)
PERMIT2_APPROVE = parse_signature(
    "approve(address token,address spender,uint160 amount,uint48 expiration)"
)
SWAP_V2 = parse_signature(
    "swapExactTokensForTokens(uint256 amountIn,uint256 amountOutMin,address[] path,address to,uint256 deadline)"
)
EXACT_INPUT_SINGLE = parse_signature(
    "exactInputSingle((address tokenIn,address tokenOut,uint24 fee,address recipient,uint256 deadline,"
    "uint256 amountIn,uint256 amountOutMinimum,uint160 sqrtPriceLimitX96) params)"
)
DEPOSIT = parse_signature("deposit()")
WITHDRAW = parse_signature("withdraw(uint256 wad)")
TRANSFER_OWNERSHIP = parse_signature("transferOwnership(address newOwner)")
SET_APPROVAL_FOR_ALL = parse_signature("setApprovalForAll(address operator,bool approved)")
INSTALL_MODULE = parse_signature(
    "installModule(uint256 moduleTypeId,address module,bytes initData)"
)
UPGRADE_TO_AND_CALL = parse_signature("upgradeToAndCall(address newImplementation,bytes data)")


def seed_doc(**overrides: Any) -> dict[str, Any]:
    """The seed envelope of docs/design.md section 3 (same as the root ``seed_document``).

    ``overrides`` replace fields; an override of ``None`` removes the field.
    """
    doc: dict[str, Any] = {
        "sessionKey": SESSION_KEY,
        "capabilities": ["swap.execute"],
        "maxValueUsd": 500,
        "allowedDestinations": [ROUTER_A],
        "chainId": CHAIN_ID,
        "expiresAt": SEED_EXPIRY,
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def compile_scope(
    catalog: Catalog,
    *,
    now: int = NOW,
    account: str = ACCOUNT,
    chain_id: int = CHAIN_ID,
    credential_expires_at: int | None = None,
    session_key: str | None = None,
    prices: PriceSource | None = None,
    **overrides: Any,
) -> Scope:
    """Validate ``seed_doc(**overrides)`` (raises ``GrantRefused`` like the service would; the
    service also passes its price source, which turns a USD cap into on-chain limits)."""
    return validate_grant(
        Envelope.from_json(seed_doc(**overrides)),
        catalog=catalog,
        account=account,
        chain_id=chain_id,
        now=now,
        credential_expires_at=credential_expires_at,
        session_key=session_key,
        prices=prices,
    )


# --- calldata ------------------------------------------------------------------------------


def transfer(to: str, amount: int) -> bytes:
    return encode_call(TRANSFER, (to, amount))


def transfer_from(owner: str, to: str, amount: int) -> bytes:
    return encode_call(TRANSFER_FROM, (owner, to, amount))


def approve(spender: str, amount: int) -> bytes:
    return encode_call(APPROVE, (spender, amount))


def increase_allowance(spender: str, amount: int) -> bytes:
    return encode_call(INCREASE_ALLOWANCE, (spender, amount))


def permit(owner: str, spender: str, value: int, deadline: int = SEED_EXPIRY) -> bytes:
    return encode_call(PERMIT, (owner, spender, value, deadline, 27, b"\x01" * 32, b"\x02" * 32))


def permit2_approve(token: str, spender: str, amount: int, expiration: int = SEED_EXPIRY) -> bytes:
    return encode_call(PERMIT2_APPROVE, (token, spender, amount, expiration))


def swap_v2(
    amount_in: int,
    *,
    path: Sequence[str] = (USDC, WETH),
    to: str = ACCOUNT,
    deadline: int = NOW + 60,
) -> bytes:
    return encode_call(SWAP_V2, (amount_in, 1, list(path), to, deadline))


def exact_input_single(amount_in: int, *, token_in: str = USDC, recipient: str = ACCOUNT) -> bytes:
    params = (token_in, WETH, 3000, recipient, NOW + 60, amount_in, 1, 0)
    return encode_call(EXACT_INPUT_SINGLE, (params,))


def deposit() -> bytes:
    return encode_call(DEPOSIT, ())


def call_request(
    to: str,
    data: bytes,
    value: int = 0,
    *,
    chain_id: int = CHAIN_ID,
    account: str = ACCOUNT,
    fee_wei: int = 0,
) -> CallRequest:
    """A plain one-call request from ``account``."""
    return CallRequest(
        chain_id=chain_id, account=account, to=to, value=value, data=data, fee_wei=fee_wei
    )


def batch_request(calls: Sequence[Call], *, mode: bytes | None = None) -> CallRequest:
    """``account.execute(mode_batch, abi.encode(calls))``."""
    execution = encode_batch_execution(calls)
    return call_request(ACCOUNT, encode_execute(mode or mode_batch(), execution))


def single_request(call: Call, *, mode: bytes | None = None) -> CallRequest:
    """``account.execute(mode_single, abi.encodePacked(call))``."""
    return call_request(
        ACCOUNT, encode_execute(mode or mode_single(), encode_single_execution(call))
    )


# --- usage bookkeeping ---------------------------------------------------------------------


def usage_of(**buckets: tuple[int, int]) -> Usage:
    """``usage_of(uses=(0, 3))``: a usage whose bucket ``uses`` holds 3 in window 0.

    Token buckets are written ``token_<address>`` (``token:`` is not a keyword-friendly name).
    """
    counters = {
        name.replace("token_", "token:", 1): Counter(window, amount)
        for name, (window, amount) in buckets.items()
    }
    return Usage(counters)


def apply_charges(usage: Usage, charges: Sequence[Charge]) -> Usage:
    """The usage after reserving ``charges``, with the window rule of ``usage.py``: a counter of
    an older window reads as zero, so a charge in a newer window starts the bucket afresh."""
    counters = dict(usage.counters)
    for charge in charges:
        counters[charge.bucket] = Counter(
            charge.window, usage_spent(counters, charge.bucket, charge.window) + charge.amount
        )
    return Usage(counters)


def usage_spent(counters: Mapping[str, Counter], bucket: str, window: int) -> int:
    counter = counters.get(bucket)
    return counter.amount if counter is not None and counter.window == window else 0


def reservable(usage: Usage, charges: Sequence[Charge]) -> bool:
    """Whether a store holding ``usage`` would accept every charge (total stays within limit)."""
    return all(usage.spent(c.bucket, c.window) + c.amount <= c.limit for c in charges)


def snapshot(usage: Usage) -> dict[str, Counter]:
    return dict(usage.counters)


LIMIT_CODES = frozenset(
    {
        ReasonCode.VALUE_LIMIT_EXCEEDED,
        ReasonCode.TOKEN_LIMIT_EXCEEDED,
        ReasonCode.USD_LIMIT_EXCEEDED,
        ReasonCode.USAGE_LIMIT_REACHED,
        ReasonCode.RATE_LIMITED,
        ReasonCode.FEE_LIMIT_EXCEEDED,
    }
)


def assert_refused(
    decision: Decision,
    code: ReasonCode,
    *,
    usage: Usage,
    before: Mapping[str, Counter] | None = None,
    call_index: int | None = None,
) -> Violation:
    """The security-test contract: ``decision`` denies with ``code`` and nothing changed.

    Nothing changed means: the decision is not allowed and carries the violation, ``usage``
    still holds exactly ``before`` (the :func:`decide` fixture also snapshots every usage it
    passes in, before evaluating) and, for a limit code, the charge behind it could not be
    reserved against ``usage`` either. Returns the first violation with ``code`` (at
    ``call_index`` when given).
    """
    assert not decision.allowed
    assert code in decision.reasons, decision.violations
    if before is not None:
        assert dict(usage.counters) == dict(before)
    matching = [
        v
        for v in decision.violations
        if v.code is code and (call_index is None or v.call_index == call_index)
    ]
    assert matching, f"no {code} at call {call_index}: {decision.violations}"
    if code in LIMIT_CODES and any(c.reason is code for c in decision.charges):
        assert not reservable(usage, [c for c in decision.charges if c.reason is code])
    return matching[0]


# --- fixtures ------------------------------------------------------------------------------


def usd(amount: int | str) -> int:
    """Micro-USD of a whole-dollar (or decimal string) amount."""
    return int(Decimal(amount) * 1_000_000)
