"""EIP-7702 with real type-4 transactions on the in-process chain of ``sessionward.chain``.

titanoboa cannot send type-4 transactions, so this flow runs on ``EmbeddedChain`` (which applies
authorization lists like a node): a sponsor's single type-4 transaction delegates the EOA to the
SessionAccount implementation *and* installs a session the EOA's key signed; the relayer then
runs session calls and the EOA itself calls its own ``execute``. The same steps work on anvil
through ``sessionward.chain.rpc.RpcChain``.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from sessionward.chain.contracts import (
    DeployedContract,
    TransactionFailed,
    transact,
    wait_for_receipt,
)
from sessionward.chain.demo import demo_contract, deploy_demo
from sessionward.chain.embedded import EmbeddedChain
from sessionward.chain.ethereum_transactions import SetCodeTransaction, sign_authorization
from sessionward.chain.signer import LocalTransactionSigner
from sessionward.contracts.encoding import grant_struct
from sessionward.crypto import typed_data
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import address_from_secret, sign_digest
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.domain.calldata import Call, encode_single_execution, mode_single

CHAIN_ID = 31337
ONE_ETH = 10**18
TRANSFER = "transfer(address,uint256)"


def _word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


@pytest.fixture(scope="module")
def setup() -> dict[str, Any]:
    chain = EmbeddedChain(chain_id=CHAIN_ID)
    sponsor = LocalTransactionSigner(secrets.token_bytes(32))
    demo = deploy_demo(chain, deployer=sponsor)
    return {"chain": chain, "sponsor": sponsor, "demo": demo}


def test_a_sponsored_type4_transaction_delegates_and_installs_a_session(
    setup: dict[str, Any],
) -> None:
    chain, sponsor, demo = setup["chain"], setup["sponsor"], setup["demo"]
    account_code = demo_contract("SessionAccount")
    usdx = demo.bind(chain, "DemoToken", demo.token("USDX"))
    eoa_secret, session_secret = secrets.token_bytes(32), secrets.token_bytes(32)
    eoa = LocalTransactionSigner(eoa_secret)
    session_key = address_from_secret(session_secret)
    recipient = "0x" + secrets.token_bytes(20).hex()
    usdx.transact(sponsor, "mint", eoa.address, 100 * 10**6)

    now = chain.block_timestamp()
    selector = keccak256(TRANSFER.encode())[:4]
    grant = {
        "account": eoa.address,
        "sessionKey": session_key,
        "credential": typed_data.credential_hash("cred-7702"),
        "nonce": 1,
        "epoch": 0,
        "revoker": "0x" + "00" * 20,
        "envelope": {
            "chainId": CHAIN_ID,
            "validAfter": now - 10,
            "expiresAt": now + 3600,
            "capabilities": ["erc20.transfer"],
            "permissions": [
                {
                    "target": demo.token("USDX"),
                    "selector": selector,
                    "function": TRANSFER,
                    "actionClass": "erc20.transfer",
                    "maxValuePerCall": 0,
                    "rules": [{"arg": "to", "op": 4, "offset": 0, "values": [_word(recipient)]}],
                }
            ],
            "allowedDestinations": [recipient],
            "valueLimit": 0,
            "valuePeriod": 0,
            "tokenLimits": [{"token": demo.token("USDX"), "limit": 10 * 10**6, "period": 0}],
            "maxValueUsd": "",
            "maxUses": 0,
            "rateCount": 0,
            "rateInterval": 0,
            "maxFeeWei": 0,
        },
    }
    grant_signature = sign_digest(eoa_secret, typed_data.grant_digest(CHAIN_ID, eoa.address, grant))
    authorization = sign_authorization(
        eoa_secret, chain_id=CHAIN_ID, address=demo.implementation, nonce=0
    )
    fees = chain.max_fee()
    delegate_and_enable = SetCodeTransaction(
        chain_id=CHAIN_ID,
        nonce=chain.get_transaction_count(sponsor.address),
        max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
        max_fee_per_gas=fees.max_fee_per_gas,
        gas=1_000_000,
        to=eoa.address,
        value=0,
        data=account_code.encode("enable_session", grant_struct(grant), grant_signature),
        authorization_list=(authorization,),
    )
    receipt = wait_for_receipt(
        chain, chain.send_raw_transaction(sponsor.sign_transaction(delegate_and_enable))
    )
    assert receipt is not None and receipt.succeeded
    assert chain.get_code(eoa.address) == b"\xef\x01\x00" + bytes.fromhex(demo.implementation[2:])
    account = DeployedContract(chain, eoa.address, account_code)
    assert account.call_one("owner") == eoa.address

    # The relayer runs a session call; the tokens leave the EOA itself.
    call = Call(
        demo.token("USDX"), 0, encode_call(parse_signature(TRANSFER), (recipient, 4 * 10**6))
    )
    execution = encode_single_execution(call)
    deadline = chain.block_timestamp() + 600
    digest = typed_data.session_call_digest(
        CHAIN_ID,
        eoa.address,
        session_key,
        typed_data.execution_hash(mode_single(), execution),
        0,
        deadline,
    )
    signature = sign_digest(session_secret, digest)
    account.transact(
        sponsor,
        "execute_with_session",
        session_key,
        mode_single(),
        execution,
        0,
        deadline,
        signature,
    )
    assert usdx.call_one("balanceOf", recipient) == 4 * 10**6
    assert usdx.call_one("balanceOf", eoa.address) == 96 * 10**6

    # Only the EOA itself holds the owner's authority: a transaction from the EOA to itself.
    owner_pay = Call(
        demo.token("USDX"), 0, encode_call(parse_signature(TRANSFER), (sponsor.address, 6 * 10**6))
    )
    execute = account_code.encode("execute", mode_single(), encode_single_execution(owner_pay))
    with pytest.raises(TransactionFailed):
        transact(chain, sponsor, to=eoa.address, data=execute, gas=300_000)
    chain.set_balance(eoa.address, ONE_ETH)
    transact(chain, eoa, to=eoa.address, data=execute, gas=300_000)
    assert usdx.call_one("balanceOf", sponsor.address) == 6 * 10**6
