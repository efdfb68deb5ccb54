# pragma version ~=0.4.3
"""
@title A trivial ERC-7579 validator (tests only)
@notice Accepts a user operation whose signature is exactly `b"trivial"` from an account that
        installed it, refuses any other (SIG_VALIDATION_FAILED); counts the installs and
        uninstalls of each account in Vyper HashMaps. It proves that module management works
        on the third-party account, and it is the negative control of the ERC-7562 storage
        rule: its validation reads `installs[account]`, at `keccak256(slot ‖ account)`, which
        is not storage associated with the account (STO-021).
"""

struct PackedUserOperation:
    sender: address
    nonce: uint256
    initCode: Bytes[256]
    callData: Bytes[4096]
    accountGasLimits: bytes32
    preVerificationGas: uint256
    gasFees: bytes32
    paymasterAndData: Bytes[256]
    signature: Bytes[256]

MODULE_TYPE_VALIDATOR: constant(uint256) = 1

installs: public(HashMap[address, uint256])
uninstalls: public(HashMap[address, uint256])


@external
def onInstall(data: Bytes[1024]):
    self.installs[msg.sender] += 1


@external
def onUninstall(data: Bytes[1024]):
    self.uninstalls[msg.sender] += 1


@external
@view
def isModuleType(moduleTypeId: uint256) -> bool:
    return moduleTypeId == MODULE_TYPE_VALIDATOR


@external
@view
def isInitialized(smartAccount: address) -> bool:
    return self.installs[smartAccount] > self.uninstalls[smartAccount]


@external
@view
def validateUserOp(userOp: PackedUserOperation, userOpHash: bytes32) -> uint256:
    if userOp.signature == b"trivial" and self.installs[msg.sender] > self.uninstalls[msg.sender]:
        return 0
    return 1


@external
@view
def isValidSignatureWithSender(sender: address, hash: bytes32, signature: Bytes[256]) -> bytes4:
    return 0xFFFFFFFF
