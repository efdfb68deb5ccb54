"""ERC-1271 checks against real contracts, on both chains."""

from __future__ import annotations

import secrets

import pytest
from chain_support import CHAIN_ID

from sessionward.chain.contracts import ContractArtifact, deploy
from sessionward.chain.erc1271 import ChainErc1271Checker
from sessionward.chain.errors import UnknownChain
from sessionward.chain.interface import DevChain
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.crypto.owner_signature import verify_owner_signature
from sessionward.crypto.secp256k1 import SignatureError, address_from_secret, sign_digest
from sessionward.reasons import ReasonCode

DIGEST = bytes(range(32))
OWNER_SECRET = bytes.fromhex("11" * 32)
OWNER = address_from_secret(OWNER_SECRET)


def _wallet(
    chain: DevChain, deployer: LocalTransactionSigner, code: ContractArtifact, mode: int
) -> str:
    return deploy(chain, deployer, code, OWNER, mode).address


def test_contract_signer_accepting_the_owners_signature_is_valid(
    chain: DevChain, funded: LocalTransactionSigner, erc1271_code: ContractArtifact
) -> None:
    wallet = _wallet(chain, funded, erc1271_code, 0)
    checker = ChainErc1271Checker(chain)
    assert checker.is_valid_signature(CHAIN_ID, wallet, DIGEST, sign_digest(OWNER_SECRET, DIGEST))


def test_signature_by_someone_else_is_not_valid(
    chain: DevChain, funded: LocalTransactionSigner, erc1271_code: ContractArtifact
) -> None:
    wallet = _wallet(chain, funded, erc1271_code, 0)
    stranger = sign_digest(secrets.token_bytes(32), DIGEST)
    assert (
        ChainErc1271Checker(chain).is_valid_signature(CHAIN_ID, wallet, DIGEST, stranger) is False
    )


def test_signature_over_another_digest_is_not_valid(
    chain: DevChain, funded: LocalTransactionSigner, erc1271_code: ContractArtifact
) -> None:
    wallet = _wallet(chain, funded, erc1271_code, 0)
    other = sign_digest(OWNER_SECRET, bytes(32))
    assert ChainErc1271Checker(chain).is_valid_signature(CHAIN_ID, wallet, DIGEST, other) is False


@pytest.mark.parametrize(
    ("mode", "behaviour"),
    [(1, "reverts"), (2, "wrong magic"), (3, "short return"), (5, "invalid opcode")],
)
def test_misbehaving_contract_answers_false(
    chain: DevChain,
    funded: LocalTransactionSigner,
    erc1271_code: ContractArtifact,
    mode: int,
    behaviour: str,
) -> None:
    wallet = _wallet(chain, funded, erc1271_code, mode)
    good = sign_digest(OWNER_SECRET, DIGEST)
    assert ChainErc1271Checker(chain).is_valid_signature(CHAIN_ID, wallet, DIGEST, good) is False


def test_magic_word_followed_by_extra_data_is_accepted(
    chain: DevChain, funded: LocalTransactionSigner, erc1271_code: ContractArtifact
) -> None:
    wallet = _wallet(chain, funded, erc1271_code, 4)
    assert ChainErc1271Checker(chain).is_valid_signature(CHAIN_ID, wallet, DIGEST, b"")


def test_account_without_code_is_not_a_signer(chain: DevChain) -> None:
    eoa = "0x" + secrets.token_bytes(20).hex()
    good = sign_digest(OWNER_SECRET, DIGEST)
    assert ChainErc1271Checker(chain).is_valid_signature(CHAIN_ID, eoa, DIGEST, good) is False


def test_chain_without_connection_raises_instead_of_answering(chain: DevChain) -> None:
    with pytest.raises(UnknownChain):
        ChainErc1271Checker(chain).is_valid_signature(CHAIN_ID + 1, OWNER, DIGEST, b"")
    with pytest.raises(UnknownChain):
        ChainErc1271Checker({}).is_valid_signature(CHAIN_ID, OWNER, DIGEST, b"")


def test_owner_signature_check_uses_the_chain_for_contract_owners(
    chain: DevChain, funded: LocalTransactionSigner, erc1271_code: ContractArtifact
) -> None:
    wallet = _wallet(chain, funded, erc1271_code, 0)
    checker = ChainErc1271Checker({CHAIN_ID: chain})
    verify_owner_signature(
        owner=wallet,
        owner_kind="erc1271",
        chain_id=CHAIN_ID,
        digest=DIGEST,
        signature=sign_digest(OWNER_SECRET, DIGEST),
        erc1271=checker,
    )
    with pytest.raises(SignatureError) as refused:
        verify_owner_signature(
            owner=wallet,
            owner_kind="erc1271",
            chain_id=CHAIN_ID,
            digest=DIGEST,
            signature=sign_digest(secrets.token_bytes(32), DIGEST),
            erc1271=checker,
        )
    assert refused.value.code is ReasonCode.SIGNATURE_INVALID
