# pragma version ~=0.4.3
"""
@title An ERC-4337 v0.7 account whose validation breaks ERC-7562 on purpose
@notice Test double of tests/erc4337/test_validation_rules.py: proves the rule gate sees real
        violations in a real trace. Its validateUserOp reads the block's timestamp (OP-011),
        keeps a GAS value (OP-012), reads its own balance (OP-080), asks an address without
        code for its size (OP-041) and reads a storage slot of another contract that is not
        associated with it (STO-021), then pays the prefund like any account.
"""

struct PackedUserOperation:
    sender: address
    nonce: uint256
    initCode: Bytes[256]
    callData: Bytes[1024]
    accountGasLimits: bytes32
    preVerificationGas: uint256
    gasFees: bytes32
    paymasterAndData: Bytes[256]
    signature: Bytes[256]


interface ERC20:
    def totalSupply() -> uint256: view


ENTRY_POINT: public(immutable(address))
TOKEN: immutable(address)
NOBODY: immutable(address)


@deploy
def __init__(entry_point: address, token: address, nobody: address):
    ENTRY_POINT = entry_point
    TOKEN = token
    NOBODY = nobody


@external
def validateUserOp(userOp: PackedUserOperation, userOpHash: bytes32, missingAccountFunds: uint256) -> uint256:
    assert msg.sender == ENTRY_POINT
    noise: uint256 = block.timestamp + msg.gas + self.balance + NOBODY.codesize
    noise += staticcall ERC20(TOKEN).totalSupply()
    if missingAccountFunds != 0:
        raw_call(msg.sender, b"", value=missingAccountFunds)
    return noise & 0


@external
@payable
def __default__():
    pass
