"""SessionAccount behaviour through the ``Chain`` protocol, the same tests on the in-process
chain and on anvil: factory accounts, owner-signed grants, relayed session calls that move real
balances, every refusal class with its revert reason read from the mined receipt, revocation,
an ERC-1271 owner, and EIP-7702 with a real type-4 transaction.

Refusal tests assert the exact reason code AND that nothing moved.
"""

from __future__ import annotations

from typing import Any

import pytest
from onchain_support import (
    APPROVE,
    DELEGATECALL_MODE,
    ONE_ETH,
    RECORD,
    SWAP_V2,
    TESTS_CONTRACTS,
    TRANSFER,
    TRY_MODE,
    TX_GAS,
    USDX,
    Account,
    Key,
    Stage,
    batch,
    calldata,
    make_stage,
    permission,
    random_address,
    rule,
    single,
)

from sessionward.chain.contracts import compile_vyper, deploy, wait_for_receipt
from sessionward.chain.ethereum_transactions import SetCodeTransaction, sign_authorization
from sessionward.chain.interface import DevChain, Receipt
from sessionward.contracts.encoding import grant_struct
from sessionward.crypto import typed_data
from sessionward.domain.calldata import Call, encode_batch_execution, mode_batch


@pytest.fixture(scope="module")
def stage(chain: DevChain) -> Stage:
    return make_stage(chain)


def _refused(receipt: Receipt, reason: str) -> None:
    assert not receipt.succeeded, f"expected {reason}, the call succeeded"
    assert receipt.revert_reason == reason


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def merchant() -> str:
    return random_address()


@pytest.fixture(scope="module")
def shop(stage: Stage, merchant: str) -> tuple[Account, Key]:
    """An account whose session may pay the merchant at most 50 USDX per transfer, 100 USDX in
    all, and call the recorder with at most 10 wei per call, 15 wei in all."""
    account = stage.new_account()
    session = Key()
    usdx, recorder = stage.demo.token("USDX"), stage.recorder.address
    grant = account.grant(
        session,
        [
            permission(usdx, TRANSFER, rules=[rule(0, "in", merchant), rule(1, "lte", 50 * USDX)]),
            permission(recorder, RECORD, max_value=10),
        ],
        token_limits=[(usdx, 100 * USDX, 0)],
        value_limit=15,
    )
    assert account.enable(grant).succeeded
    return account, session


class Nonces:
    """Fresh call nonces for the shared shop session (tests never reuse one by accident)."""

    def __init__(self) -> None:
        self._next = 1000

    def __call__(self) -> int:
        self._next += 1
        return self._next


@pytest.fixture(scope="module")
def nonce() -> Nonces:
    return Nonces()


def _pay(stage: Stage, to: str, amount: int) -> Call:
    return Call(stage.demo.token("USDX"), 0, calldata(TRANSFER, to, amount))


def _record(stage: Stage, value: int) -> Call:
    return Call(stage.recorder.address, value, calldata(RECORD, 7, random_address(), bytes(32)))


# ------------------------------------------------------------------------------ happy paths


def test_a_factory_account_runs_an_owner_granted_token_transfer(
    stage: Stage, merchant: str
) -> None:
    account = stage.new_account()
    session = Key()
    usdx = stage.demo.token("USDX")
    grant = account.grant(
        session,
        [permission(usdx, TRANSFER, rules=[rule(0, "in", merchant)])],
        token_limits=[(usdx, 100 * USDX, 0)],
    )
    assert account.enable(grant).succeeded
    assert account.view("owner") == account.owner.address
    before = stage.balance(stage.usdx, merchant)

    receipt = account.run(session, single(_pay(stage, merchant, 30 * USDX)), nonce=0)

    assert receipt.succeeded
    assert stage.balance(stage.usdx, merchant) == before + 30 * USDX
    assert stage.balance(stage.usdx, account.address) == 970 * USDX
    assert account.view("session_nonce_used", session.address, 0) is True


def test_a_session_swaps_on_the_demo_router_and_balances_move(stage: Stage) -> None:
    account = stage.new_account()
    session = Key()
    usdx, wethx, router = stage.demo.token("USDX"), stage.demo.token("WETHX"), stage.demo.router
    grant = account.grant(
        session,
        [
            permission(usdx, APPROVE, rules=[rule(0, "eq", router)]),
            permission(router, SWAP_V2, rules=[rule(3, "eq", account.address)]),
        ],
        token_limits=[(usdx, 500 * USDX, 0)],
    )
    assert account.enable(grant).succeeded
    amount = 200 * USDX
    swap = calldata(SWAP_V2, amount, 1, [usdx, wethx], account.address, 2**40)

    receipt = account.run(
        session,
        batch([Call(usdx, 0, calldata(APPROVE, router, amount)), Call(router, 0, swap)]),
        nonce=0,
    )

    assert receipt.succeeded, receipt.revert_reason
    assert stage.balance(stage.usdx, account.address) == 800 * USDX
    received = stage.balance(stage.wethx, account.address)
    assert 0.09 * ONE_ETH < received < 0.1 * ONE_ETH  # 2,000 USDX per WETHX, 0.3 % fee
    # Both outflows count against the token limit, as off chain: the approval (200) and the
    # swap's input (path[0], 200), so 100 USDX remain.
    (_window, remaining) = account.contract.call("token_usage", session.address, usdx)
    assert remaining == 100 * USDX


def test_nonces_are_unordered_and_a_reverted_call_spends_none(
    stage: Stage, shop: tuple[Account, Key], merchant: str, nonce: Nonces
) -> None:
    account, session = shop
    later, earlier = nonce(), nonce()
    before = stage.balance(stage.usdx, merchant)
    assert account.run(session, single(_pay(stage, merchant, USDX)), nonce=earlier).succeeded
    assert account.run(session, single(_pay(stage, merchant, USDX)), nonce=later).succeeded
    refused = account.run(session, single(_pay(stage, random_address(), USDX)), nonce=nonce())
    _refused(refused, "ARG_RULE_VIOLATED")
    assert stage.balance(stage.usdx, merchant) == before + 2 * USDX


# ------------------------------------------------------------------------------ refusals


def _refusal_case(stage: Stage, merchant: str, account: Account, case: str) -> tuple[Any, str]:
    usdx, wethx = stage.demo.token("USDX"), stage.demo.token("WETHX")
    pay = _pay(stage, merchant, USDX)
    cases: dict[str, tuple[Any, str]] = {
        "target": (single(Call(wethx, 0, calldata(TRANSFER, merchant, 1))), "TARGET_NOT_ALLOWED"),
        "selector": (single(Call(usdx, 0, calldata(APPROVE, merchant, 1))), "SELECTOR_NOT_ALLOWED"),
        "rule": (single(_pay(stage, random_address(), USDX)), "ARG_RULE_VIOLATED"),
        "amount-rule": (single(_pay(stage, merchant, 51 * USDX)), "ARG_RULE_VIOLATED"),
        "value-cap": (single(_record(stage, 11)), "VALUE_CAP_EXCEEDED"),
        "delegatecall": ((DELEGATECALL_MODE, single(pay)[1]), "CALL_TYPE_FORBIDDEN"),
        "try": ((TRY_MODE, single(pay)[1]), "CALL_TYPE_FORBIDDEN"),
        "empty-batch": ((mode_batch(), encode_batch_execution([])), "EMPTY_BATCH"),
        "self-call": (
            single(Call(account.address, 0, calldata("revoke_all()"))),
            "SELF_CALL_FORBIDDEN",
        ),
        "unlimited-approval": (
            single(Call(usdx, 0, calldata(APPROVE, merchant, 2**256 - 1))),
            "NON_DELEGABLE_ACTION",
        ),
    }
    return cases[case]


@pytest.mark.parametrize(
    "case",
    [
        "target",
        "selector",
        "rule",
        "amount-rule",
        "value-cap",
        "delegatecall",
        "try",
        "empty-batch",
        "self-call",
        "unlimited-approval",
    ],
)
def test_each_refusal_class_reverts_with_its_reason_and_moves_nothing(
    stage: Stage, shop: tuple[Account, Key], merchant: str, nonce: Nonces, case: str
) -> None:
    account, session = shop
    execution, reason = _refusal_case(stage, merchant, account, case)
    balances = (
        stage.balance(stage.usdx, account.address),
        stage.chain.get_balance(account.address),
    )
    call_nonce = nonce()

    _refused(account.run(session, execution, nonce=call_nonce), reason)

    assert balances == (
        stage.balance(stage.usdx, account.address),
        stage.chain.get_balance(account.address),
    )
    assert account.view("session_nonce_used", session.address, call_nonce) is False


def test_cumulative_native_value_stops_at_the_value_limit(stage: Stage, merchant: str) -> None:
    account = stage.new_account()
    session = Key()
    grant = account.grant(
        session, [permission(stage.recorder.address, RECORD, max_value=10)], value_limit=15
    )
    assert account.enable(grant).succeeded
    assert account.run(session, single(_record(stage, 10)), nonce=0).succeeded
    _refused(account.run(session, single(_record(stage, 6)), nonce=1), "VALUE_LIMIT_EXCEEDED")
    assert account.run(session, single(_record(stage, 5)), nonce=2).succeeded
    assert stage.chain.get_balance(account.address) == 10 * ONE_ETH - 15


def test_cumulative_token_outflow_stops_at_the_token_limit(stage: Stage, merchant: str) -> None:
    account = stage.new_account()
    session = Key()
    usdx = stage.demo.token("USDX")
    grant = account.grant(
        session, [permission(usdx, TRANSFER)], token_limits=[(usdx, 100 * USDX, 0)]
    )
    assert account.enable(grant).succeeded
    assert account.run(session, single(_pay(stage, merchant, 60 * USDX)), nonce=0).succeeded
    _refused(
        account.run(session, single(_pay(stage, merchant, 41 * USDX)), nonce=1),
        "TOKEN_LIMIT_EXCEEDED",
    )
    assert account.run(session, single(_pay(stage, merchant, 40 * USDX)), nonce=2).succeeded
    assert stage.balance(stage.usdx, account.address) == 900 * USDX


def test_max_uses_counts_executions(stage: Stage, merchant: str) -> None:
    account = stage.new_account()
    session = Key()
    usdx = stage.demo.token("USDX")
    grant = account.grant(
        session, [permission(usdx, TRANSFER)], token_limits=[(usdx, 100 * USDX, 0)], max_uses=1
    )
    assert account.enable(grant).succeeded
    two = batch([_pay(stage, merchant, USDX), _pay(stage, merchant, USDX)])
    assert account.run(session, two, nonce=0).succeeded
    _refused(
        account.run(session, single(_pay(stage, merchant, USDX)), nonce=1), "USAGE_LIMIT_REACHED"
    )
    assert stage.balance(stage.usdx, account.address) == 998 * USDX


def test_the_validity_window_opens_and_closes(stage: Stage, merchant: str) -> None:
    account = stage.new_account()
    session = Key()
    usdx = stage.demo.token("USDX")
    now = stage.chain.block_timestamp()
    grant = account.grant(
        session,
        [permission(usdx, TRANSFER)],
        token_limits=[(usdx, 100 * USDX, 0)],
        valid_after=now + 100,
        expires_at=now + 400,
    )
    assert account.enable(grant).succeeded
    pay = single(_pay(stage, merchant, USDX))
    _refused(account.run(session, pay, nonce=0), "SESSION_NOT_YET_VALID")
    stage.chain.time_travel(150)
    assert account.run(session, pay, nonce=0).succeeded
    stage.chain.time_travel(400)
    _refused(account.run(session, pay, nonce=1), "SESSION_EXPIRED")


def test_a_replayed_call_is_refused(
    stage: Stage, shop: tuple[Account, Key], merchant: str, nonce: Nonces
) -> None:
    account, session = shop
    data = account.signed_call(session, single(_pay(stage, merchant, USDX)), nonce())
    before = stage.balance(stage.usdx, merchant)
    assert stage.send(account.address, data).succeeded
    _refused(stage.send(account.address, data), "NONCE_REPLAYED")
    assert stage.balance(stage.usdx, merchant) == before + USDX


# ------------------------------------------------------------------------------ revocation


def _transfer_session(stage: Stage, account: Account, **extra: Any) -> Key:
    session = Key()
    usdx = stage.demo.token("USDX")
    grant = account.grant(
        session, [permission(usdx, TRANSFER)], token_limits=[(usdx, 100 * USDX, 0)], **extra
    )
    assert account.enable(grant).succeeded
    return session


def test_the_owner_and_the_revoker_revoke_one_session(stage: Stage, merchant: str) -> None:
    account = stage.new_account()
    by_owner = _transfer_session(stage, account)
    by_relayer = _transfer_session(stage, account, revoker=stage.relayer.address)
    pay = single(_pay(stage, merchant, USDX))

    assert account.as_owner("revoke_session", by_owner.address).succeeded
    revoke = stage.account_code.encode("revoke_session", by_relayer.address)
    assert stage.send(account.address, revoke).succeeded

    _refused(account.run(by_owner, pay, nonce=0), "SESSION_REVOKED")
    _refused(account.run(by_relayer, pay, nonce=0), "SESSION_REVOKED")
    _refused(stage.send(account.address, revoke), "SESSION_REVOKED")
    assert account.view("session", by_owner.address)[0] == 2  # status: revoked
    assert stage.balance(stage.usdx, account.address) == 1_000 * USDX


def test_a_stranger_cannot_revoke(stage: Stage, merchant: str) -> None:
    account = stage.new_account()
    session = _transfer_session(stage, account)
    stranger = stage.funded()
    revoke = stage.account_code.encode("revoke_session", session.address)
    _refused(stage.send(account.address, revoke, signer=stranger), "NOT_AUTHORIZED")
    assert account.run(session, single(_pay(stage, merchant, USDX)), nonce=0).succeeded


def test_revoke_all_ends_every_session_and_a_regrant_starts_clean(
    stage: Stage, merchant: str
) -> None:
    account = stage.new_account()
    first, second = _transfer_session(stage, account), _transfer_session(stage, account)
    pay = single(_pay(stage, merchant, 60 * USDX))
    assert account.run(first, pay, nonce=0).succeeded

    assert account.as_owner("revoke_all").succeeded
    assert account.view("epoch") == 1
    _refused(account.run(first, pay, nonce=1), "SESSION_REVOKED")
    _refused(account.run(second, pay, nonce=0), "SESSION_REVOKED")

    # A regrant of the same key under the new epoch: clean counters, nonce 0 stays spent.
    assert account.enable(
        account.grant(
            first,
            [permission(stage.demo.token("USDX"), TRANSFER)],
            token_limits=[(stage.demo.token("USDX"), 100 * USDX, 0)],
        )
    ).succeeded
    _refused(account.run(first, pay, nonce=0), "NONCE_REPLAYED")
    assert account.run(first, pay, nonce=2).succeeded  # 60 of a fresh 100
    assert stage.balance(stage.usdx, account.address) == 880 * USDX


def test_revoke_then_regrant_never_revives_the_old_grant(stage: Stage, merchant: str) -> None:
    account = stage.new_account()
    session = Key()
    usdx = stage.demo.token("USDX")
    old = account.grant(session, [permission(usdx, TRANSFER)], token_limits=[(usdx, 100 * USDX, 0)])
    old_signature = account.owner.sign(
        typed_data.grant_digest(account.chain_id, account.address, old)
    )
    assert account.enable(old, old_signature).succeeded
    assert account.as_owner("revoke_session", session.address).succeeded

    _refused(account.enable(old, old_signature), "NONCE_REPLAYED")
    narrower = account.grant(
        session,
        [permission(usdx, TRANSFER, rules=[rule(0, "in", merchant)])],
        token_limits=[(usdx, 10 * USDX, 0)],
    )
    assert account.enable(narrower).succeeded
    _refused(
        account.run(session, single(_pay(stage, random_address(), USDX)), nonce=0),
        "ARG_RULE_VIOLATED",
    )
    _refused(
        account.run(session, single(_pay(stage, merchant, 11 * USDX)), nonce=1),
        "TOKEN_LIMIT_EXCEEDED",
    )
    assert account.run(session, single(_pay(stage, merchant, 10 * USDX)), nonce=2).succeeded


# ------------------------------------------------------------------------------ ERC-1271 owner


@pytest.fixture(scope="module")
def signer_1271_code() -> Any:
    return compile_vyper(TESTS_CONTRACTS / "Signer1271.vy")


def test_a_contract_owners_grant_is_verified_on_chain_by_erc1271(
    stage: Stage, merchant: str, signer_1271_code: Any
) -> None:
    key = Key()
    owner_contract = deploy(stage.chain, stage.deployer, signer_1271_code, key.address)
    account = stage.new_account(owner_contract.address)
    assert account.view("owner") == owner_contract.address
    session = Key()
    usdx = stage.demo.token("USDX")
    grant = account.grant(
        session, [permission(usdx, TRANSFER)], token_limits=[(usdx, 100 * USDX, 0)]
    )

    _refused(account.enable(grant, signer=Key()), "SIGNATURE_INVALID")
    assert account.enable(grant, signer=key).succeeded
    assert account.run(session, single(_pay(stage, merchant, USDX)), nonce=0).succeeded
    assert stage.balance(stage.usdx, account.address) == 999 * USDX


# ------------------------------------------------------------------------------ EIP-7702


def test_a_type4_transaction_delegates_an_eoa_and_installs_its_session(
    stage: Stage, merchant: str
) -> None:
    chain = stage.chain
    eoa = Key()
    account = stage.account_at(eoa.address, eoa)  # 1,000 USDX and 10 ether on the EOA
    session = Key()
    usdx = stage.demo.token("USDX")
    grant = account.grant(
        session,
        [permission(usdx, TRANSFER, rules=[rule(0, "in", merchant)])],
        token_limits=[(usdx, 100 * USDX, 0)],
        epoch=0,
    )
    grant_signature = eoa.sign(typed_data.grant_digest(chain.chain_id, eoa.address, grant))
    authorization = sign_authorization(
        eoa.secret,
        chain_id=chain.chain_id,
        address=stage.demo.implementation,
        nonce=chain.get_transaction_count(eoa.address),
    )
    fees = chain.max_fee()
    sponsor = stage.relayer
    delegate_and_enable = SetCodeTransaction(
        chain_id=chain.chain_id,
        nonce=chain.get_transaction_count(sponsor.address),
        max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
        max_fee_per_gas=fees.max_fee_per_gas,
        gas=TX_GAS,
        to=eoa.address,
        value=0,
        data=stage.account_code.encode("enable_session", grant_struct(grant), grant_signature),
        authorization_list=(authorization,),
    )

    receipt = wait_for_receipt(
        chain, chain.send_raw_transaction(sponsor.sign_transaction(delegate_and_enable))
    )

    assert receipt.succeeded, receipt.revert_reason
    assert chain.get_code(eoa.address) == b"\xef\x01\x00" + bytes.fromhex(
        stage.demo.implementation[2:]
    )
    assert account.view("owner") == eoa.address
    # The relayer runs a session call: the tokens leave the EOA itself.
    assert account.run(session, single(_pay(stage, merchant, 4 * USDX)), nonce=0).succeeded
    assert stage.balance(stage.usdx, eoa.address) == 996 * USDX
    _refused(
        account.run(session, single(_pay(stage, random_address(), USDX)), nonce=1),
        "ARG_RULE_VIOLATED",
    )
    # Only the EOA holds the owner's authority: a stranger's execute is refused, the EOA's runs.
    owner_pay = single(_pay(stage, merchant, 6 * USDX))
    execute = stage.account_code.encode("execute", *owner_pay)
    _refused(stage.send(eoa.address, execute), "NOT_AUTHORIZED")
    assert account.as_owner("execute", *owner_pay).succeeded
    assert stage.balance(stage.usdx, eoa.address) == 990 * USDX
