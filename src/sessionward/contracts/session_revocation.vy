# pragma version ~=0.4.3
"""
@title SessionWard session revocation
@notice Revoking one session (delete its state word) or all of them (bump the account's
        epoch), by the owner, by the grant's revoker, or by a relayed owner-signed
        `Revocation`.
"""

from . import reasons
from . import account_auth
from . import sessions
from . import session_grants as grants

uses: sessions
uses: account_auth

event SessionRevoked:
    session_key: indexed(address)
    revoked_by: indexed(address)

event SessionsRevokedAll:
    epoch: uint256


# =============================================================================================
# Revocation.

@internal
def _revoke(session_key: address, revoked_by: address):
    """
    @dev Delete the session's state word (one SSTORE, refunded in part). SESSION_UNKNOWN when
         never enabled, SESSION_REVOKED when already revoked.
    """
    if sessions._session_state[session_key] == 0:
        sessions._dead_session(session_key)
    sessions._session_state[session_key] = 0
    log SessionRevoked(session_key=session_key, revoked_by=revoked_by)


@internal
def _bump_epoch(account_word: uint256):
    """
    @dev Store `account_word` with its epoch increased by one (SESSION_REVOKED past
         2**32 - 1) and log it. The caller's other changes to the word are kept.
    """
    epoch: uint256 = (account_word & sessions.MASK32) + 1
    if epoch > sessions.MASK32:
        reasons._fail(reasons.SESSION_REVOKED)
    sessions._store_account_word((account_word & ~sessions.MASK32) | epoch)
    log SessionsRevokedAll(epoch=epoch)


@external
def revoke_session(session_key: address):
    """
    @notice Revoke one session.
    @dev Callable with the owner's authority (owner, the account itself, the EntryPoint) or by
         the grant's `revoker`, which can only revoke, never widen (NOT_AUTHORIZED otherwise).
         Deletes the key's state word only: the extra word stays, so the key reads as revoked
         (not unknown) and a revoked session can never run again unless the owner signs a new
         grant for it. SESSION_UNKNOWN for a key never enabled, SESSION_REVOKED when already
         revoked.
    @param session_key The session key to revoke.
    """
    if not account_auth._is_owner_caller():
        revoker: uint256 = sessions._session_extra[session_key] & sessions.MASK160
        if revoker == 0 or convert(msg.sender, uint256) != revoker:
            reasons._fail(reasons.NOT_AUTHORIZED)
    self._revoke(session_key, msg.sender)


@external
def revoke_all():
    """
    @notice Revoke every session of the account at once.
    @dev Owner authority only (NOT_AUTHORIZED). Increases the epoch by one: every session
         enabled in an earlier epoch is refused (SESSION_REVOKED), and so is every signed grant
         naming an earlier epoch. The epoch never decreases; at 2**32 - 1 it cannot increase
         (SESSION_REVOKED).
    """
    account_auth._check_owner_caller()
    self._bump_epoch(sessions._account_word())


@external
def revoke_session_signed(
    session_key: address,
    epoch: uint256,
    nonce: uint256,
    owner_signature: Bytes[account_auth.MAX_OWNER_SIGNATURE],
):
    """
    @notice Relay the owner's EIP-712 `Revocation` of one session, or of all of them.
    @dev Anyone may relay it. `nonce` must be the account's next owner-operation nonce and
         `epoch` the current epoch (a stale or replayed message is NONCE_REPLAYED), the owner's
         signature must be valid (SIGNATURE_*); the nonce is then spent, so each signed
         revocation applies at most once. Then as `revoke_all` (zero key) or `revoke_session`.
    @param session_key The session key to revoke, or the zero address for all sessions.
    @param epoch The account's current epoch (`epoch()`).
    @param nonce The account's next owner-operation nonce (`owner_nonce()`).
    @param owner_signature The owner's signature over `revocation_digest(session_key, epoch,
           nonce)`.
    """
    account_word: uint256 = sessions._account_word()
    if (
        nonce != (account_word >> sessions.ACC_OWNER_NONCE) & sessions.MASK32
        or epoch != account_word & sessions.MASK32
    ):
        reasons._fail(reasons.NONCE_REPLAYED)
    account_auth._check_owner_signature(
        grants._revocation_digest(session_key, epoch, nonce), owner_signature
    )
    account_word += 1 << sessions.ACC_OWNER_NONCE
    if session_key == empty(address):
        self._bump_epoch(account_word)
    else:
        sessions._store_account_word(account_word)
        self._revoke(session_key, account_auth._owner())
