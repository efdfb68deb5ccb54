"""Solidity compiled in the tests with npm ``solc`` (solcjs, pinned in package.json): standard JSON
in, an import callback that resolves ``@scope/package/...`` under the repository's node_modules,
and a disk cache under ``build/solc/`` (gitignored) keyed by the hash of everything that decides
the output: the compiler's version, the settings and every source file the compilation read.

Compilation runs in ``node`` (solcjs is WebAssembly/asm.js, nothing is downloaded). The cache
stores the sources it read with their hashes, so a change to any of them (our contract or an
imported library file) misses the cache and recompiles.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Final

from sessionward.chain.contracts import ContractArtifact

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
NODE_MODULES: Final = REPO_ROOT / "node_modules"
SOLC_PACKAGE: Final = NODE_MODULES / "solc"
CACHE_DIR: Final = REPO_ROOT / "build" / "solc"
SETTINGS: Final[dict[str, Any]] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}

# Reads the standard JSON input on stdin, prints the standard JSON output and, on a last line,
# the list of files the import callback read (path relative to node_modules).
_NODE_SCRIPT: Final = r"""
const fs = require("fs"), path = require("path");
const solc = require(process.argv[1]);
const modules = process.argv[2];
const read = [];
function findImports(name) {
  const file = path.resolve(modules, name);
  if (!file.startsWith(modules + path.sep)) return { error: "outside node_modules: " + name };
  try { const contents = fs.readFileSync(file, "utf8"); read.push(name); return { contents }; }
  catch (e) { return { error: "not found: " + name }; }
}
const input = fs.readFileSync(0, "utf8");
process.stdout.write(solc.compile(input, { import: findImports }) + "\n" + JSON.stringify(read));
"""


class SolcUnavailable(RuntimeError):
    """node or the npm ``solc`` package is missing."""


class SolidityCompileError(RuntimeError):
    """solc reported errors."""


def solc_version() -> str:
    """The pinned solcjs version (from its package.json)."""
    return str(json.loads((SOLC_PACKAGE / "package.json").read_text())["version"])


def _run_solc(standard_input: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    node = shutil.which("node")
    if node is None or not (SOLC_PACKAGE / "index.js").exists():
        raise SolcUnavailable(f"node or npm solc is missing ({SOLC_PACKAGE}): run `npm install`")
    result = subprocess.run(
        [node, "-e", _NODE_SCRIPT, str(SOLC_PACKAGE), str(NODE_MODULES)],
        input=json.dumps(standard_input).encode(),
        capture_output=True,
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        raise SolidityCompileError(result.stderr.decode(errors="replace")[-4000:])
    output_text, read_text = result.stdout.decode().rsplit("\n", 1)
    output = json.loads(output_text)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise SolidityCompileError("\n".join(e.get("formattedMessage", str(e)) for e in errors))
    return output, sorted(set(json.loads(read_text)))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _input_key(source: Path) -> str:
    head = json.dumps({"solc": solc_version(), "settings": SETTINGS}, sort_keys=True)
    return _digest(head.encode() + b"\0" + source.read_bytes())


def _still_valid(entry: dict[str, Any]) -> bool:
    for name, digest in entry["imports"].items():
        file = NODE_MODULES / name
        if not file.is_file() or _digest(file.read_bytes()) != digest:
            return False
    return True


def compile_solidity(source: Path, contract: str) -> ContractArtifact:
    """``contract`` of the Solidity file ``source``, compiled by npm solc (cached, see the
    module notice). Raises :class:`SolcUnavailable` or :class:`SolidityCompileError`."""
    key = _input_key(source)
    entry_path = CACHE_DIR / f"{source.stem}-{key}.json"
    entry: dict[str, Any] | None = None
    try:
        entry = json.loads(entry_path.read_text())
    except (OSError, ValueError):
        entry = None
    if entry is None or not _still_valid(entry):
        standard_input = {
            "language": "Solidity",
            "sources": {source.name: {"content": source.read_text()}},
            "settings": SETTINGS,
        }
        output, imports = _run_solc(standard_input)
        contracts = {
            name: {
                "abi": data["abi"],
                "bytecode": data["evm"]["bytecode"]["object"],
                "runtime": data["evm"]["deployedBytecode"]["object"],
            }
            for name, data in output["contracts"][source.name].items()
        }
        entry = {
            "imports": {name: _digest((NODE_MODULES / name).read_bytes()) for name in imports},
            "contracts": contracts,
        }
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=CACHE_DIR, delete=False, suffix=".tmp") as out:
            json.dump(entry, out)
        os.replace(out.name, entry_path)
    data = entry["contracts"][contract]
    return ContractArtifact(
        name=contract,
        abi=tuple(data["abi"]),
        initcode=bytes.fromhex(data["bytecode"]),
        runtime=bytes.fromhex(data["runtime"]),
    )
