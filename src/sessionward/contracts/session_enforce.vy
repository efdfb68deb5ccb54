# pragma version ~=0.4.3
"""
@title SessionWard session enforcement: running a call with a session's authority
@notice docs/protocol.md section 4 for an ERC-7579 execution: the per-call scope (rules 1-5,
        read-only) and the cumulative limits (rules 6-8: native value, token outflows and the
        use count, written to the account's session storage), then the CALLs. Reverts with the
        reason code as the revert string, first violation first.
"""

from . import reasons
from . import eip712
from . import erc7579
from . import account_auth
from . import sessions
from . import session_grants as grants
from . import session_catalog as catalog

uses: sessions
uses: account_auth

struct TokenOutflow:
    token: address
    amount: uint256
    period: uint48

SELECTOR_SIZE: constant(uint256) = 4

# Event nonce of executions that came through the EntryPoint (they use its nonce, not ours).
ENTRY_POINT_NONCE: constant(uint256) = max_value(uint256)

event SessionExecuted:
    session_key: indexed(address)
    nonce: uint256

@internal
@view
def _check_window(state: uint256):
    """
    @dev The session is valid now: validAfter <= now < expiresAt.
    """
    if block.timestamp < (state >> sessions.ST_VALID_AFTER) & sessions.MASK48:
        reasons._fail(reasons.SESSION_NOT_YET_VALID)
    if block.timestamp >= (state >> sessions.ST_EXPIRES_AT) & sessions.MASK48:
        reasons._fail(reasons.SESSION_EXPIRED)


@internal
@pure
def _window(now: uint256, anchor: uint256, period: uint256) -> uint256:
    """
    @dev The refilling window containing `now`: `(now - anchor) // period`, 0 before the anchor
         or without a period. A limit refills exactly at `anchor + k*period`.
    """
    if period == 0 or now <= anchor:
        return 0
    return (now - anchor) // period


# =============================================================================================
# Execution.

@external
def execute_with_session(
    session_key: address,
    mode: bytes32,
    execution_calldata: Bytes[erc7579.MAX_EXECUTION_BYTES],
    nonce: uint256,
    deadline: uint48,
    signature: Bytes[65],
):
    """
    @notice Run an ERC-7579 execution with a session's authority. Anyone may relay it.
    @dev Session state (SESSION_UNKNOWN, SESSION_REVOKED, SESSION_NOT_YET_VALID,
         SESSION_EXPIRED), the call's deadline (`now < deadline`, else SESSION_EXPIRED), the
         session key's signature over `SessionCall(..., nonce, deadline)` (SIGNATURE_*), the
         nonce never used by this key on this account (NONCE_REPLAYED), then docs/protocol.md
         section 4 (see `_enforce`). Nonces are unordered: any unused value works, so a call
         that reverted (and therefore did not spend its nonce) blocks no later call.
         Invariant: the nonce and the counters are committed before any call runs, so a callee
         re-entering sees them spent; a failing inner call reverts the whole execution.
    @param session_key The session key that signed the call.
    @param mode The ERC-7579 mode: single or batch CALL, default exec type (else
           CALL_TYPE_FORBIDDEN).
    @param execution_calldata The ERC-7579 execution calldata (canonical encoding only, each
           call at least 4 bytes: else CALLDATA_MALFORMED).
    @param nonce An unused `SessionCall` nonce of this key (see `session_nonce`).
    @param deadline The timestamp from which the call is refused.
    @param signature The session key's 65-byte signature over `session_call_digest(...)`.
    """
    state: uint256 = sessions._known_session(session_key)
    self._check_window(state)
    if block.timestamp >= convert(deadline, uint256):
        reasons._fail(reasons.SESSION_EXPIRED)
    execution_hash: bytes32 = keccak256(concat(mode, execution_calldata))
    signer: address = eip712._recover_strict(
        grants._session_call_digest(session_key, execution_hash, nonce, deadline), signature
    )
    if signer != session_key:
        reasons._fail(reasons.SIGNATURE_INVALID)
    # The nonce: bit `nonce & 255` of bitmap word `nonce >> 8`, spent before anything runs.
    word: uint256 = nonce >> sessions.NONCE_WORD_SHIFT
    bits: uint256 = sessions._nonce_bits[session_key][word]
    bit: uint256 = 1 << (nonce & sessions.NONCE_BIT_MASK)
    if bits & bit != 0:
        reasons._fail(reasons.NONCE_REPLAYED)
    sessions._nonce_bits[session_key][word] = bits | bit
    calls: DynArray[erc7579.CallRef, erc7579.MAX_BATCH] = erc7579._decode(
        mode, execution_calldata, SELECTOR_SIZE
    )
    self._enforce(session_key, state, calls, execution_calldata)
    # Everything is committed before the CALLs: a callee re-entering sees the spent nonce.
    log SessionExecuted(session_key=session_key, nonce=nonce)
    erc7579._run(execution_calldata, calls)


@external
def execute_session_op(
    session_key: address, mode: bytes32, execution_calldata: Bytes[erc7579.MAX_EXECUTION_BYTES]
):
    """
    @notice The session execution path of an ERC-4337 user operation.
    @dev Only the EntryPoint may call it (NOT_AUTHORIZED), after `validateUserOp` checked the
         session key's signature over the userOpHash, that this call names that same key,
         rules 1-5 and the fee budget. Runs the same state and section 4 checks as
         `execute_with_session` again (the window and rules 6-8 need TIMESTAMP and writes,
         which validation may not use), without the call signature and nonce: the EntryPoint's
         nonce covers replay. Counters are committed before any call runs.
    @param session_key The session key named in the user operation's signature.
    @param mode The ERC-7579 mode: single or batch CALL, default exec type.
    @param execution_calldata The ERC-7579 execution calldata.
    """
    if msg.sender != account_auth.ENTRY_POINT or msg.sender == empty(address):
        reasons._fail(reasons.NOT_AUTHORIZED)
    state: uint256 = sessions._known_session(session_key)
    self._check_window(state)
    calls: DynArray[erc7579.CallRef, erc7579.MAX_BATCH] = erc7579._decode(
        mode, execution_calldata, SELECTOR_SIZE
    )
    self._enforce(session_key, state, calls, execution_calldata)
    log SessionExecuted(session_key=session_key, nonce=ENTRY_POINT_NONCE)
    erc7579._run(execution_calldata, calls)


@internal
def _enforce(
    session_key: address,
    state: uint256,
    calls: DynArray[erc7579.CallRef, erc7579.MAX_BATCH],
    execution_calldata: Bytes[erc7579.MAX_EXECUTION_BYTES],
):
    """
    @dev docs/protocol.md section 4 for one decoded execution (its shape, including call
         data under 4 bytes, was checked by `erc7579._decode`); writes the native and token
         windows, and the use count when the grant has a maxUses (an unread counter would
         cost an SSTORE per execution).
         `session_key = empty(address)` (user operation validation; no session has that key)
         stops after the per-call scope checks 1-5, before reading TIMESTAMP (banned in
         validation by ERC-7562) and writing anything: the cumulative checks 6-8 run in the
         execution phase. (A flag argument would cost every session call gas; the key is only
         used from rule 6 on.)
         Reverts with the first violation: per call in order 1 SELF_CALL_FORBIDDEN,
         2 NON_DELEGABLE_ACTION (maximum approvals), 3 TARGET_NOT_ALLOWED /
         SELECTOR_NOT_ALLOWED, 4 CALLDATA_MALFORMED / ARG_RULE_VIOLATED, 5 VALUE_CAP_EXCEEDED;
         then per execution 6 VALUE_LIMIT_EXCEEDED, 7 TOKEN_LIMIT_EXCEEDED,
         8 USAGE_LIMIT_REACHED.
    """
    generation: uint256 = (state >> sessions.ST_GENERATION) & sessions.MASK32
    native_total: uint256 = 0
    outflows: DynArray[TokenOutflow, erc7579.MAX_BATCH] = []
    # The permission of the previous call, reused when a batch repeats (target, selector).
    last_target: address = empty(address)
    last_selector: bytes4 = empty(bytes4)
    base: uint256 = 0
    word: uint256 = 0
    # The last rule that held, by (rule slot, argument): a batch repeating a recipient skips
    # the lookup (slot 0 is never a rule slot: rule slots are keccak results plus 1..4).
    held_slot: uint256 = 0
    held_argument: bytes32 = empty(bytes32)

    for c: erc7579.CallRef in calls:
        # 1. The account itself (its sessions module, execute, ...).
        if c.target == self:
            reasons._fail(reasons.SELF_CALL_FORBIDDEN)
        # The selector is the low 4 bytes of the word ending at c.start + 4: in bounds, as every
        # call starts at byte 52 or later and has at least 4 bytes (`erc7579._decode`).
        selector: bytes4 = convert(
            convert(extract32(execution_calldata, unsafe_sub(c.start, 28), output_type=uint256) << 224, bytes32),
            bytes4,
        )

        # 3. Target and selector: the permission word (reused when a batch repeats the pair).
        if c.target != last_target or selector != last_selector:
            base = convert(keccak256(abi_encode(generation, c.target, selector)), uint256)
            word = sessions._perm[base]
            last_target = c.target
            last_selector = selector

        # 2. Maximum-amount approvals, before 3 refuses: an unpermitted call's kind comes from
        #    its selector, a permitted call's from its permission word (stored at enable).
        kind: uint256 = (word >> sessions.PERM_APPROVAL) & 3
        if word == 0:
            kind = catalog._approval_kind(selector)
        if kind != catalog.APPROVAL_NONE:
            approved_word: uint256 = 1
            if kind != catalog.APPROVAL_WORD1:
                approved_word = 2
            # Unchecked: approved_word <= 2, c.start and c.length <= 4096.
            if c.length >= unsafe_add(36, unsafe_mul(32, approved_word)):
                approved: uint256 = extract32(
                    execution_calldata,
                    unsafe_add(c.start, unsafe_add(4, unsafe_mul(32, approved_word))),
                    output_type=uint256,
                )
                if approved == max_value(uint256) or (
                    kind == catalog.APPROVAL_PERMIT2 and approved == sessions.MASK160
                ):
                    reasons._fail(reasons.NON_DELEGABLE_ACTION)
        if word == 0:
            if sessions._target_known[keccak256(abi_encode(generation, c.target))]:
                reasons._fail(reasons.SELECTOR_NOT_ALLOWED)
            reasons._fail(reasons.TARGET_NOT_ALLOWED)

        # 4. Argument rules (static words only; off-chain-only rules were not stored).
        # Unchecked arithmetic below: i < 4, offsets < 2**16, c.start and c.length <= 4096.
        for i: uint256 in range((word >> sessions.PERM_RULE_COUNT) & sessions.MASK8, bound=grants.MAX_RULES):
            spec: uint256 = (word >> unsafe_add(sessions.PERM_RULES, unsafe_mul(24, i))) & sessions.MASK24
            op: uint256 = spec & sessions.MASK8
            position: uint256 = unsafe_add(4, unsafe_mul(32, spec >> 8))
            if unsafe_add(position, 32) > c.length:
                reasons._fail(reasons.CALLDATA_MALFORMED)
            argument: bytes32 = extract32(execution_calldata, unsafe_add(c.start, position))
            slot: uint256 = unsafe_add(base, unsafe_add(i, 1))
            if slot == held_slot and argument == held_argument:
                continue
            ok: bool = False
            if op == catalog.OP_IN:
                ok = sessions._rule_member[slot][argument]
            elif op == catalog.OP_NOT_IN:
                ok = not sessions._rule_member[slot][argument]
            else:
                operand: bytes32 = sessions._rule_word[slot]
                if op == catalog.OP_EQ:
                    ok = argument == operand
                elif op == catalog.OP_NE:
                    ok = argument != operand
                elif op == catalog.OP_LTE:
                    ok = convert(argument, uint256) <= convert(operand, uint256)
                else:  # OP_GTE (operators were validated when the grant was enabled)
                    ok = convert(argument, uint256) >= convert(operand, uint256)
            if not ok:
                reasons._fail(reasons.ARG_RULE_VIOLATED)
            held_slot = slot
            held_argument = argument

        # 5. Per-call native value.
        if c.value != 0:
            if c.value > word >> sessions.PERM_VALUE_CAP:
                reasons._fail(reasons.VALUE_CAP_EXCEEDED)
            native_total += c.value

        # Token outflow (summed per token, checked per execution below): of a limited token
        # called directly, or of the token an argument names (swaps, Permit2) when the grant
        # has token limits; such a token without a limit has nothing left (rule 7).
        # Locals are few and block-scoped on purpose: this frame's size is memory every
        # session call pays for.
        if word & (sessions.PERM_TOKEN | sessions.ARG_OUTFLOW_BITS) != 0:
            token: address = c.target
            amount_word: uint256 = 0
            counted: bool = True
            if word & sessions.ARG_OUTFLOW_BITS != 0:
                # The words the router's (Permit2's) decoder reads. An offset or length outside
                # the call, an empty path or a dirty address word is CALLDATA_MALFORMED.
                outflow_kind: uint256 = (word >> sessions.PERM_ARG_OUTFLOW) & 7
                if c.length < 36 + 32 * 2:
                    reasons._fail(reasons.CALLDATA_MALFORMED)
                token_word: uint256 = extract32(execution_calldata, c.start + 4, output_type=uint256)
                if outflow_kind == catalog.ARG_OUTFLOW_SWAP_V2:
                    # path[0] (word 2 is the offset of `path`), amountIn (word 0).
                    offset: uint256 = extract32(execution_calldata, c.start + 68, output_type=uint256)
                    if offset > c.length or c.length < offset + 68:
                        reasons._fail(reasons.CALLDATA_MALFORMED)
                    if extract32(execution_calldata, c.start + 4 + offset, output_type=uint256) == 0:
                        reasons._fail(reasons.CALLDATA_MALFORMED)
                    token_word = extract32(execution_calldata, c.start + 36 + offset, output_type=uint256)
                elif outflow_kind == catalog.ARG_OUTFLOW_PERMIT2_PERMIT:
                    # Counted when owner (word 0) is the account: token word 1, amount word 2.
                    counted = token_word == convert(self, uint256)
                    token_word = extract32(execution_calldata, c.start + 36, output_type=uint256)
                    amount_word = 2
                elif outflow_kind == catalog.ARG_OUTFLOW_SWAP_V3:
                    amount_word = 5  # params.amountIn of params.tokenIn (word 0)
                elif outflow_kind == catalog.ARG_OUTFLOW_SWAP_V3_02:
                    amount_word = 4  # params.amountIn of params.tokenIn (word 0)
                else:
                    amount_word = 2  # Permit2 approve: amount of token (word 0)
                if token_word >> 160 != 0:
                    reasons._fail(reasons.CALLDATA_MALFORMED)
                token = convert(token_word, address)
            elif (
                selector == catalog.SEL_TRANSFER
                or selector == catalog.SEL_APPROVE
                or selector == catalog.SEL_INCREASE_ALLOWANCE
            ):
                amount_word = 1
            elif selector == catalog.SEL_TRANSFER_FROM or selector == catalog.SEL_PERMIT:
                # Counts only when the account is the one paying (`from` / `owner`).
                if c.length < 36:
                    reasons._fail(reasons.CALLDATA_MALFORMED)
                counted = extract32(execution_calldata, c.start + 4, output_type=uint256) == convert(self, uint256)
                amount_word = 2
            elif selector != catalog.SEL_WITHDRAW:
                counted = False
            if counted:
                if c.length < 4 + 32 * (amount_word + 1):
                    reasons._fail(reasons.CALLDATA_MALFORMED)
                amount: uint256 = extract32(
                    execution_calldata, c.start + 4 + 32 * amount_word, output_type=uint256
                )
                merged: bool = False
                for k: uint256 in range(erc7579.MAX_BATCH):
                    if k == len(outflows):
                        break
                    if outflows[k].token == token:
                        # Saturating: an overflowing sum exceeds any limit (rule 7), not a panic.
                        total: uint256 = unsafe_add(outflows[k].amount, amount)
                        if total < amount:
                            total = max_value(uint256)
                        outflows[k].amount = total
                        merged = True
                        break
                if not merged:
                    # The token's refill period: in the permission word of a limited token
                    # called directly, in `_token_period` for an argument token.
                    period: uint256 = (word >> sessions.PERM_TOKEN_PERIOD) & sessions.MASK48
                    if word & sessions.ARG_OUTFLOW_BITS != 0:
                        period = sessions._token_period[keccak256(abi_encode(generation, token))]
                    outflows.append(TokenOutflow(token=token, amount=amount, period=convert(period, uint48)))

    if session_key == empty(address):
        return
    now: uint256 = block.timestamp
    valid_after: uint256 = (state >> sessions.ST_VALID_AFTER) & sessions.MASK48

    # 6. Native value per window (valueLimit = 0: no value at all).
    if native_total != 0:
        native: uint256 = sessions._session_native[session_key]
        period: uint256 = (
            (sessions._session_extra[session_key] >> sessions.EX_VALUE_PERIOD) & sessions.MASK48
        )
        window: uint256 = self._window(now, valid_after, period)
        remaining: uint256 = (native >> sessions.NATIVE_REMAINING) & sessions.MASK112
        if window != native & sessions.MASK48:
            remaining = native >> sessions.NATIVE_LIMIT
        if native_total > remaining:
            reasons._fail(reasons.VALUE_LIMIT_EXCEEDED)
        sessions._session_native[session_key] = (
            window
            | ((remaining - native_total) << sessions.NATIVE_REMAINING)
            | ((native >> sessions.NATIVE_LIMIT) << sessions.NATIVE_LIMIT)
        )

    # 7. Token outflow per window.
    for outflow: TokenOutflow in outflows:
        token_key: bytes32 = keccak256(abi_encode(generation, outflow.token))
        token_state: uint256 = sessions._token_state[token_key]
        window: uint256 = self._window(now, valid_after, convert(outflow.period, uint256))
        remaining: uint256 = token_state >> sessions.TOKEN_REMAINING
        if window != token_state & sessions.MASK48:
            remaining = min(sessions._token_limit[token_key], sessions.MAX_TOKEN_REMAINING)
        if outflow.amount > remaining:
            reasons._fail(reasons.TOKEN_LIMIT_EXCEEDED)
        sessions._token_state[token_key] = (
            window | ((remaining - outflow.amount) << sessions.TOKEN_REMAINING)
        )

    # 8. Use count: counted only under a maxUses (an unread counter would cost an SSTORE).
    max_uses: uint256 = (state >> sessions.ST_MAX_USES) & sessions.MASK32
    if max_uses != 0:
        if (state >> sessions.ST_USES) & sessions.MASK32 >= max_uses:
            reasons._fail(reasons.USAGE_LIMIT_REACHED)
        sessions._session_state[session_key] = state + (1 << sessions.ST_USES)


@internal
def _check_op_scope(
    state: uint256, mode: bytes32, execution_calldata: Bytes[erc7579.MAX_EXECUTION_BYTES]
):
    """
    @dev The stateless scope of a session user operation, for `validateUserOp`: mode and
         encoding (CALL_TYPE_FORBIDDEN, EMPTY_BATCH, CALLDATA_MALFORMED), then rules 1-5 of
         `_enforce` for every inner call. Reads only this account's storage, writes nothing,
         no TIMESTAMP (ERC-7562). The window is the caller's (validationData); rules 6-8 run
         again with everything else in `execute_session_op`.
    """
    calls: DynArray[erc7579.CallRef, erc7579.MAX_BATCH] = erc7579._decode(
        mode, execution_calldata, SELECTOR_SIZE
    )
    self._enforce(empty(address), state, calls, execution_calldata)
