"""alto's own ERC-7562 rule check (``alto_rules.mjs``) of a user operation's validation on a
node: :func:`alto_verdict` runs ``EntryPointSimulations.simulateValidation(op)`` the way alto's
safe mode traces it, and returns alto's verdict (:class:`AltoVerdict`): accepted, with the
contracts whose storage the validation read, or alto's error message.

The call chain is alto's: a caller at depth 1 (alto's simulations contract; here a forwarder)
calls the real EntryPoint's ``delegateAndRevert(simulations, simulateValidation(op))`` (depth 2),
which DELEGATECALLs EntryPointSimulations (depth 3: the EntryPoint's address and storage running
the simulation code, where alto's tracer expects the EntryPoint's calls into the entities).
The forwarder and EntryPointSimulations' runtime are put in place by state overrides, the
latter also at the EntryPoint's address (as tests/erc4337/erc7562.py does): the npm
EntryPointSimulations calls ``this._validateSenderAndPaymaster``, which the deployed EntryPoint
does not have (alto deploys simulation contracts of its own for that).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from erc4337_support import ENTRY_POINT_V07, aa_artifact

from sessionward.contracts.encoding import PackedUserOperation

HERE: Final = Path(__file__).resolve().parent
SCRIPT: Final = HERE / "alto_rules.mjs"
REPO_ROOT: Final = HERE.parents[1]
FORWARDER: Final = "0x" + "f1" * 20
SIMULATIONS: Final = "0x" + "5e" * 20


def forwarder_code(target: str) -> bytes:
    """Runtime that CALLs ``target`` with the whole calldata and all the gas, and returns (or
    reverts with) what it answered: ``CALLDATACOPY; CALL(GAS, target, 0, 0, size, 0, 0);
    RETURNDATACOPY; success ? RETURN : REVERT``."""
    return (
        bytes.fromhex("365f5f37" + "5f5f365f5f73")
        + bytes.fromhex(target.removeprefix("0x"))
        + bytes.fromhex("5af1" + "3d5f5f3e" + "602a57" + "3d5ffd" + "5b3d5ff3")
    )


@dataclass(frozen=True)
class AltoVerdict:
    """``error`` is None when alto's parser accepted; ``storage_read`` the contracts (lower-case)
    whose storage the validation read, as alto's storage map lists them."""

    error: str | None
    storage_read: frozenset[str] = frozenset()


def alto_verdict(rpc_url: str, op: PackedUserOperation) -> AltoVerdict:
    """alto's judgement of ``op``'s validation (see the module notice)."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is missing")
    simulations = aa_artifact("EntryPointSimulations")
    request = {
        "rpcUrl": rpc_url,
        "entryPoint": ENTRY_POINT_V07,
        "sender": op.sender,
        "to": FORWARDER,
        "data": "0x"
        + aa_artifact("EntryPoint")
        .encode(
            "delegateAndRevert", SIMULATIONS, simulations.encode("simulateValidation", tuple(op))
        )
        .hex(),
        "stateOverrides": {
            SIMULATIONS: {"code": "0x" + simulations.runtime.hex()},
            ENTRY_POINT_V07: {"code": "0x" + simulations.runtime.hex()},
            FORWARDER: {"code": "0x" + forwarder_code(ENTRY_POINT_V07).hex()},
        },
    }
    result = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps(request).encode(),
        capture_output=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr.decode(errors="replace")[-3000:])
    verdict = json.loads(result.stdout)
    if verdict["ok"]:
        assert verdict["calls"] >= 1, "alto's tracer saw no call from the EntryPoint"
        return AltoVerdict(None, frozenset(a.lower() for a in verdict["storage"]))
    return AltoVerdict(str(verdict["error"]))
