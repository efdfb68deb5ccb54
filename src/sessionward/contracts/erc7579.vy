# pragma version ~=0.4.3
"""
@title ERC-7579 execution encoding: strict decoding and plain CALL execution
@notice Only two modes exist here, both with the default exec type (revert on failure) and
        every other mode byte zero:

        - single `0x00 00 00000000 00000000 00…00`: `executionCalldata = target (20 bytes) ‖
          value (32 bytes) ‖ callData` (packed);
        - batch  `0x01 00 00000000 00000000 00…00`: `executionCalldata = abi.encode(Execution[])`
          with `Execution = (address target, uint256 value, bytes callData)`.

        Delegatecall (0xff), static (0xfe), try (exec type 0x01) and every other mode revert
        with CALL_TYPE_FORBIDDEN: the account never runs foreign code in its own context.

        A batch must be the *canonical* ABI encoding, byte for byte what `abi.encode` produces:
        head offset 0x20, element offsets packed in order, each element's bytes offset 0x60,
        zero padding, no trailing bytes. Anything else is CALLDATA_MALFORMED, so one byte
        string has exactly one meaning for the account, the off-chain decoder and the signer.

        Calls are described by `CallRef` (target, value, and where the call data sits inside
        `executionCalldata`) so the calldata is never copied per call until the CALL itself.
"""

from . import reasons

MAX_BATCH: constant(uint256) = 8
MAX_EXECUTION_BYTES: constant(uint256) = 4096

MODE_SINGLE: constant(bytes32) = empty(bytes32)
MODE_BATCH: constant(bytes32) = 0x0100000000000000000000000000000000000000000000000000000000000000

# Bytes before the call data in a single execution: target (20) ‖ value (32).
SINGLE_HEADER: constant(uint256) = 52
# Words of one batch element before its call data: target, value, offset (0x60), length.
ELEMENT_HEAD: constant(uint256) = 128


struct CallRef:
    target: address
    value: uint256
    # Index in `executionCalldata` of the first byte of the call data, and its length.
    start: uint256
    length: uint256


@internal
@pure
def _decode(
    mode: bytes32, execution_calldata: Bytes[MAX_EXECUTION_BYTES], min_call_data: uint256
) -> DynArray[CallRef, MAX_BATCH]:
    """
    @dev The calls of an execution, in order. Reverts CALL_TYPE_FORBIDDEN (mode),
         EMPTY_BATCH, or CALLDATA_MALFORMED (truncated or non-canonical encoding, or a call
         whose data is shorter than `min_call_data`: 4 for sessions, which never delegate
         plain value transfers; 0 for the owner).
    """
    size: uint256 = len(execution_calldata)
    calls: DynArray[CallRef, MAX_BATCH] = []
    if mode == MODE_SINGLE:
        if size < SINGLE_HEADER + min_call_data:
            reasons._fail(reasons.CALLDATA_MALFORMED)
        calls.append(
            CallRef(
                target=convert(convert(slice(execution_calldata, 0, 20), bytes20), address),
                value=extract32(execution_calldata, 20, output_type=uint256),
                start=SINGLE_HEADER,
                length=size - SINGLE_HEADER,
            )
        )
        return calls

    if mode != MODE_BATCH:
        reasons._fail(reasons.CALL_TYPE_FORBIDDEN)
    if size < 64:
        reasons._fail(reasons.CALLDATA_MALFORMED)
    if extract32(execution_calldata, 0, output_type=uint256) != 32:
        reasons._fail(reasons.CALLDATA_MALFORMED)
    count: uint256 = extract32(execution_calldata, 32, output_type=uint256)
    if count == 0:
        if size != 64:
            reasons._fail(reasons.CALLDATA_MALFORMED)
        reasons._fail(reasons.EMPTY_BATCH)
    if count > MAX_BATCH:
        reasons._fail(reasons.CALLDATA_MALFORMED)
    if size < 64 + 32 * count:
        reasons._fail(reasons.CALLDATA_MALFORMED)

    # `expected` is where the next element must start, relative to byte 64 (the array body).
    expected: uint256 = 32 * count
    for i: uint256 in range(MAX_BATCH):
        if i == count:
            break
        if extract32(execution_calldata, 64 + 32 * i, output_type=uint256) != expected:
            reasons._fail(reasons.CALLDATA_MALFORMED)
        base: uint256 = 64 + expected
        if size < base + ELEMENT_HEAD:
            reasons._fail(reasons.CALLDATA_MALFORMED)
        target_word: uint256 = extract32(execution_calldata, base, output_type=uint256)
        if target_word >> 160 != 0:
            reasons._fail(reasons.CALLDATA_MALFORMED)
        if extract32(execution_calldata, base + 64, output_type=uint256) != 96:
            reasons._fail(reasons.CALLDATA_MALFORMED)
        length: uint256 = extract32(execution_calldata, base + 96, output_type=uint256)
        # `length <= size` also keeps the additions below far from overflow.
        if length > size or length < min_call_data:
            reasons._fail(reasons.CALLDATA_MALFORMED)
        padded: uint256 = (length + 31) // 32 * 32
        if size < base + ELEMENT_HEAD + padded:
            reasons._fail(reasons.CALLDATA_MALFORMED)
        if padded != length:
            tail: uint256 = extract32(
                execution_calldata, base + ELEMENT_HEAD + padded - 32, output_type=uint256
            )
            if tail % (1 << ((padded - length) * 8)) != 0:
                reasons._fail(reasons.CALLDATA_MALFORMED)
        calls.append(
            CallRef(
                target=convert(target_word, address),
                value=extract32(execution_calldata, base + 32, output_type=uint256),
                start=base + ELEMENT_HEAD,
                length=length,
            )
        )
        expected += ELEMENT_HEAD + padded
    if size != 64 + expected:
        reasons._fail(reasons.CALLDATA_MALFORMED)
    return calls


@internal
def _run(execution_calldata: Bytes[MAX_EXECUTION_BYTES], calls: DynArray[CallRef, MAX_BATCH]):
    """
    @dev CALL each target in order; a failing call reverts the whole execution with the
         callee's revert data (default exec type).
    """
    for c: CallRef in calls:
        raw_call(c.target, slice(execution_calldata, c.start, c.length), value=c.value)
