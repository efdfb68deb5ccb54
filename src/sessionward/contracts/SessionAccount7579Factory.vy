# pragma version ~=0.4.3
"""
@title SessionWard SessionAccount7579 factory (CREATE2)
@notice Deploys a SessionAccount7579 for an owner at an address fixed by (factory,
        implementation, owner, salt), with SessionWard's module already installed as validator
        and executor. Each account is SessionAccount's 65-byte EIP-1167 proxy with the owner
        appended (the implementation reads the owner from the account's code, account_auth.vy),
        created by this init code:

            INSTALL ‖ implementation ‖ LOAD ‖ proxy runtime (45) ‖ owner (20)

        INSTALL ‖ implementation ‖ LOAD DELEGATECALLs the implementation's
        `install_session_module()` (selector 0x0303272b) while the account is under
        construction (its code size is still 0, the one state in which the implementation
        accepts a call from someone other than the account itself), reverts with the
        implementation's revert data if that fails, and returns the 65-byte runtime:

            PUSH4 selector PUSH0 MSTORE                      memory[28:32] = selector
            PUSH0 PUSH0 PUSH1 4 PUSH1 28 PUSH20 implementation GAS DELEGATECALL
            PUSH1 :ok JUMPI
            RETURNDATASIZE PUSH0 PUSH0 RETURNDATACOPY RETURNDATASIZE PUSH0 REVERT
            :ok JUMPDEST PUSH1 65 PUSH1 57 PUSH0 CODECOPY PUSH1 65 PUSH0 RETURN

        The installation is part of the init code, so of the CREATE2 address: whoever deploys
        an account, and whenever, it has the owner and the module, and nothing is left to
        initialise or front-run. `create_account` is idempotent (it returns the existing
        account), as ERC-4337 `initCode` factories must be.
"""

from snekmate.utils import create2

from . import reasons

# The SessionAccount7579 implementation every account delegates to.
IMPLEMENTATION: public(immutable(address))

# method_id("install_session_module()"), as the first bytes of INSTALL's PUSH4.
INSTALL: constant(Bytes[14]) = x"630303272b5f525f5f6004601c73"
LOAD: constant(Bytes[23]) = x"5af4602e573d5f5f3e3d5ffd5b604160395f3960415ff3"
PROXY_HEAD: constant(Bytes[10]) = x"363d3d373d3d3d363d73"
PROXY_TAIL: constant(Bytes[15]) = x"5af43d82803e903d91602b57fd5bf3"


event AccountCreated:
    account: indexed(address)
    owner: indexed(address)
    salt: bytes32


@deploy
def __init__(implementation: address):
    """
    @param implementation A deployed SessionAccount7579 (its code holds the EntryPoint and the
           session module).
    """
    IMPLEMENTATION = implementation


@internal
@view
def _initcode(owner: address) -> Bytes[122]:
    implementation: bytes20 = convert(IMPLEMENTATION, bytes20)
    return concat(
        INSTALL, implementation, LOAD, PROXY_HEAD, implementation, PROXY_TAIL, convert(owner, bytes20)
    )


@external
@view
def get_address(owner: address, salt: bytes32) -> address:
    """
    @notice The address `create_account(owner, salt)` deploys to (or deployed to).
    @dev Pure function of (this factory, the implementation, owner, salt): the same owner and
         salt always give the same account, deployed or not; the owner is in the init code, so
         no one can take an owner's address with another owner.
    @param owner The account's owner.
    @param salt Any 32 bytes distinguishing accounts of the same owner.
    @return The CREATE2 address of the owner's account.
    """
    return create2._compute_create2_address_self(salt, keccak256(self._initcode(owner)))


@external
def create_account(owner: address, salt: bytes32) -> address:
    """
    @notice Deploy the account of `owner` for `salt` with the session module installed as
            validator and executor, or return it if it already exists.
    @dev Idempotent, as ERC-4337 `initCode` factories must be: an existing account is returned
         unchanged and no event is logged. The owner is an EOA or an ERC-1271 contract; the zero
         address is refused (INPUT_MALFORMED). The module's installation runs in the account's
         constructor (see the notice); if it reverts, so does the creation.
    @param owner The account's owner, appended to the proxy's code.
    @param salt Any 32 bytes distinguishing accounts of the same owner.
    @return The account's address (`get_address(owner, salt)`).
    """
    if owner == empty(address):
        reasons._fail(reasons.INPUT_MALFORMED)
    initcode: Bytes[122] = self._initcode(owner)
    account: address = create2._compute_create2_address_self(salt, keccak256(initcode))
    if account.codesize != 0:
        return account
    deployed: address = raw_create(initcode, salt=salt)
    log AccountCreated(account=deployed, owner=owner, salt=salt)
    return deployed
