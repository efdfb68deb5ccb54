# pragma version ~=0.4.3
"""
@title SessionWard relay batch
@notice Runs several calls in one transaction, each on its own: a call that reverts is
        reported and undoes nothing of the others. The relayer sends one account's session
        calls through it (`execute_with_session`, which anyone may relay: each call carries
        its session key's signature and a nonce the account spends once), so that several
        calls of one account cost one transaction.

        It holds no storage, no owner and no funds, and asks nothing of its caller: whoever
        sends a batch only pays its gas, and every call in it is authorised by its own
        signature, exactly as if it had been sent alone. A replayed batch re-runs calls whose
        nonces are spent, which the account refuses one by one.

        Each call is reported by one `CallRelayed` event of this contract, in order: the
        relayer reads a call's outcome from the events this address emitted (an event of the
        same shape emitted by a called contract has another address and is ignored).
"""

# The batch's size and each call's calldata bound: eight calls of SessionAccount's
# `execute_with_session` (4 + 6 words + up to 4,096 bytes of execution + a 65-byte
# signature, padded) fit.
MAX_CALLS: constant(uint256) = 8
MAX_CALL_BYTES: constant(uint256) = 4_608
# How much of a reverted call's return data its event carries (a reason code string fits).
MAX_REVERT_BYTES: constant(uint256) = 256


struct Call:
    target: address
    gas: uint256
    data: Bytes[MAX_CALL_BYTES]


event CallRelayed:
    index: indexed(uint256)
    success: bool
    revert_data: Bytes[MAX_REVERT_BYTES]


@external
def relay(calls: DynArray[Call, MAX_CALLS]):
    """
    @notice Run `calls` in order, each with at most its own `gas`, and report each one.
    @dev A call's revert is caught: it undoes that call alone (its own state changes and
         events), and `CallRelayed(index, False, revert_data)` carries the first
         `MAX_REVERT_BYTES` of its return data. A call with too little gas left for its `gas`
         is not started: the whole batch reverts instead (EIP-150 forwards at most 63/64 of
         what is left, so a call could otherwise run short and fail where it would succeed
         alone).
         Invariant: one `CallRelayed` per call, with `index` its position in `calls`.
    @param calls The calls: target, gas limit and calldata; no value is sent.
    """
    index: uint256 = 0
    for call: Call in calls:
        assert msg.gas > call.gas + call.gas // 63 + 10_000, "RELAY_BATCH_OUT_OF_GAS"
        success: bool = False
        returned: Bytes[MAX_REVERT_BYTES] = b""
        success, returned = raw_call(
            call.target,
            call.data,
            max_outsize=MAX_REVERT_BYTES,
            gas=call.gas,
            revert_on_failure=False,
        )
        if success:
            log CallRelayed(index=index, success=True, revert_data=b"")
        else:
            log CallRelayed(index=index, success=False, revert_data=returned)
        index += 1
