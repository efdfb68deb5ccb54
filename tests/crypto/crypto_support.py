"""Shared test support of the crypto tests: fixed keys, a realistic grant, an eth_account oracle.

Keys are derived from fixed labels (``keccak256(b"sessionward/test/<role>")``) so that every
run, and docs/protocol.md section 6, use the same ones.
"""

from __future__ import annotations

from typing import Any

from eth_account.messages import _hash_eip191_message, encode_typed_data

from sessionward.crypto.keccak import keccak256
from sessionward.crypto.secp256k1 import address_from_secret
from sessionward.crypto.typed_data import credential_hash

OWNER_SECRET = keccak256(b"sessionward/test/owner")
SESSION_SECRET = keccak256(b"sessionward/test/session")
CREDENTIAL_SECRET = keccak256(b"sessionward/test/credential")
ACCOUNT = "0x1111111111111111111111111111111111111111"
CHAIN_ID = 1
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"


def eth_account_digest(document: dict[str, Any]) -> bytes:
    """The reference digest of an eth_signTypedData_v4 document, computed by eth_account."""
    return bytes(_hash_eip191_message(encode_typed_data(full_message=document)))


def _address(label: str) -> str:
    return "0x" + keccak256(label.encode())[:20].hex()


def _word(number: int) -> bytes:
    return number.to_bytes(32, "big")


_FUNCTIONS = [
    ("transfer(address,uint256)", "erc20.transfer"),
    ("approve(address,uint256)", "erc20.approve"),
    (
        "exactInputSingle((address,address,uint24,address,uint256,uint256,uint160))",
        "swap.execute",
    ),
    ("deposit()", "weth.wrap"),
]


def build_grant(permission_count: int = 8, *, account: str = ACCOUNT) -> dict[str, Any]:
    """A realistic grant: ``permission_count`` permissions over four catalog functions, one or
    two rules each, two token limits and every limit field set."""
    permissions = []
    for index in range(permission_count):
        function, action_class = _FUNCTIONS[index % len(_FUNCTIONS)]
        rules = [
            {
                "arg": "to",
                "op": 4,
                "offset": 0,
                "values": [_word(int(_address(f"recipient{index}"), 16)), _word(7)],
            },
            {"arg": "amount", "op": 2, "offset": 1, "values": [_word(10**9)]},
        ][: 1 + index % 2]
        permissions.append(
            {
                "target": _address(f"target{index % 3}"),
                "selector": keccak256(function.encode())[:4],
                "function": function,
                "actionClass": action_class,
                "maxValuePerCall": 10**18 if action_class == "weth.wrap" else 0,
                "rules": rules,
            }
        )
    return {
        "account": account,
        "sessionKey": address_from_secret(SESSION_SECRET),
        "credential": credential_hash("cred_test_0001"),
        "nonce": 3,
        "epoch": 1,
        "revoker": _address("relayer"),
        "envelope": {
            "chainId": CHAIN_ID,
            "validAfter": 1_767_225_600,
            "expiresAt": 1_767_229_200,
            "capabilities": [c for _, c in _FUNCTIONS],
            "permissions": permissions,
            "allowedDestinations": [_address(f"target{i}") for i in range(3)],
            "valueLimit": 10**18,
            "valuePeriod": 86_400,
            "tokenLimits": [
                {"token": USDC, "limit": 500 * 10**6, "period": 86_400},
                {"token": _address("target1"), "limit": 10**20, "period": 0},
            ],
            "maxValueUsd": "1000.00",
            "maxUses": 100,
            "rateCount": 10,
            "rateInterval": 60,
            "maxFeeWei": 10**16,
        },
    }


# EIP-55, "Test Cases" (all caps, all lower, normal): each is its own checksummed form.
EIP55_TEST_CASES = [
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]
