"""AssociatedStorage: a 54-byte contract, written by hand in EVM assembly, that reads and writes
one word of the *caller's* storage at an ERC-7562 associated slot ``keccak256(A ‖ x) + n``.

Why it exists: the SessionWard ERC-7579 module keeps per-account state in its own storage, and
a bundler accepts validation code that touches another contract's storage only at slots
*associated* with the sender A (ERC-7562 STO-021): ``A`` itself, or ``keccak256(A ‖ x) + n``
with ``0 <= n <= 128`` (alto: ``< 128``). Vyper computes a ``HashMap`` slot as ``keccak256(slot ‖ key)``, the
operands in the other order, so no Vyper storage variable keyed by the account is associated;
and Vyper 0.4 has no inline assembly. The module therefore reaches its per-account words through
a ``DELEGATECALL`` to this contract: its code runs in the module's storage context and hashes
``A ‖ x`` with ``KECCAK256`` (the preimage the bundler's tracer records).

Interface (no selector; anything else reverts with empty data):

- load, 96 bytes of calldata ``A ‖ x ‖ n`` (three words): returns the word at
  ``keccak256(A ‖ x) + n``;
- store, 128 bytes ``A ‖ x ‖ n ‖ value``: writes ``value`` there, returns nothing;
- ``n > 127`` reverts (ERC-7562 allows ``n`` "in range 0..128"; alto reads that as
  ``0 <= n < 128``: the helper stays inside both readings).

Called directly (``CALL``) it only touches its own, meaningless storage, so it needs no access
control: the only storage it can change is the one of whoever *delegates* to it. It reads
neither ``GAS`` nor any opcode ERC-7562 bans in validation.

:data:`RUNTIME` is assembled here from :data:`PROGRAM` (mnemonics, labels resolved);
:data:`INITCODE` returns it; :data:`ADDRESS` is where the deterministic deployment proxy puts it
with salt 0 on any chain, the address the module (``SessionWardModule.vy``) uses.
"""

from __future__ import annotations

from typing import Final

from sessionward.crypto.keccak import keccak256

DETERMINISTIC_DEPLOYER: Final = "0x4e59b44847b379578588920ca78fbf26c0b4956c"
SALT: Final = bytes(32)
# ERC-7562 calls keccak(A ‖ x) + n associated for n "in range 0..128"; alto 0.0.20 accepts
# 0 <= n < 128 (TracerResultParserV07.associatedWith), so the helper allows what both accept.
MAX_OFFSET: Final = 127

_OPCODES: Final = {
    "STOP": 0x00, "ADD": 0x01, "LT": 0x10, "EQ": 0x14, "ISZERO": 0x15, "KECCAK256": 0x20,
    "CALLDATALOAD": 0x35, "CALLDATASIZE": 0x36, "CALLDATACOPY": 0x37, "CODECOPY": 0x39,
    "POP": 0x50, "MSTORE": 0x52, "SLOAD": 0x54, "SSTORE": 0x55, "JUMPI": 0x57, "JUMPDEST": 0x5B,
    "PUSH0": 0x5F, "PUSH1": 0x60, "DUP1": 0x80, "SWAP1": 0x90, "RETURN": 0xF3, "REVERT": 0xFD,
}  # fmt: skip

# One instruction per entry: a mnemonic, ("PUSH1", value), ("PUSH1", ":label") or ":label"
# (a JUMPDEST). Stack comments read bottom → top.
PROGRAM: Final[tuple[str | tuple[str, int | str], ...]] = (
    ("PUSH1", 0x40), "PUSH0", "PUSH0", "CALLDATACOPY",  # memory[0:64] = A ‖ x
    ("PUSH1", 0x40), "PUSH0", "KECCAK256",              # [base]
    ("PUSH1", 0x40), "CALLDATALOAD",                    # [base, n]
    "DUP1", ("PUSH1", MAX_OFFSET), "LT",                # [base, n, 127 < n]
    ("PUSH1", ":fail"), "JUMPI",                        # [base, n]
    "ADD",                                              # [slot]
    "CALLDATASIZE", "DUP1", ("PUSH1", 0x60), "EQ",      # [slot, size, size == 96]
    ("PUSH1", ":load"), "JUMPI",                        # [slot, size]
    ("PUSH1", 0x80), "EQ", "ISZERO",                    # [slot, size != 128]
    ("PUSH1", ":fail"), "JUMPI",                        # [slot]
    ("PUSH1", 0x60), "CALLDATALOAD", "SWAP1", "SSTORE", # storage[slot] = value
    "STOP",
    ":load",                                            # [slot, size]
    "POP", "SLOAD", "PUSH0", "MSTORE",                  # memory[0:32] = storage[slot]
    ("PUSH1", 0x20), "PUSH0", "RETURN",
    ":fail",
    "PUSH0", "PUSH0", "REVERT",
)  # fmt: skip


def assemble(program: tuple[str | tuple[str, int | str], ...]) -> bytes:
    """Bytecode of ``program`` (see :data:`PROGRAM`); labels become JUMPDESTs and their
    offsets. Raises ``ValueError`` on an unknown mnemonic or label, or a PUSH1 overflow."""
    labels: dict[str, int] = {}
    offset = 0
    for item in program:
        if isinstance(item, str) and item.startswith(":"):
            labels[item] = offset
            offset += 1
        else:
            offset += 2 if isinstance(item, tuple) else 1
    code = bytearray()
    for item in program:
        if isinstance(item, tuple):
            name, operand = item
            value = labels[operand] if isinstance(operand, str) else operand
            if name != "PUSH1" or not 0 <= value <= 0xFF:
                raise ValueError(f"cannot assemble {item!r}")
            code += bytes((_OPCODES[name], value))
        elif item.startswith(":"):
            code.append(_OPCODES["JUMPDEST"])
        elif item in _OPCODES:
            code.append(_OPCODES[item])
        else:
            raise ValueError(f"unknown mnemonic {item!r}")
    return bytes(code)


def deployment_code(runtime: bytes) -> bytes:
    """Init code that returns ``runtime``: ``PUSH1 len DUP1 PUSH1 9 PUSH0 CODECOPY PUSH0
    RETURN`` followed by the runtime (at most 255 bytes)."""
    if len(runtime) > 0xFF:
        raise ValueError("runtime longer than 255 bytes")
    return bytes((0x60, len(runtime), 0x80, 0x60, 0x09, 0x5F, 0x39, 0x5F, 0xF3)) + runtime


def create2_address(deployer: str, salt: bytes, initcode: bytes) -> str:
    """``keccak256(0xff ‖ deployer ‖ salt ‖ keccak256(initcode))[12:]``, lower-case hex."""
    preimage = b"\xff" + bytes.fromhex(deployer.removeprefix("0x")) + salt + keccak256(initcode)
    return "0x" + keccak256(preimage)[12:].hex()


RUNTIME: Final = assemble(PROGRAM)
INITCODE: Final = deployment_code(RUNTIME)
CODEHASH: Final = keccak256(RUNTIME)
ADDRESS: Final = create2_address(DETERMINISTIC_DEPLOYER, SALT, INITCODE)
