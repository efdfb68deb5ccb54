# pragma version ~=0.4.3
"""
@title Test double of the ERC-4337 v0.7 EntryPoint (validation and execution of one op)
@notice Computes the v0.7 userOpHash, calls `validateUserOp`, applies the v0.7 time check
        (`validAfter <= now <= validUntil`, validUntil 0 = forever) and then calls the account
        with the op's call data. Unlike the real EntryPoint it bubbles an execution revert, so
        tests can assert the account's reason code; it ignores gas accounting and paymasters.
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


interface IAccount:
    def validateUserOp(userOp: PackedUserOperation, userOpHash: bytes32, missingAccountFunds: uint256) -> uint256: nonpayable


last_validation_data: public(uint256)
nonces: public(HashMap[address, uint256])


@external
@view
def get_user_op_hash(op: PackedUserOperation) -> bytes32:
    return self._hash(op)


@internal
@view
def _hash(op: PackedUserOperation) -> bytes32:
    packed: bytes32 = keccak256(
        abi_encode(
            op.sender,
            op.nonce,
            keccak256(op.initCode),
            keccak256(op.callData),
            op.accountGasLimits,
            op.preVerificationGas,
            op.gasFees,
            keccak256(op.paymasterAndData),
        )
    )
    return keccak256(abi_encode(packed, self, chain.id))


@external
def validate(op: PackedUserOperation, missing_account_funds: uint256) -> uint256:
    """
    @notice Only the validation step (what a bundler simulates).
    """
    data: uint256 = extcall IAccount(op.sender).validateUserOp(op, self._hash(op), missing_account_funds)
    self.last_validation_data = data
    return data


@external
def handle_op(op: PackedUserOperation):
    assert op.nonce == self.nonces[op.sender], "AA25 invalid account nonce"
    self.nonces[op.sender] += 1
    data: uint256 = extcall IAccount(op.sender).validateUserOp(op, self._hash(op), 0)
    self.last_validation_data = data
    assert data & (2**160 - 1) == 0, "AA24 signature error"
    valid_until: uint256 = (data >> 160) & (2**48 - 1)
    if valid_until == 0:
        valid_until = 2**48 - 1
    valid_after: uint256 = data >> 208
    assert block.timestamp >= valid_after and block.timestamp <= valid_until, "AA22 expired or not due"
    raw_call(op.sender, op.callData)


@external
@payable
def __default__():
    pass
