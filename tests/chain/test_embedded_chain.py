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
    chain.mine()  # the clock stood still: so does the chain (anvil's automine does the same)
    assert (chain.block_number(), chain.block_timestamp()) == (2, 1_800_000_100)
    chain.time_travel(3_600)
    assert chain.block_timestamp() == 1_800_003_700
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
    assert chain.block_timestamp() == 1_800_000_000  # never below the genesis timestamp


def test_blocks_mined_within_a_second_share_its_timestamp() -> None:
    """Chain time follows the clock, not the number of blocks: a thousand transactions in one
    second of the clock leave the chain at that second (not a thousand seconds ahead)."""
    clock = FakeClock(1_800_000_000.25)
    chain = EmbeddedChain(clock=clock)
    sender = LocalTransactionSigner(secrets.token_bytes(32))
    chain.set_balance(sender.address, ONE_ETH)
    for _ in range(1_000):
        send(chain, sender, to=STRANGER, value=1, gas=21_000)
    assert chain.block_number() == 1_000
    assert chain.block_timestamp() == 1_800_000_000
    clock.now += 1
    send(chain, sender, to=STRANGER, value=1, gas=21_000)
    assert chain.block_timestamp() == 1_800_000_001


def test_chain_time_never_runs_ahead_of_the_clock_nor_backwards() -> None:
    start = 1_800_000_000.0
    clock = FakeClock(start)
    chain = EmbeddedChain(clock=clock)
    sender = LocalTransactionSigner(secrets.token_bytes(32))
    chain.set_balance(sender.address, ONE_ETH)
    previous = chain.block_timestamp()
    for step in range(300):
        clock.now = start + step * 0.37  # transactions every 370 ms of the clock
        send(chain, sender, to=STRANGER, value=1, gas=21_000)
        stamp = chain.block_timestamp()
        assert previous <= stamp <= clock.now + 1
        previous = stamp
    assert previous == int(clock.now)


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
