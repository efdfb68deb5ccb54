# pragma version ~=0.4.3
"""
@title SessionWard account factory (CREATE2)
@notice Deploys a SessionAccount for an owner at an address fixed by (factory, implementation,
        owner, salt). Each account is a 65-byte EIP-1167 minimal proxy to the implementation
        with the owner appended to its code:

            363d3d373d3d3d363d73 ‖ implementation ‖ 5af43d82803e903d91602b57fd5bf3 ‖ owner

        The proxy's DELEGATECALL forwarder ends before the appended bytes, so they are never
        executed; the implementation reads the owner from the account's code. Nothing is
        initialised after deployment, so nothing can be front-run: whoever deploys an
        address, and whenever, the same owner controls it. `create_account` is idempotent (it
        returns the existing account), as ERC-4337 `initCode` factories must be.
"""

from snekmate.utils import create2

from . import reasons

# The implementation every account delegates to.
IMPLEMENTATION: public(immutable(address))

# Initcode prefix: copy the 65-byte runtime that follows this 10-byte loader and return it.
#   PUSH1 0x41 PUSH1 0x0a RETURNDATASIZE CODECOPY PUSH1 0x41 RETURNDATASIZE RETURN
LOADER: constant(Bytes[10]) = x"6041600a3d3960413df3"
PROXY_HEAD: constant(Bytes[10]) = x"363d3d373d3d3d363d73"
PROXY_TAIL: constant(Bytes[15]) = x"5af43d82803e903d91602b57fd5bf3"


event AccountCreated:
    account: indexed(address)
    owner: indexed(address)
    salt: bytes32


@deploy
def __init__(implementation: address):
    """
    @param implementation A deployed SessionAccount (its code holds the EntryPoint).
    """
    IMPLEMENTATION = implementation


@internal
@view
def _initcode(owner: address) -> Bytes[85]:
    return concat(
        LOADER, PROXY_HEAD, convert(IMPLEMENTATION, bytes20), PROXY_TAIL, convert(owner, bytes20)
    )


@external
@view
def get_address(owner: address, salt: bytes32) -> address:
    """
    @notice The address `create_account(owner, salt)` deploys to (or deployed to).
    @dev Pure function of (this factory, the implementation, owner, salt): the same owner and
         salt always give the same account, deployed or not.
    @param owner The account's owner.
    @param salt Any 32 bytes distinguishing accounts of the same owner.
    @return The CREATE2 address of the owner's proxy.
    """
    return create2._compute_create2_address_self(salt, keccak256(self._initcode(owner)))


@external
def create_account(owner: address, salt: bytes32) -> address:
    """
    @notice Deploy the account of `owner` for `salt`, or return it if it already exists.
    @dev Idempotent, as ERC-4337 `initCode` factories must be: an existing account is returned
         unchanged and no event is logged. The owner is an EOA or an ERC-1271 contract; the zero
         address is refused (INPUT_MALFORMED). Nothing is initialised after deployment, so
         whoever calls this, the owner controls the account.
    @param owner The account's owner, appended to the proxy's code.
    @param salt Any 32 bytes distinguishing accounts of the same owner.
    @return The account's address (`get_address(owner, salt)`).
    """
    if owner == empty(address):
        reasons._fail(reasons.INPUT_MALFORMED)
    initcode: Bytes[85] = self._initcode(owner)
    account: address = create2._compute_create2_address_self(salt, keccak256(initcode))
    if account.codesize != 0:
        return account
    deployed: address = raw_create(initcode, salt=salt)
    log AccountCreated(account=deployed, owner=owner, salt=salt)
    return deployed
