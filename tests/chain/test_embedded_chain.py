"""What only the embedded chain promises: an injectable clock, node-like submission checks,
thread safety, and its titanoboa environment for tests that want boa objects."""

from __future__ import annotations

import secrets
import threading

import pytest
from chain_support import CHAIN_ID, ONE_ETH, send

from sessionward.chain.contracts import ContractArtifact, deploy
from sessionward.chain.embedded import EmbeddedChain
from sessionward.chain.errors import InvalidTransaction
from sessionward.chain.signer import LocalTransactionSigner

STRANGER = "0x" + "42" * 20


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_blocks_take_their_time_from_the_injected_clock() -> None:
    clock = FakeClock(1_800_000_000)
    chain = EmbeddedChain(clock=clock)
    assert chain.block_timestamp() == 1_800_000_000
    clock.now += 100
    chain.mine()
    assert chain.block_timestamp() == 1_800_000_100
    chain.mine()  # the clock stood still: the next block is still one second later
    assert chain.block_timestamp() == 1_800_000_101
    chain.time_travel(3_600)
    assert chain.block_timestamp() == 1_800_003_701
    clock.now += 10
    chain.mine()  # the offset stays: wall clock + 3600
    assert chain.block_timestamp() == 1_800_000_110 + 3_600


def test_each_transaction_is_mined_in_its_own_block() -> None:
    chain = EmbeddedChain(start_timestamp=1_800_000_000, clock=FakeClock(0))
    sender = LocalTransactionSigner(secrets.token_bytes(32))
    chain.set_balance(sender.address, ONE_ETH)
    first = chain.get_receipt(send(chain, sender, to=STRANGER, value=1, gas=21_000))
    second = chain.get_receipt(send(chain, sender, to=STRANGER, value=1, gas=21_000))
    assert first is not None and second is not None
    assert (first.block_number, second.block_number) == (1, 2)
    assert chain.block_timestamp() == 1_800_000_002


def test_sender_with_contract_code_is_refused(probe_code: ContractArtifact) -> None:
    chain = EmbeddedChain(chain_id=CHAIN_ID)
    sender = LocalTransactionSigner(secrets.token_bytes(32))
    chain.set_balance(sender.address, ONE_ETH)
    chain.env.set_code(sender.address, probe_code.runtime)
    with pytest.raises(InvalidTransaction):
        send(chain, sender, to=STRANGER, value=1, gas=21_000)
    assert chain.get_transaction_count(sender.address) == 0


def test_titanoboa_env_sees_the_same_state(probe_code: ContractArtifact) -> None:
    chain = EmbeddedChain(chain_id=CHAIN_ID)
    sender = LocalTransactionSigner(secrets.token_bytes(32))
    chain.set_balance(sender.address, ONE_ETH)
    probe = deploy(chain, sender, probe_code, 7)
    assert chain.env.get_code(probe.address) == probe_code.runtime
    assert chain.env.get_balance(sender.address) == chain.get_balance(sender.address)


def test_concurrent_senders_are_serialised_safely() -> None:
    chain = EmbeddedChain(chain_id=CHAIN_ID)
    senders = [LocalTransactionSigner(secrets.token_bytes(32)) for _ in range(4)]
    for sender in senders:
        chain.set_balance(sender.address, ONE_ETH)
    errors: list[BaseException] = []

    def work(sender: LocalTransactionSigner) -> None:
        try:
            for nonce in range(5):
                send(chain, sender, to=STRANGER, value=1, gas=21_000, nonce=nonce)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert chain.get_balance(STRANGER) == 20
    assert chain.block_number() == 20
    assert all(chain.get_transaction_count(s.address) == 5 for s in senders)
