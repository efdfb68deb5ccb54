"""The service's bundler client (sessionward.chain.bundler) and user operations
(sessionward.chain.user_operations) against the real alto bundler and EntryPoint v0.7 on anvil.

The flow is the service's own: build the session operation, estimate it with a stub signature,
set the fees and the bundler's limits, sign the ``userOpHash`` with the session key, send, and
read the receipt. Sponsored operations are signed by the sample ``VerifyingPaymaster``'s signer,
with the digest computed in Python and checked against the contract's ``getHash``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from alto_bundler import Alto, funded, mined
from erc4337_support import (
    ENTRY_POINT_V07,
    USDX,
    Key,
    Stage,
    Wallet,
    deploy_verifying_paymaster,
    execution,
    transfer_call,
)

from sessionward.chain.bundler import BundlerClient, BundlerRefused
from sessionward.chain.paymaster import VerifyingPaymasterSponsor
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.chain.user_operations import UserOperation, verifying_paymaster_digest
from sessionward.contracts.encoding import session_user_op_signature
from sessionward.crypto.secp256k1 import personal_message_hash
from sessionward.domain.calldata import Call
from sessionward.reasons import ReasonCode

pytestmark = pytest.mark.anvil

# A well-formed signature by no one involved: estimation needs one the signers' checks can
# recover (OpenZeppelin's ECDSA.recover reverts on r = s = 0) but will not accept.
STUB_SIGNATURE = Key().sign(bytes(32))


@pytest.fixture(scope="module")
def bundler(stage: Stage, anvil: str) -> Iterator[tuple[Alto, BundlerClient]]:
    with (
        funded(stage.chain, anvil) as alto,
        BundlerClient(alto.url, entry_point=ENTRY_POINT_V07) as client,
    ):
        yield alto, client


@pytest.fixture
def client(bundler: tuple[Alto, BundlerClient]) -> BundlerClient:
    return bundler[1]


def _unsigned(wallet: Wallet, *calls: Call) -> UserOperation:
    """The session operation for ``calls``, with the chain's fees and a stub signature."""
    fees = wallet.stage.chain.max_fee()
    return UserOperation(
        sender=wallet.address,
        nonce=wallet.nonce(),
        call_data=wallet.account_code.encode(
            "execute_session_op", wallet.session.address, *execution(calls)
        ),
        max_fee_per_gas=fees.max_fee_per_gas,
        max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
        signature=session_user_op_signature(wallet.session.address, STUB_SIGNATURE),
    )


def _signed(wallet: Wallet, op: UserOperation) -> UserOperation:
    digest = op.hash(entry_point=ENTRY_POINT_V07, chain_id=wallet.stage.chain.chain_id)
    signature = wallet.session.sign(personal_message_hash(digest))
    return replace(op, signature=session_user_op_signature(wallet.session.address, signature))


def test_the_bundler_serves_the_canonical_entry_point(client: BundlerClient) -> None:
    assert client.supports_entry_point()


def test_a_session_operation_is_estimated_with_a_stub_signature_then_signed_sent_and_mined(
    stage: Stage, wallet: Wallet, client: BundlerClient
) -> None:
    call = transfer_call(stage.demo.token("USDX"), wallet.recipient, 7 * USDX)
    estimate = client.estimate(_unsigned(wallet, call))
    assert 0 < estimate.verification_gas_limit < 1_000_000
    assert 0 < estimate.call_gas_limit < 1_000_000
    op = _signed(wallet, _unsigned(wallet, call).with_gas(estimate))
    budget = wallet.view("fee_budget", wallet.session.address)
    op_hash = client.send(op)
    assert op_hash == "0x" + wallet.op_hash(op.packed()).hex()
    receipt = mined(client.receipt, op_hash)
    assert (receipt.success, receipt.sender, receipt.nonce) == (True, wallet.address, op.nonce)
    assert receipt.paymaster is None
    assert stage.token_balance(wallet.recipient) == 7 * USDX
    assert wallet.view("fee_budget", wallet.session.address) == budget - op.max_cost()
    assert receipt.actual_gas_cost <= op.max_cost()
    on_chain = stage.chain.get_receipt(receipt.transaction_hash)
    assert on_chain is not None and on_chain.block_number == receipt.block_number


@pytest.mark.parametrize("step", ["estimate", "send"])
def test_an_out_of_scope_operation_is_refused_with_the_accounts_reason_code(
    stage: Stage, wallet: Wallet, client: BundlerClient, step: str
) -> None:
    stranger = Key().address
    steal = transfer_call(stage.demo.token("USDX"), stranger, 7 * USDX)
    op = _unsigned(wallet, steal).with_gas(
        client.estimate(
            _unsigned(wallet, transfer_call(stage.demo.token("USDX"), wallet.recipient, 1))
        )
    )
    block, nonce = stage.chain.block_number(), wallet.nonce()
    with pytest.raises(BundlerRefused) as refused:
        if step == "estimate":
            client.estimate(op)
        else:
            client.send(_signed(wallet, op))
    assert refused.value.reason is ReasonCode.ARG_RULE_VIOLATED
    assert refused.value.code == -32500
    time.sleep(0.5)
    assert (stage.chain.block_number(), wallet.nonce()) == (block, nonce)
    assert stage.token_balance(stranger) == 0


def test_a_verifying_paymaster_sponsors_a_session_with_no_fee_budget(
    stage: Stage, client: BundlerClient
) -> None:
    """The service signs the sponsorship (chain/paymaster.py) over the estimated operation;
    its digest is the contract's own ``getHash``; the account pays nothing."""
    wallet = stage.new_wallet(fee_budget=0)
    paymaster = deploy_verifying_paymaster(stage)
    sponsor = VerifyingPaymasterSponsor(
        paymaster=paymaster.contract.address,
        chain_id=stage.chain.chain_id,
        signer=LocalTransactionSigner(paymaster.signer.secret),
    )
    call = transfer_call(stage.demo.token("USDX"), wallet.recipient, 7 * USDX)
    stub = sponsor.for_estimation(_unsigned(wallet, call))
    estimate = client.estimate(stub)
    assert estimate.paymaster_verification_gas_limit > 0
    now = stage.chain.block_timestamp()
    sponsored = sponsor.sponsor(stub.with_gas(estimate), now=now)
    assert sponsored.paymaster_data[:32] == (now + 600).to_bytes(32, "big")
    on_chain = paymaster.contract.call_one("getHash", tuple(sponsored.packed()), now + 600, 0)
    assert on_chain == verifying_paymaster_digest(
        sponsored,
        paymaster=paymaster.contract.address,
        chain_id=stage.chain.chain_id,
        valid_until=now + 600,
        valid_after=0,
    )
    op = _signed(wallet, sponsored)
    ether = stage.chain.get_balance(wallet.address)
    receipt = mined(client.receipt, client.send(op))
    assert receipt.success and receipt.paymaster == paymaster.contract.address
    assert stage.token_balance(wallet.recipient) == 7 * USDX
    assert stage.chain.get_balance(wallet.address) == ether
    assert wallet.view("fee_budget", wallet.session.address) == 0


def test_a_sponsorship_by_another_key_is_refused_and_nothing_is_spent(
    stage: Stage, client: BundlerClient
) -> None:
    wallet = stage.new_wallet(fee_budget=0)
    paymaster = deploy_verifying_paymaster(stage)
    impostor = VerifyingPaymasterSponsor(
        paymaster=paymaster.contract.address,
        chain_id=stage.chain.chain_id,
        signer=LocalTransactionSigner(secrets.token_bytes(32)),
    )
    call = transfer_call(stage.demo.token("USDX"), wallet.recipient, 7 * USDX)
    stub = impostor.for_estimation(_unsigned(wallet, call))
    op = _signed(
        wallet,
        impostor.sponsor(stub.with_gas(client.estimate(stub)), now=stage.chain.block_timestamp()),
    )
    deposit = paymaster.contract.call_one("getDeposit")
    with pytest.raises(BundlerRefused) as refused:
        client.send(op)
    assert "AA34" in refused.value.message  # the paymaster's signature check failed
    time.sleep(0.5)
    assert paymaster.contract.call_one("getDeposit") == deposit
    assert stage.token_balance(wallet.recipient) == 0


def test_the_unpacked_form_round_trips_through_the_packed_one(stage: Stage, wallet: Wallet) -> None:
    call = transfer_call(stage.demo.token("USDX"), wallet.recipient, 1)
    op = _signed(wallet, _unsigned(wallet, call))
    assert UserOperation.from_packed(op.packed()) == op
    assert op.hash(entry_point=ENTRY_POINT_V07, chain_id=stage.chain.chain_id) == wallet.op_hash(
        op.packed()
    )
