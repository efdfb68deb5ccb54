"""The Chain protocol's behaviour, specified once and run on both backends (embedded, anvil)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from chain_support import CHAIN_ID, ONE_ETH, send, unsigned_tx

from sessionward.chain.contracts import (
    ContractArtifact,
    DeployedContract,
    deploy,
    wait_for_receipt,
)
from sessionward.chain.errors import (
    AlreadyKnown,
    ExecutionReverted,
    FeeTooLow,
    InsufficientFunds,
    IntrinsicGasTooLow,
    InvalidTransaction,
    NonceTooLow,
    ReplacementUnderpriced,
)
from sessionward.chain.ethereum_transactions import Authorization, sign_authorization
from sessionward.chain.interface import CallRequest, Chain, DevChain
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.crypto.keccak import keccak256

STRANGER = "0x" + "42" * 20
STORED_TOPIC = keccak256(b"Stored(address,uint256)")


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


# ------------------------------------------------------------------------------ reads


def test_chain_reports_its_id_and_a_moving_head(chain: DevChain) -> None:
    assert chain.chain_id == CHAIN_ID
    number, stamp = chain.block_number(), chain.block_timestamp()
    chain.mine()
    assert chain.block_number() == number + 1
    assert chain.block_timestamp() >= stamp


def test_time_travel_moves_the_block_clock_forward(chain: DevChain) -> None:
    before = chain.block_timestamp()
    chain.time_travel(3600)
    assert chain.block_timestamp() >= before + 3600


def test_set_balance_is_visible_and_unknown_accounts_are_empty(chain: DevChain) -> None:
    account = "0x" + secrets.token_bytes(20).hex()
    assert chain.get_balance(account) == 0
    assert chain.get_code(account) == b""
    assert chain.get_transaction_count(account) == 0
    chain.set_balance(account, 12345)
    assert chain.get_balance(account) == 12345


def test_fee_suggestion_covers_the_base_fee_with_headroom(chain: DevChain) -> None:
    fees = chain.max_fee()
    assert fees.base_fee > 0
    assert fees.max_fee_per_gas == 2 * fees.base_fee + fees.max_priority_fee_per_gas
    assert chain.gas_price() > 0


# ------------------------------------------------------------------------ transactions


def test_value_transfer_moves_value_and_charges_exactly_the_receipt_fee(
    chain: DevChain, funded: LocalTransactionSigner
) -> None:
    recipient = "0x" + secrets.token_bytes(20).hex()
    before = chain.get_balance(funded.address)
    tx_hash = send(chain, funded, to=recipient, value=ONE_ETH, gas=21_000)
    receipt = wait_for_receipt(chain, tx_hash)
    assert receipt is not None and receipt.succeeded
    assert receipt.gas_used == 21_000
    assert receipt.sender == funded.address and receipt.to == recipient
    assert chain.get_balance(recipient) == ONE_ETH
    assert chain.get_balance(funded.address) == before - ONE_ETH - receipt.fee_paid
    assert receipt.effective_gas_price <= chain.max_fee().max_fee_per_gas
    assert chain.get_transaction_count(funded.address, "latest") == 1


def test_deployed_contract_answers_calls(chain: DevChain, probe: DeployedContract) -> None:
    assert probe.call_one("value") == 7
    assert probe.call_one("whoami") == probe.address
    assert chain.get_code(probe.address) == probe.compiled.runtime


def test_successful_call_changes_state_and_emits_a_log(
    chain: DevChain, funded: LocalTransactionSigner, probe: DeployedContract
) -> None:
    receipt = probe.transact(funded, "store", 5, value=99)
    assert receipt.succeeded
    assert probe.call_one("value") == 5
    assert probe.call_one("deposits") == 99
    (log,) = receipt.logs
    assert log.address == probe.address
    assert log.topics == (STORED_TOPIC, bytes(12) + bytes.fromhex(funded.address[2:]))
    assert log.data == _word(5)


def test_call_revert_carries_the_reason(chain: DevChain, probe: DeployedContract) -> None:
    with pytest.raises(ExecutionReverted) as reverted:
        probe.call("store", 13)
    assert reverted.value.reason == "UNLUCKY"
    with pytest.raises(ExecutionReverted) as bare:
        probe.call("boom")
    assert bare.value.reason is None


def test_estimate_of_a_reverting_call_raises_with_the_reason(
    chain: DevChain, funded: LocalTransactionSigner, probe: DeployedContract
) -> None:
    request = CallRequest(to=probe.address, data=probe.compiled.encode("store", 13))
    with pytest.raises(ExecutionReverted) as reverted:
        chain.estimate_gas(request)
    assert reverted.value.reason == "UNLUCKY"


def test_estimate_is_enough_to_succeed(
    chain: DevChain, funded: LocalTransactionSigner, probe: DeployedContract
) -> None:
    data = probe.compiled.encode("store", 6)
    estimate = chain.estimate_gas(CallRequest(to=probe.address, data=data, sender=funded.address))
    assert 21_000 < estimate < 100_000
    receipt = wait_for_receipt(
        chain, send(chain, funded, to=probe.address, data=data, gas=estimate)
    )
    assert receipt is not None and receipt.succeeded
    assert receipt.gas_used <= estimate


def test_reverted_transaction_is_mined_with_status_failed_and_its_reason(
    chain: DevChain, funded: LocalTransactionSigner, probe: DeployedContract
) -> None:
    before = chain.get_balance(funded.address)
    tx_hash = send(chain, funded, to=probe.address, data=probe.compiled.encode("store", 13))
    receipt = wait_for_receipt(chain, tx_hash)
    assert receipt is not None
    assert not receipt.succeeded
    assert receipt.revert_reason == "UNLUCKY"
    assert receipt.logs == ()
    assert probe.call_one("value") == 7  # nothing changed
    assert chain.get_balance(funded.address) == before - receipt.fee_paid  # gas still paid
    assert chain.get_transaction_count(funded.address, "latest") == 2  # deploy + this one


def test_unknown_hash_has_no_receipt_and_no_transaction(chain: Chain) -> None:
    unknown = "0x" + "ab" * 32
    assert chain.get_receipt(unknown) is None
    assert chain.get_transaction(unknown) is None


# --------------------------------------------------------------------------- nonces


def test_reusing_a_mined_nonce_is_refused(chain: DevChain, funded: LocalTransactionSigner) -> None:
    wait_for_receipt(chain, send(chain, funded, to=STRANGER, value=1, gas=21_000, nonce=0))
    with pytest.raises(NonceTooLow):
        send(chain, funded, to=STRANGER, value=2, gas=21_000, nonce=0)
    assert chain.get_transaction_count(funded.address) == 1


def test_transaction_behind_a_nonce_gap_waits_then_mines_when_the_gap_fills(
    chain: DevChain, funded: LocalTransactionSigner
) -> None:
    later = send(chain, funded, to=STRANGER, value=1, gas=21_000, nonce=1)
    assert chain.get_receipt(later) is None
    pending = chain.get_transaction(later)
    assert pending is not None and pending.block_number is None and pending.nonce == 1
    assert chain.get_transaction_count(funded.address, "pending") == 0
    raw = funded.sign_transaction(
        unsigned_tx(chain, funded, to=STRANGER, value=1, gas=21_000, nonce=1)
    )
    with pytest.raises(AlreadyKnown):
        chain.send_raw_transaction(raw)
    first = send(chain, funded, to=STRANGER, value=1, gas=21_000, nonce=0)
    first_receipt = wait_for_receipt(chain, first)
    later_receipt = wait_for_receipt(chain, later)
    assert first_receipt is not None and later_receipt is not None
    assert later_receipt.block_number >= first_receipt.block_number
    assert chain.get_transaction_count(funded.address, "latest") == 2
    mined = chain.get_transaction(later)
    assert mined is not None and mined.block_number == later_receipt.block_number


# ------------------------------------------------------------------------ refusals


def test_max_fee_below_base_fee_is_refused_and_nothing_changes(
    chain: DevChain, funded: LocalTransactionSigner
) -> None:
    base = chain.max_fee().base_fee
    with pytest.raises(FeeTooLow):
        send(chain, funded, to=STRANGER, value=1, gas=21_000, max_fee=base // 2, tip=0)
    assert chain.get_transaction_count(funded.address) == 0


def test_transaction_the_sender_cannot_pay_for_is_refused(
    chain: DevChain, make_funded: Callable[..., LocalTransactionSigner]
) -> None:
    poor = make_funded(10**6)
    with pytest.raises(InsufficientFunds):
        send(chain, poor, to=STRANGER, value=1, gas=21_000)
    assert chain.get_balance(poor.address) == 10**6


def test_gas_below_intrinsic_cost_is_refused(
    chain: DevChain, funded: LocalTransactionSigner
) -> None:
    with pytest.raises(IntrinsicGasTooLow):
        send(chain, funded, to=STRANGER, value=1, gas=20_000)


def test_transaction_signed_for_another_chain_is_refused(
    chain: DevChain, funded: LocalTransactionSigner
) -> None:
    with pytest.raises(InvalidTransaction):
        send(chain, funded, to=STRANGER, value=1, gas=21_000, chain_id=CHAIN_ID + 1)
    assert chain.get_balance(STRANGER.lower()) == chain.get_balance(STRANGER)


# ------------------------------------------------------------------------ EIP-7702


@dataclass(frozen=True)
class Delegation:
    """An EIP-7702 scene: a funded ``sponsor`` that pays for the transactions, a Probe
    ``implementation`` it deployed (``value() == 1``), and a fresh EOA ``owner`` (no balance, no
    code, nonce 0) whose key can sign authorizations to delegate to that implementation."""

    sponsor: LocalTransactionSigner
    implementation: DeployedContract
    owner_secret: bytes
    owner: LocalTransactionSigner

    def authorize(self, nonce: int) -> Authorization:
        """The owner's authorization, for this chain and ``nonce``, to run the implementation."""
        return sign_authorization(
            self.owner_secret, chain_id=CHAIN_ID, address=self.implementation.address, nonce=nonce
        )


@pytest.fixture
def delegation(
    chain: DevChain,
    make_funded: Callable[..., LocalTransactionSigner],
    probe_code: ContractArtifact,
) -> Delegation:
    sponsor = make_funded()
    owner_secret = secrets.token_bytes(32)
    return Delegation(
        sponsor=sponsor,
        implementation=deploy(chain, sponsor, probe_code, 1),
        owner_secret=owner_secret,
        owner=LocalTransactionSigner(owner_secret),
    )


def test_eoa_delegates_to_contract_code_with_a_type4_transaction(
    chain: DevChain, delegation: Delegation, probe_code: ContractArtifact
) -> None:
    sponsor, implementation, owner = delegation.sponsor, delegation.implementation, delegation.owner
    authorization = delegation.authorize(nonce=0)
    assert authorization.authority() == owner.address
    store_9 = probe_code.encode("store", 9)
    tx_hash = send(
        chain,
        sponsor,
        to=owner.address,
        data=store_9,
        gas=200_000,
        authorizations=(authorization,),
    )
    receipt = wait_for_receipt(chain, tx_hash)
    assert receipt is not None and receipt.succeeded
    assert chain.get_code(owner.address) == b"\xef\x01\x00" + bytes.fromhex(
        implementation.address[2:]
    )
    assert chain.get_transaction_count(owner.address) == 1  # the authorization used nonce 0
    # The EOA now runs Probe's code on its *own* storage; the implementation is untouched.
    as_owner = DeployedContract(chain, owner.address, probe_code)
    assert as_owner.call_one("value") == 9
    assert as_owner.call_one("whoami") == owner.address
    assert implementation.call_one("value") == 1
    (log,) = receipt.logs
    assert log.address == owner.address


def test_authorization_with_a_stale_nonce_is_skipped_not_fatal(
    chain: DevChain, delegation: Delegation
) -> None:
    owner = delegation.owner
    stale = delegation.authorize(nonce=5)
    tx_hash = send(
        chain, delegation.sponsor, to=owner.address, gas=100_000, authorizations=(stale,)
    )
    receipt = wait_for_receipt(chain, tx_hash)
    assert receipt is not None and receipt.succeeded  # a plain call to an empty account
    assert chain.get_code(owner.address) == b""
    assert chain.get_transaction_count(owner.address) == 0


def test_delegation_can_be_simulated_before_it_is_sent(
    chain: DevChain, delegation: Delegation, probe_code: ContractArtifact
) -> None:
    owner_address = delegation.owner.address
    request = CallRequest(
        to=owner_address,
        data=probe_code.encode("whoami"),
        sender=delegation.sponsor.address,
        authorization_list=(delegation.authorize(nonce=0),),
    )
    assert chain.simulate(request) == bytes(12) + bytes.fromhex(owner_address[2:])
    assert chain.estimate_gas(request) > 21_000 + 25_000
    assert chain.get_code(owner_address) == b""  # simulation left no trace


def test_pooled_transaction_is_replaced_only_by_a_better_paying_one(
    chain: DevChain, funded: LocalTransactionSigner
) -> None:
    fees = chain.max_fee()
    pooled = send(chain, funded, to=STRANGER, value=1, gas=21_000, nonce=1)
    with pytest.raises(ReplacementUnderpriced):
        send(chain, funded, to=STRANGER, value=2, gas=21_000, nonce=1)
    better = send(
        chain,
        funded,
        to=STRANGER,
        value=3,
        gas=21_000,
        nonce=1,
        max_fee=fees.max_fee_per_gas * 2,
        tip=fees.max_priority_fee_per_gas * 2 + 1,
    )
    assert chain.get_transaction(better) is not None
    wait_for_receipt(chain, send(chain, funded, to=STRANGER, value=1, gas=21_000, nonce=0))
    receipt = wait_for_receipt(chain, better)
    assert receipt.succeeded and chain.get_receipt(pooled) is None
