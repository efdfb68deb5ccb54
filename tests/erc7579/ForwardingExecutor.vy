# pragma version ~=0.4.3
"""
@title A forwarding ERC-7579 executor (tests only)
@notice Executor module (type 2) that runs whatever anyone asks through an account's
        `executeFromExecutor`, or calls the account directly. It stands for an installed
        executor gone rogue: SessionAccount7579 must keep it away from the owner's functions.
"""

interface Account:
    def executeFromExecutor(mode: bytes32, executionCalldata: Bytes[4096]) -> DynArray[Bytes[256], 8]: payable

MODULE_TYPE_EXECUTOR: constant(uint256) = 2


@external
def onInstall(data: Bytes[1024]):
    pass


@external
def onUninstall(data: Bytes[1024]):
    pass


@external
@view
def isModuleType(moduleTypeId: uint256) -> bool:
    return moduleTypeId == MODULE_TYPE_EXECUTOR


@external
def forward(account: address, mode: bytes32, execution: Bytes[4096]) -> DynArray[Bytes[256], 8]:
    return extcall Account(account).executeFromExecutor(mode, execution)


@external
def call_account(account: address, data: Bytes[4096]):
    raw_call(account, data)
