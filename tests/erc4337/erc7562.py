"""The ERC-7562 rule gate of the ERC-4337 tests: trace an account's validation phase on a real
node and judge it against the validation scope rules.

How the validation phase is run (the choice the tests document): v0.7 moved
``simulateValidation`` out of the deployed EntryPoint into ``EntryPointSimulations`` (npm
artifacts of ``@account-abstraction/contracts`` 0.7.0). As the reference bundler does,
:func:`trace_validation` runs ``debug_traceCall`` of ``simulateValidation(op)`` at the
EntryPoint's own address with a *state override* that replaces the EntryPoint's code by the
simulation contract's runtime: same address, same storage (deposits, nonces), so the account
sees exactly the EntryPoint it trusts, and nothing is mined. Cutting a traced ``handleOps`` at
the end of validation would trace the same frames but needs a signed bundle transaction.

Recording and judging are split: a small JavaScript tracer (anvil runs geth-style JS tracers)
only *records* every opcode (number, pc, depth) with the stack arguments the rules need, every
call frame (type, from, to, input, value, error) and every short KECCAK256 preimage;
:func:`check_account_validation` (pure, no I/O) *judges* the account's validation frame — the
EntryPoint's ``validateUserOp`` call into the sender and every frame below it — for an
unstaked account that already exists, without factory or paymaster:

- OP-011 blocked opcodes (ORIGIN GASPRICE BLOCKHASH COINBASE TIMESTAMP NUMBER PREVRANDAO
  GASLIMIT BASEFEE BLOBHASH BLOBBASEFEE CREATE INVALID SELFDESTRUCT), OP-012 ``GAS`` not
  immediately followed by a ``*CALL``, OP-013 unassigned opcodes, OP-020 an out-of-gas frame,
  OP-031 CREATE2 outside deployment, OP-041 ``EXTCODE*``/``*CALL`` of an address without code
  (the sender excepted, OP-042), OP-051..054 EntryPoint access (only ``EXTCODESIZE ISZERO``,
  ``depositTo(sender)`` and the sender's plain value transfer to its fallback), OP-061 ``CALL``
  with value to anyone but the EntryPoint, OP-062 precompiles other than 0x01..0x09, OP-070
  transient storage judged as storage, OP-080 ``BALANCE``/``SELFBALANCE`` (unstaked entity);
- STO-010/STO-021: storage (``SLOAD``/``SSTORE``/``TLOAD``/``TSTORE``) only in the sender's
  own storage, or slots associated with the sender in another contract (the slot equals the
  sender, or ``keccak(sender ‖ x) + n`` with ``0 <= n <= 128``, the preimage seen in the trace).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sessionward.chain.contracts import ContractArtifact
from sessionward.chain.jsonrpc import JsonRpcClient
from sessionward.contracts.encoding import PackedUserOperation
from sessionward.crypto.keccak import keccak256

VALIDATE_USER_OP: Final = bytes.fromhex("19822f7c")
DEPOSIT_TO: Final = bytes.fromhex("b760faf9")
ALLOWED_PRECOMPILES: Final = frozenset(range(1, 10))
# Addresses at or below this are treated as precompile slots (Prague uses 0x01..0x11; RIP-7212
# networks put P-256 at 0x100).
PRECOMPILE_CEILING: Final = 0x1FF
ASSOCIATED_OFFSET: Final = 128

_NAMED: Final = {
    0x00: "STOP", 0x01: "ADD", 0x02: "MUL", 0x03: "SUB", 0x04: "DIV", 0x05: "SDIV",
    0x06: "MOD", 0x07: "SMOD", 0x08: "ADDMOD", 0x09: "MULMOD", 0x0A: "EXP", 0x0B: "SIGNEXTEND",
    0x10: "LT", 0x11: "GT", 0x12: "SLT", 0x13: "SGT", 0x14: "EQ", 0x15: "ISZERO", 0x16: "AND",
    0x17: "OR", 0x18: "XOR", 0x19: "NOT", 0x1A: "BYTE", 0x1B: "SHL", 0x1C: "SHR", 0x1D: "SAR",
    0x20: "KECCAK256", 0x30: "ADDRESS", 0x31: "BALANCE", 0x32: "ORIGIN", 0x33: "CALLER",
    0x34: "CALLVALUE", 0x35: "CALLDATALOAD", 0x36: "CALLDATASIZE", 0x37: "CALLDATACOPY",
    0x38: "CODESIZE", 0x39: "CODECOPY", 0x3A: "GASPRICE", 0x3B: "EXTCODESIZE",
    0x3C: "EXTCODECOPY", 0x3D: "RETURNDATASIZE", 0x3E: "RETURNDATACOPY", 0x3F: "EXTCODEHASH",
    0x40: "BLOCKHASH", 0x41: "COINBASE", 0x42: "TIMESTAMP", 0x43: "NUMBER", 0x44: "PREVRANDAO",
    0x45: "GASLIMIT", 0x46: "CHAINID", 0x47: "SELFBALANCE", 0x48: "BASEFEE", 0x49: "BLOBHASH",
    0x4A: "BLOBBASEFEE", 0x50: "POP", 0x51: "MLOAD", 0x52: "MSTORE", 0x53: "MSTORE8",
    0x54: "SLOAD", 0x55: "SSTORE", 0x56: "JUMP", 0x57: "JUMPI", 0x58: "PC", 0x59: "MSIZE",
    0x5A: "GAS", 0x5B: "JUMPDEST", 0x5C: "TLOAD", 0x5D: "TSTORE", 0x5E: "MCOPY", 0x5F: "PUSH0",
    0xA0: "LOG0", 0xA1: "LOG1", 0xA2: "LOG2", 0xA3: "LOG3", 0xA4: "LOG4", 0xF0: "CREATE",
    0xF1: "CALL", 0xF2: "CALLCODE", 0xF3: "RETURN", 0xF4: "DELEGATECALL", 0xF5: "CREATE2",
    0xFA: "STATICCALL", 0xFD: "REVERT", 0xFE: "INVALID", 0xFF: "SELFDESTRUCT",
}  # fmt: skip
OPCODE_NAMES: Final[Mapping[int, str]] = {
    **_NAMED,
    **{0x60 + i: f"PUSH{i + 1}" for i in range(32)},
    **{0x80 + i: f"DUP{i + 1}" for i in range(16)},
    **{0x90 + i: f"SWAP{i + 1}" for i in range(16)},
}
OP_011_BLOCKED: Final = frozenset(
    {0x32, 0x3A, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x48, 0x49, 0x4A, 0xF0, 0xFE, 0xFF}
)
OP_080_BALANCE: Final = frozenset({0x31, 0x47})
CALLS: Final = frozenset({0xF1, 0xF2, 0xF4, 0xFA})
EXTCODE: Final = frozenset({0x3B, 0x3C, 0x3F})
STORAGE: Final = frozenset({0x54, 0x55, 0x5C, 0x5D})
GAS, ISZERO, KECCAK, CREATE2 = 0x5A, 0x15, 0x20, 0xF5

# Records, judges nothing. Steps: [opcode, pc, depth, args...]; frames: ["enter", type, from,
# to, input, value] and ["exit", error]. Stack values are hex without 0x.
JS_TRACER: Final = """{
  ev: [],
  step: function(log, db) {
    var op = log.op.toNumber();
    var e = [op, log.getPC(), log.getDepth()];
    if (op == 0x54 || op == 0x55 || op == 0x5c || op == 0x5d) {
      e.push(log.stack.peek(0).toString(16)); e.push(toHex(log.contract.getAddress()));
    } else if (op == 0x31 || op == 0x3b || op == 0x3c || op == 0x3f) {
      e.push(log.stack.peek(0).toString(16));
    } else if (op == 0xf1 || op == 0xf2 || op == 0xf4 || op == 0xfa) {
      e.push(log.stack.peek(1).toString(16));
    } else if (op == 0x20) {
      var off = Number(log.stack.peek(0)); var len = Number(log.stack.peek(1));
      if (len <= 128) { e.push(toHex(log.memory.slice(off, off + len))); }
    }
    this.ev.push(e);
  },
  enter: function(f) {
    var v = f.getValue();
    this.ev.push(["enter", f.getType(), toHex(f.getFrom()), toHex(f.getTo()),
                  toHex(f.getInput()), v ? v.toString(16) : "0"]);
  },
  exit: function(r) { this.ev.push(["exit", r.getError() || ""]); },
  fault: function(log, db) {},
  result: function(ctx, db) { return {events: this.ev, output: toHex(ctx.output),
                                      error: ctx.error || ""}; }
}"""


class TraceMalformed(AssertionError):
    """The tracer's record is not a consistent sequence of frames and steps."""


def _address(value: str) -> str:
    return "0x" + value.lower().removeprefix("0x").rjust(40, "0")[-40:]


def _hex_bytes(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


@dataclass(frozen=True)
class Frame:
    """One call frame: ``code`` is whose code runs, ``storage`` whose storage it uses (the
    caller's for DELEGATECALL/CALLCODE); ``call_pc`` is the pc of the opening opcode in the
    parent frame."""

    index: int
    kind: str
    caller: str
    code: str
    storage: str
    input: bytes
    value: int
    depth: int
    parent: int | None
    call_pc: int
    error: str


@dataclass(frozen=True)
class Step:
    op: int
    pc: int
    frame: int
    args: tuple[str, ...]

    @property
    def name(self) -> str:
        return OPCODE_NAMES.get(self.op, f"UNASSIGNED(0x{self.op:02x})")


@dataclass(frozen=True)
class Trace:
    frames: tuple[Frame, ...]
    steps: tuple[Step, ...]
    output: bytes
    error: str

    def frame_of(self, step: Step) -> Frame:
        return self.frames[step.frame]


def parse_trace(record: Mapping[str, Any], *, entry_point: str, caller: str) -> Trace:
    """Turn the JS tracer's record of a call ``caller → entry_point`` into frames and steps.

    Raises :class:`TraceMalformed` when the step depths and the frame nesting disagree."""
    top = _address(entry_point)
    frames: list[dict[str, Any]] = [
        {"kind": "CALL", "caller": _address(caller), "code": top, "storage": top, "input": b"",
         "value": 0, "depth": 1, "parent": None, "call_pc": -1, "error": ""}
    ]  # fmt: skip
    open_frames = [0]
    steps: list[Step] = []
    last_pc = -1
    for event in record["events"]:
        if event[0] == "enter":
            _, kind, sender, to, data, value = event
            parent = frames[open_frames[-1]]
            storage = parent["storage"] if kind in ("DELEGATECALL", "CALLCODE") else _address(to)
            frames.append(
                {"kind": kind, "caller": _address(sender), "code": _address(to),
                 "storage": storage, "input": _hex_bytes(data), "value": int(value, 16),
                 "depth": parent["depth"] + 1, "parent": open_frames[-1], "call_pc": last_pc,
                 "error": ""}
            )  # fmt: skip
            open_frames.append(len(frames) - 1)
        elif event[0] == "exit":
            if len(open_frames) < 2:
                raise TraceMalformed("an exit without an open frame")
            frames[open_frames.pop()]["error"] = event[1]
        else:
            op, pc, depth, *args = event
            current = open_frames[-1]
            if depth != frames[current]["depth"]:
                raise TraceMalformed(
                    f"step at depth {depth} inside frame {current} of depth "
                    f"{frames[current]['depth']}"
                )
            steps.append(Step(op=op, pc=pc, frame=current, args=tuple(args)))
            last_pc = pc
    if len(open_frames) != 1:
        raise TraceMalformed(f"{len(open_frames) - 1} frames never exited")
    return Trace(
        frames=tuple(Frame(index=i, **f) for i, f in enumerate(frames)),
        steps=tuple(steps),
        output=_hex_bytes(str(record.get("output") or "0x")),
        error=str(record.get("error") or ""),
    )


def trace_validation(
    rpc: JsonRpcClient,
    *,
    entry_point: str,
    simulations: ContractArtifact,
    op: PackedUserOperation,
    caller: str = "0x" + "00" * 20,
) -> Trace:
    """``debug_traceCall`` of ``simulateValidation(op)`` on the EntryPoint's address with its
    code overridden by ``EntryPointSimulations`` (see the module notice), at ``latest``."""
    data = simulations.encode("simulateValidation", tuple(op))
    record = rpc.request(
        "debug_traceCall",
        [
            {"from": caller, "to": entry_point, "data": "0x" + data.hex()},
            "latest",
            {
                "tracer": JS_TRACER,
                "stateOverrides": {entry_point: {"code": "0x" + simulations.runtime.hex()}},
            },
        ],
    )
    return parse_trace(record, entry_point=entry_point, caller=caller)


@dataclass(frozen=True)
class Violation:
    """One broken rule: where (pc, the code's address and the frame's kind) and what."""

    rule: str
    opcode: str
    pc: int
    contract: str
    frame_kind: str
    detail: str

    def describe(self, names: Mapping[str, str] | None = None) -> str:
        who = (names or {}).get(self.contract, self.contract)
        return (
            f"{self.rule} {self.opcode} at pc {self.pc} in {who} ({self.frame_kind}): {self.detail}"
        )


def account_validation_frame(trace: Trace, *, sender: str, entry_point: str) -> Frame:
    """The EntryPoint's ``validateUserOp`` call into ``sender`` (exactly one)."""
    found = [
        f
        for f in trace.frames
        if f.kind == "CALL"
        and f.caller == _address(entry_point)
        and f.code == _address(sender)
        and f.input[:4] == VALIDATE_USER_OP
    ]
    if len(found) != 1:
        raise TraceMalformed(f"{len(found)} validateUserOp calls into {sender} in the trace")
    return found[0]


def _subtree(trace: Trace, root: Frame) -> set[int]:
    inside = {root.index}
    for frame in trace.frames[root.index + 1 :]:
        if frame.parent in inside:
            inside.add(frame.index)
    return inside


def is_associated(slot: int, owner: str, preimages: Sequence[bytes]) -> bool:
    """ERC-7562 associated storage: ``slot == owner`` or ``slot == keccak(owner ‖ x) + n``,
    ``0 <= n <= 128``, for a preimage ``owner ‖ x`` (``x`` 32 bytes) hashed in the trace."""
    word = bytes(12) + _hex_bytes(owner)
    if slot == int.from_bytes(word, "big"):
        return True
    for preimage in preimages:
        if len(preimage) == 64 and preimage[:32] == word:
            base = int.from_bytes(keccak256(preimage), "big")
            if 0 <= slot - base <= ASSOCIATED_OFFSET:
                return True
    return False


def _is_precompile(address: str) -> bool:
    return 0 < int(address, 16) <= PRECOMPILE_CEILING


def check_account_validation(
    trace: Trace, *, sender: str, entry_point: str, has_code: Callable[[str], bool]
) -> list[Violation]:
    """Every ERC-7562 rule the sender's validation frame (and everything it calls) breaks, for
    an existing, unstaked account with no factory and no paymaster. Empty means clean."""
    sender, entry_point = _address(sender), _address(entry_point)
    root = account_validation_frame(trace, sender=sender, entry_point=entry_point)
    inside = _subtree(trace, root)
    preimages = [
        _hex_bytes(s.args[0]) for s in trace.steps if s.op == KECCAK and s.args and s.args[0]
    ]
    found: list[Violation] = []

    def flag(rule: str, opcode: str, pc: int, frame: Frame, detail: str) -> None:
        found.append(Violation(rule, opcode, pc, frame.code, frame.kind, detail))

    steps = [s for s in trace.steps if s.frame in inside]
    for position, step in enumerate(steps):
        frame = trace.frame_of(step)
        following = steps[position + 1] if position + 1 < len(steps) else None
        if step.op in OP_011_BLOCKED:
            flag("OP-011", step.name, step.pc, frame, "blocked opcode in validation")
        elif step.op in OP_080_BALANCE:
            flag("OP-080", step.name, step.pc, frame, "balance read by an unstaked entity")
        elif step.op not in OPCODE_NAMES:
            flag("OP-013", step.name, step.pc, frame, "unassigned opcode")
        elif step.op == GAS and (
            following is None or following.frame != step.frame or following.op not in CALLS
        ):
            after = "nothing" if following is None else following.name
            flag("OP-012", "GAS", step.pc, frame, f"followed by {after}, not by a *CALL")
        elif step.op == CREATE2:
            flag("OP-031", "CREATE2", step.pc, frame, "CREATE2 outside the deployment phase")
        elif step.op in EXTCODE:
            target = _address(step.args[0])
            if target == entry_point:
                if step.op != 0x3B or following is None or following.op != ISZERO:
                    flag("OP-054", step.name, step.pc, frame, "EntryPoint code accessed")
            elif target != sender and not has_code(target):
                flag("OP-041", step.name, step.pc, frame, f"{target} has no code")
        elif step.op in STORAGE:
            slot, context = int(step.args[0], 16), _address(step.args[1])
            if context != frame.storage:
                raise TraceMalformed(f"storage of {context} in a frame of {frame.storage}")
            if context != sender and not is_associated(slot, sender, preimages):
                flag(
                    "STO-021",
                    step.name,
                    step.pc,
                    frame,
                    f"slot 0x{slot:x} of {context} is not associated with the sender",
                )

    for frame in trace.frames:
        if frame.index not in inside or frame.index == root.index:
            continue
        parent = trace.frames[frame.parent or 0]
        opcode, target = frame.kind, frame.code
        if "out of gas" in frame.error.lower() or "outofgas" in frame.error.lower():
            flag("OP-020", opcode, frame.call_pc, parent, f"call to {target} ran out of gas")
        if frame.kind.startswith("CREATE"):
            continue  # judged by its opcode (OP-011 CREATE, OP-031 CREATE2)
        if _is_precompile(target):
            if int(target, 16) not in ALLOWED_PRECOMPILES:
                flag("OP-062", opcode, frame.call_pc, parent, f"precompile {target}")
        elif target == entry_point:
            plain_transfer = frame.kind == "CALL" and not frame.input and frame.caller == sender
            deposit = (
                frame.kind == "CALL"
                and frame.input[:4] == DEPOSIT_TO
                and frame.input[4:36] == bytes(12) + _hex_bytes(sender)
            )
            if not (plain_transfer or deposit):
                flag("OP-054", opcode, frame.call_pc, parent, "EntryPoint called")
        else:
            if target != sender and not has_code(target):
                flag("OP-041", opcode, frame.call_pc, parent, f"{target} has no code")
            if frame.value and frame.kind in ("CALL", "CALLCODE"):
                flag("OP-061", opcode, frame.call_pc, parent, f"value sent to {target}")
    return found
