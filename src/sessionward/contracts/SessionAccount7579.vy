# pragma version ~=0.4.3
"""
@title SessionWard SessionAccount7579
@notice SessionWard's own ERC-7579 account: an owner, modules the owner installs, and
        SessionWard's session module (erc7579_module/SessionWardModule.vy) installed as
        validator and executor from the start (`SessionAccount7579Factory`, or
        `install_session_module` under EIP-7702).

        - The owner is read from the account's code exactly as SessionAccount's (account_auth.vy):
          the 20 bytes appended to a factory proxy's code, or the account itself under
          EIP-7702. Nothing can change it.
        - ERC-4337 v0.7 `validateUserOp`: a user operation whose nonce key starts with an
          installed validator's address (`validator (20) ‖ key (4)`) is that validator's to
          judge; any other is the owner's (the owner's signature of the EIP-191 hash of the
          userOpHash, or the owner contract's ERC-1271 approval).
        - ERC-7579 `execute` (owner's authority: the EntryPoint, the account itself, the owner)
          and `executeFromExecutor` (installed executors only, never a call to the account
          itself), in the two modes erc7579.vy decodes: single and batch CALL, default exec
          type. Delegatecall, static and try modes are refused (CALL_TYPE_FORBIDDEN), and
          `supportsExecutionMode` answers true for exactly the two modes executed.
        - Module management (`installModule`, `uninstallModule`) with the owner's authority
          only; module types 1 (validator) and 2 (executor).
        - ERC-1271 `isValidSignature`: the owner's signature of SessionAccount's
          `AccountMessage(bytes32 hash)` in this account's SessionWard EIP-712 domain, never a
          bare signature of `hash` (see `isValidSignature`).
        - ERC-165 `supportsInterface` and ERC-7579 `accountId`.

        Storage: one HashMap (the installed modules), compiled at the slot
        `keccak256("sessionward.account7579.modules")` by a storage-layout override
        (SessionAccount7579.layout.json), so an EIP-7702 EOA that was delegated to
        SessionAccount (slots 0-13) and re-delegates here reads none of its old words.
"""

from . import eip712
from . import reasons
from . import erc7579
from . import account_auth

initializes: account_auth

exports: account_auth.ENTRY_POINT


# ERC-4337 v0.7 packed user operation, with the session module's bounds (every operation this
# account accepts decodes in the module too).
struct PackedUserOperation:
    sender: address
    nonce: uint256
    initCode: Bytes[MAX_INIT_CODE]
    callData: Bytes[MAX_USER_OP_CALLDATA]
    accountGasLimits: bytes32
    preVerificationGas: uint256
    gasFees: bytes32
    paymasterAndData: Bytes[MAX_PAYMASTER_DATA]
    signature: Bytes[account_auth.MAX_OWNER_SIGNATURE]


interface Module:
    def onInstall(data: Bytes[MAX_MODULE_DATA]): nonpayable
    def onUninstall(data: Bytes[MAX_MODULE_DATA]): nonpayable
    def isModuleType(moduleTypeId: uint256) -> bool: view


interface Validator:
    def validateUserOp(userOp: PackedUserOperation, userOpHash: bytes32) -> uint256: nonpayable


event ModuleInstalled:
    moduleTypeId: uint256
    module: address


event ModuleUninstalled:
    moduleTypeId: uint256
    module: address


MAX_INIT_CODE: constant(uint256) = 512
MAX_PAYMASTER_DATA: constant(uint256) = 1024
# execute(bytes32,bytes): selector, mode, offset, length, payload.
MAX_USER_OP_CALLDATA: constant(uint256) = erc7579.MAX_EXECUTION_BYTES + 4 + 32 * 3
MAX_MODULE_DATA: constant(uint256) = 1024
# What `executeFromExecutor` returns of each call's return data (the rest is cut off).
MAX_RETURN_DATA: constant(uint256) = 256

MODULE_TYPE_VALIDATOR: constant(uint256) = 1
MODULE_TYPE_EXECUTOR: constant(uint256) = 2
SIG_VALIDATION_FAILED: constant(uint256) = 1

ACCOUNT_ID: constant(String[29]) = "sessionward.account7579.1.0.0"

ERC1271_MAGIC: constant(bytes4) = 0x1626BA7E
ERC1271_INVALID: constant(bytes4) = 0xFFFFFFFF
# SessionAccount's ERC-1271 wrapper (its third form): the same typed data, the same domain.
ACCOUNT_MESSAGE_TYPEHASH: constant(bytes32) = keccak256("AccountMessage(bytes32 hash)")

# ERC-165 interface ids: the XOR of each interface's selectors.
INTERFACE_ERC165: constant(bytes4) = 0x01FFC9A7
INTERFACE_ERC1271: constant(bytes4) = 0x1626BA7E
# ERC-4337 IAccount: validateUserOp((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32,uint256)
INTERFACE_ERC4337_ACCOUNT: constant(bytes4) = 0x19822F7C
# IERC7579Execution: execute(bytes32,bytes) 0xe9ae5c53 ^ executeFromExecutor(bytes32,bytes) 0xd691c964
INTERFACE_ERC7579_EXECUTION: constant(bytes4) = 0x3F3F9537
# IERC7579AccountConfig: accountId() 0x9cfd7cff ^ supportsExecutionMode(bytes32) 0xd03c7914
# ^ supportsModule(uint256) 0xf2dc691d
INTERFACE_ERC7579_ACCOUNT_CONFIG: constant(bytes4) = 0xBE1D6CF6
# IERC7579ModuleConfig: installModule(uint256,address,bytes) 0x9517e29f
# ^ uninstallModule(uint256,address,bytes) 0xa71763a8 ^ isModuleInstalled(uint256,address,bytes) 0x112d3a7d
INTERFACE_ERC7579_MODULE_CONFIG: constant(bytes4) = 0x232DBB4A

# SessionWard's ERC-7579 module, installed by the factory and by `install_session_module`.
SESSION_MODULE: public(immutable(address))

# Installed module types per module: bit (type - 1). The only storage variable; its slot is
# set by SessionAccount7579.layout.json (see the contract notice).
_installed: HashMap[address, uint256]


@deploy
def __init__(entry_point: address, session_module: address):
    """
    @param entry_point The ERC-4337 v0.7 EntryPoint every account of this implementation trusts
           (zero address: no ERC-4337).
    @param session_module SessionWard's ERC-7579 module (SessionWardModule.vy) on this chain.
    """
    account_auth.__init__(entry_point)
    SESSION_MODULE = session_module


# ---------------------------------------------------------------------------------------------
# ERC-4337

@external
def validateUserOp(userOp: PackedUserOperation, userOpHash: bytes32, missingAccountFunds: uint256) -> uint256:
    """
    @notice ERC-4337 v0.7 validation: by the installed validator the nonce key names, else by
            the owner.
    @dev Only the EntryPoint may call it (NOT_AUTHORIZED). The validator is the top 20 bytes of
         the nonce (`validator ‖ key (4) ‖ sequence (8)`); when it is installed as a validator
         its `validateUserOp(userOp, userOpHash)` answers (its reverts are the operation's),
         else the signature must be the owner's over the EIP-191 hash of `userOpHash` (65
         bytes, or an ERC-1271 owner's approval): 0, or SIG_VALIDATION_FAILED. Then pays the
         EntryPoint `missingAccountFunds`, never more. Reads only this account's storage and
         code; the calls carry an explicit gas argument (ERC-7562 OP-012).
    @param userOp The packed user operation.
    @param userOpHash The EntryPoint's hash of the operation (binds chain and EntryPoint).
    @param missingAccountFunds What the EntryPoint asks the account to deposit.
    @return The validator's validation data, 0 (owner signature valid) or 1 (invalid).
    """
    if msg.sender != account_auth.ENTRY_POINT or msg.sender == empty(address):
        reasons._fail(reasons.NOT_AUTHORIZED)
    validator: address = convert(userOp.nonce >> 96, address)
    validation: uint256 = SIG_VALIDATION_FAILED
    if validator != empty(address) and self._installed[validator] & MODULE_TYPE_VALIDATOR != 0:
        validation = extcall Validator(validator).validateUserOp(userOp, userOpHash, gas=max_value(uint256))
    elif account_auth._is_owner_signature(eip712._eth_signed_digest(userOpHash), userOp.signature):
        validation = 0
    if missingAccountFunds != 0:
        # All but 1/64 of the gas left, as `gas: type(uint256).max` in Solidity accounts. A
        # failed payment fails the operation in the EntryPoint.
        paid: bool = raw_call(msg.sender, b"", value=missingAccountFunds, gas=max_value(uint256), revert_on_failure=False)
    return validation


# ---------------------------------------------------------------------------------------------
# ERC-7579 execution

@external
@payable
def execute(mode: bytes32, executionCalldata: Bytes[erc7579.MAX_EXECUTION_BYTES]):
    """
    @notice ERC-7579 execution with the owner's authority: single or batch CALLs.
    @dev NOT_AUTHORIZED unless called by the EntryPoint (an operation the owner or an installed
         validator accepted), the account itself or the owner. Mode and encoding as erc7579.vy
         (CALL_TYPE_FORBIDDEN for delegatecall, static, try and unknown modes; EMPTY_BATCH;
         CALLDATA_MALFORMED). A failing call reverts the whole execution.
    @param mode The ERC-7579 mode: single or batch CALL, default exec type.
    @param executionCalldata The ERC-7579 execution calldata (canonical encoding only).
    """
    account_auth._check_owner_caller()
    erc7579._run(executionCalldata, erc7579._decode(mode, executionCalldata, 0))


@external
@payable
def executeFromExecutor(
    mode: bytes32, executionCalldata: Bytes[erc7579.MAX_EXECUTION_BYTES]
) -> DynArray[Bytes[MAX_RETURN_DATA], erc7579.MAX_BATCH]:
    """
    @notice ERC-7579 execution for an installed executor module.
    @dev NOT_AUTHORIZED unless `msg.sender` is installed as an executor. Same modes and
         encoding as `execute`. A call to the account itself is SELF_CALL_FORBIDDEN (checked
         for every call before any runs): an executor never reaches the owner's functions
         (`installModule`, `execute`...) through the account's own authority.
    @param mode The ERC-7579 mode: single or batch CALL, default exec type.
    @param executionCalldata The ERC-7579 execution calldata (canonical encoding only).
    @return Each call's return data, cut to its first 256 bytes.
    """
    if self._installed[msg.sender] & MODULE_TYPE_EXECUTOR == 0:
        reasons._fail(reasons.NOT_AUTHORIZED)
    calls: DynArray[erc7579.CallRef, erc7579.MAX_BATCH] = erc7579._decode(mode, executionCalldata, 0)
    for c: erc7579.CallRef in calls:
        if c.target == self:
            reasons._fail(reasons.SELF_CALL_FORBIDDEN)
    results: DynArray[Bytes[MAX_RETURN_DATA], erc7579.MAX_BATCH] = []
    for c: erc7579.CallRef in calls:
        results.append(
            raw_call(c.target, slice(executionCalldata, c.start, c.length), value=c.value, max_outsize=MAX_RETURN_DATA)
        )
    return results


# ---------------------------------------------------------------------------------------------
# ERC-7579 module configuration

@internal
@pure
def _type_bit(moduleTypeId: uint256) -> uint256:
    """
    @dev The `_installed` bit of a supported module type; INPUT_MALFORMED for any other.
    """
    if moduleTypeId != MODULE_TYPE_VALIDATOR and moduleTypeId != MODULE_TYPE_EXECUTOR:
        reasons._fail(reasons.INPUT_MALFORMED)
    return moduleTypeId


@internal
def _install(moduleTypeId: uint256, module: address, initData: Bytes[MAX_MODULE_DATA]):
    """
    @dev Mark `module` installed as `moduleTypeId` and call its `onInstall(initData)`.
         INPUT_MALFORMED for an unsupported type, a module that does not declare the type, or
         one already installed as it.
    """
    bit: uint256 = self._type_bit(moduleTypeId)
    if not staticcall Module(module).isModuleType(moduleTypeId):
        reasons._fail(reasons.INPUT_MALFORMED)
    installed: uint256 = self._installed[module]
    if installed & bit != 0:
        reasons._fail(reasons.INPUT_MALFORMED)
    self._installed[module] = installed | bit
    extcall Module(module).onInstall(initData)
    log ModuleInstalled(moduleTypeId=moduleTypeId, module=module)


@external
def installModule(moduleTypeId: uint256, module: address, initData: Bytes[MAX_MODULE_DATA]):
    """
    @notice ERC-7579: install `module` as `moduleTypeId` (1 validator, 2 executor).
    @dev The owner's authority only: the EntryPoint (an owner-signed operation: the session
         module never lets a session's operation call anything but `execute`, nor `execute`
         call the account), the account itself, or the owner (NOT_AUTHORIZED otherwise; an
         executor's self-call is refused by `executeFromExecutor`). INPUT_MALFORMED for another
         type, a module whose `isModuleType` denies it, or one already installed as that type.
         Calls `module.onInstall(initData)` (its revert reverts the install) and logs
         ModuleInstalled.
    @param moduleTypeId The module type: 1 (validator) or 2 (executor).
    @param module The module.
    @param initData Passed to `onInstall` (SessionWardModule reads the type from its first byte).
    """
    account_auth._check_owner_caller()
    self._install(moduleTypeId, module, initData)


@external
def uninstallModule(moduleTypeId: uint256, module: address, deInitData: Bytes[MAX_MODULE_DATA]):
    """
    @notice ERC-7579: uninstall `module` as `moduleTypeId`.
    @dev The owner's authority only, as `installModule` (NOT_AUTHORIZED). INPUT_MALFORMED for
         another type or a module not installed as it. Clears the type, then calls
         `module.onUninstall(deInitData)` (its revert reverts the uninstall) and logs
         ModuleUninstalled.
    @param moduleTypeId The module type: 1 (validator) or 2 (executor).
    @param module The module.
    @param deInitData Passed to `onUninstall`.
    """
    account_auth._check_owner_caller()
    bit: uint256 = self._type_bit(moduleTypeId)
    installed: uint256 = self._installed[module]
    if installed & bit == 0:
        reasons._fail(reasons.INPUT_MALFORMED)
    self._installed[module] = installed & ~bit
    extcall Module(module).onUninstall(deInitData)
    log ModuleUninstalled(moduleTypeId=moduleTypeId, module=module)


@external
def install_session_module():
    """
    @notice Install SESSION_MODULE as validator and executor: the factory's proxies run it in
            their constructor; an EIP-7702 EOA calls it on itself after delegating here.
    @dev Allowed only to the account itself (`msg.sender == self`: a 7702 EOA's transaction to
         itself, or the owner's `execute` of a self-call) or while the account is being
         constructed (its EXTCODESIZE is 0: only its own initcode, which the factory's CREATE2
         address commits to, can be running then). NOT_AUTHORIZED for anyone else: a stranger,
         the EntryPoint calling it directly, the implementation itself. Installs each type that
         is not installed yet (idempotent), through `onInstall` with data 0x01 and 0x02.
    """
    account: address = self
    if msg.sender != account and account.codesize != 0:
        reasons._fail(reasons.NOT_AUTHORIZED)
    installed: uint256 = self._installed[SESSION_MODULE]
    if installed & MODULE_TYPE_VALIDATOR == 0:
        self._install(MODULE_TYPE_VALIDATOR, SESSION_MODULE, x"01")
    if installed & MODULE_TYPE_EXECUTOR == 0:
        self._install(MODULE_TYPE_EXECUTOR, SESSION_MODULE, x"02")


@external
@view
def isModuleInstalled(moduleTypeId: uint256, module: address, additionalContext: Bytes[MAX_MODULE_DATA]) -> bool:
    """
    @notice ERC-7579: whether `module` is installed as `moduleTypeId`.
    @dev False for every type but 1 and 2 (never reverts). `additionalContext` is not used.
    @param moduleTypeId The module type.
    @param module The module.
    @param additionalContext Ignored.
    @return True while installed as that type.
    """
    if moduleTypeId != MODULE_TYPE_VALIDATOR and moduleTypeId != MODULE_TYPE_EXECUTOR:
        return False
    return self._installed[module] & moduleTypeId != 0


# ---------------------------------------------------------------------------------------------
# ERC-7579 account configuration, ERC-165, ERC-1271

@external
@pure
def accountId() -> String[29]:
    """
    @notice ERC-7579 account implementation id, `vendorname.accountname.semver`.
    @dev A constant of the code: every proxy and 7702 EOA of this implementation answers it.
    @return "sessionward.account7579.1.0.0".
    """
    return ACCOUNT_ID


@external
@pure
def supportsExecutionMode(encodedMode: bytes32) -> bool:
    """
    @notice ERC-7579: whether `execute` and `executeFromExecutor` run `encodedMode`.
    @dev Exactly the modes erc7579.vy decodes: single and batch CALL, default exec type, every
         other mode byte zero. Any other mode (delegatecall, static, try, a selector or payload)
         is refused by both functions.
    @param encodedMode The ERC-7579 mode.
    @return True for the single and the batch mode only.
    """
    return encodedMode == erc7579.MODE_SINGLE or encodedMode == erc7579.MODE_BATCH


@external
@pure
def supportsModule(moduleTypeId: uint256) -> bool:
    """
    @notice ERC-7579: whether modules of `moduleTypeId` can be installed.
    @dev Validators (1) and executors (2); no fallback handler (3) nor hook (4).
    @param moduleTypeId The module type.
    @return True for 1 and 2.
    """
    return moduleTypeId == MODULE_TYPE_VALIDATOR or moduleTypeId == MODULE_TYPE_EXECUTOR


@external
@pure
def supportsInterface(interfaceId: bytes4) -> bool:
    """
    @notice ERC-165 interface detection.
    @dev ERC-165, ERC-1271, ERC-4337's IAccount, and ERC-7579's IERC7579Execution,
         IERC7579AccountConfig and IERC7579ModuleConfig (every function of each is implemented,
         none reverts by design). Not 0xffffffff.
    @param interfaceId The interface id (XOR of its selectors).
    @return True for the six interfaces above.
    """
    return interfaceId in [
        INTERFACE_ERC165,
        INTERFACE_ERC1271,
        INTERFACE_ERC4337_ACCOUNT,
        INTERFACE_ERC7579_EXECUTION,
        INTERFACE_ERC7579_ACCOUNT_CONFIG,
        INTERFACE_ERC7579_MODULE_CONFIG,
    ]


@external
@view
def isValidSignature(hash: bytes32, signature: Bytes[account_auth.MAX_OWNER_SIGNATURE]) -> bytes4:
    """
    @notice ERC-1271: the owner signed `hash` for this account: the owner's ECDSA signature
            (or ERC-1271 owner's approval) of the EIP-712 digest of `AccountMessage(bytes32
            hash)` in this account's SessionWard domain (SessionAccount's third form).
    @dev Never a bare signature of `hash`: the wrapper binds chain and account, so a signature
         for one account of an owner never validates on another, and a SessionAccount grant
         signature (the owner's bare signature of the grant digest, which SessionWardModule's
         `enable_session` would accept through this function) cannot be replayed after an
         EIP-7702 EOA re-delegates here. Session keys never sign for the account. Never reverts
         on a bad signature.
    @param hash The hash the application verifies.
    @param signature The owner's signature of the wrapped digest.
    @return 0x1626ba7e when valid, else 0xffffffff.
    """
    digest: bytes32 = eip712._typed_digest(keccak256(abi_encode(ACCOUNT_MESSAGE_TYPEHASH, hash)))
    if account_auth._is_owner_signature(digest, signature):
        return ERC1271_MAGIC
    return ERC1271_INVALID


@external
@view
def owner() -> address:
    """
    @notice The account's owner.
    @dev Read from the account's code (account_auth.vy): the address appended to a factory
         proxy's code, or the account itself under EIP-7702. Nothing can change it.
    @return The owner address.
    """
    return account_auth._owner()


@external
@payable
def __default__():
    """
    @notice Receive ether.
    @dev Accepts only empty call data: an unknown function reverts CALLDATA_MALFORMED. No
         fallback-handler modules. Changes no storage.
    """
    if len(msg.data) != 0:
        reasons._fail(reasons.CALLDATA_MALFORMED)
