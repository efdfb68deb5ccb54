# pragma version ~=0.4.3
"""
@title SessionWard account authority: who the owner is and what counts as the owner
@notice The owner is never stored in storage, so nothing can initialise it, front-run it or
        corrupt it:

        - behind the factory the account is a 65-byte EIP-1167 proxy whose last 20 bytes are
          the owner (`proxy runtime ‖ owner`); the owner is read from the account's own code;
        - under EIP-7702 the account's code is the 23-byte delegation designator and the EOA
          is its own owner (`owner == self`);
        - the implementation contract itself also "owns itself", and no key exists for its
          address, so it is inert.

        The owner is an EOA (signatures checked with ecrecover) or, when the owner address has
        code, an ERC-1271 contract signer. The self-owned 7702 case always uses ecrecover.

        An owner-authorised *caller* is the owner, the account itself (a self-call made by an
        owner-authorised `execute`, or a 7702 EOA sending a transaction to itself) or the
        configured ERC-4337 EntryPoint (which only calls with an owner-validated user
        operation, because `validateUserOp` lets session-signed operations call nothing but
        `execute_session_op`).
"""

from . import eip712
from . import reasons


# The ERC-4337 v0.7 EntryPoint this implementation trusts (zero: no 4337 support).
ENTRY_POINT: public(immutable(address))

# Code size of a factory account: 45-byte EIP-1167 runtime followed by the 20-byte owner.
PROXY_CODE_SIZE: constant(uint256) = 65
PROXY_OWNER_OFFSET: constant(uint256) = 45

ERC1271_MAGIC: constant(bytes4) = 0x1626BA7E
MAX_OWNER_SIGNATURE: constant(uint256) = 1024


@deploy
def __init__(entry_point: address):
    ENTRY_POINT = entry_point


@internal
@view
def _owner() -> address:
    """
    @dev The owner of this account (see the module notice). Costs two warm code reads.
         `account` is a local on purpose: vyper compiles `self.codesize` / `self.code` to
         CODESIZE / CODECOPY, which under DELEGATECALL read the *implementation's* code; the
         account's own code needs EXTCODESIZE / EXTCODECOPY.
    """
    account: address = self
    if account.codesize == PROXY_CODE_SIZE:
        return convert(convert(slice(account.code, PROXY_OWNER_OFFSET, 20), bytes20), address)
    return account


@internal
@view
def _is_owner_caller() -> bool:
    """
    @dev True when `msg.sender` acts with the owner's authority.
    """
    return msg.sender == self or msg.sender == ENTRY_POINT or msg.sender == self._owner()


@internal
@view
def _check_owner_caller():
    if not self._is_owner_caller():
        reasons._fail(reasons.NOT_AUTHORIZED)


@internal
@view
def _erc1271_accepts(signer: address, digest: bytes32, signature: Bytes[MAX_OWNER_SIGNATURE]) -> bool:
    """
    @dev Ask an ERC-1271 contract signer; any revert, short answer or other value is a refusal.
    """
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        signer,
        abi_encode(digest, signature, method_id=method_id("isValidSignature(bytes32,bytes)")),
        max_outsize=32,
        # Explicit gas: vyper pushes a default gas argument (GAS) long before the STATICCALL,
        # which ERC-7562 (OP-012) bans in validation; the call still gets all but 1/64.
        gas=max_value(uint256),
        is_static_call=True,
        revert_on_failure=False,
    )
    return success and len(response) == 32 and convert(slice(response, 0, 4), bytes4) == ERC1271_MAGIC


@internal
@view
def _is_owner_signature(digest: bytes32, signature: Bytes[MAX_OWNER_SIGNATURE]) -> bool:
    """
    @dev Non-reverting owner signature check (ERC-1271 and ERC-4337 paths). A 65-byte
         signature that recovers to the owner is accepted before anything looks at the
         owner's code: an EOA owner's operation never reads EXTCODESIZE of an address without
         code (ERC-7562 OP-041). Only otherwise is a contract owner asked (ERC-1271). A
         contract owner cannot be impersonated by recovery: an address recovers only with
         its key, and a contract's address has none (a 7702-delegated owner has one, and its
         key is its authority anyway).
    """
    owner: address = self._owner()
    if len(signature) == 65 and eip712._try_recover(digest, slice(signature, 0, 65)) == owner:
        return True
    if owner != self and owner.is_contract:
        return self._erc1271_accepts(owner, digest, signature)
    return False


@internal
@view
def _check_owner_signature(digest: bytes32, signature: Bytes[MAX_OWNER_SIGNATURE]):
    """
    @dev Reverting owner signature check with exact reason codes (grant and revocation paths).
    """
    owner: address = self._owner()
    if owner != self and owner.is_contract:
        if not self._erc1271_accepts(owner, digest, signature):
            reasons._fail(reasons.SIGNATURE_INVALID)
        return
    if len(signature) != 65:
        reasons._fail(reasons.SIGNATURE_INVALID)
    signer: address = eip712._recover_strict(digest, slice(signature, 0, 65))
    if signer != owner:
        reasons._fail(reasons.SIGNATURE_INVALID)
