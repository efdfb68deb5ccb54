# pragma version ~=0.4.3
"""
@title Test double of an ERC-4337 v0.7 paymaster that sponsors every operation
@notice Accepts every user operation (validationData 0, empty context: no postOp) and pays
        from its deposit at the EntryPoint, so tests can check what a sponsored session
        operation costs the account (nothing) and its fee budget (nothing).
"""

struct PackedUserOperation:
    sender: address
    nonce: uint256
    initCode: Bytes[256]
    callData: Bytes[4228]
    accountGasLimits: bytes32
    preVerificationGas: uint256
    gasFees: bytes32
    paymasterAndData: Bytes[1024]
    signature: Bytes[1024]


@external
def validatePaymasterUserOp(userOp: PackedUserOperation, userOpHash: bytes32, maxCost: uint256) -> (Bytes[32], uint256):
    return b"", 0


@external
def postOp(mode: uint8, context: Bytes[32], actualGasCost: uint256, actualUserOpFeePerGas: uint256):
    pass
