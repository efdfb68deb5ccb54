"""Contract bindings: compile Vyper sources once, encode calls, deploy and transact on any
:class:`~sessionward.chain.interface.Chain`.

Compilation is slow (tens of seconds for the SessionAccount), so artifacts (ABI, init code,
runtime code) are cached on disk, keyed by the SHA-256 of the Vyper and snekmate versions, the
compiled file's path and *every* ``.vy``/``.vyi`` file it may import (its directory tree, or
for a source of SessionWard's contracts package the whole package: an edited imported module
invalidates the entry). The cache directory is ``$SESSIONWARD_CACHE_DIR/vyper``
or ``~/.cache/sessionward/vyper``; writes are atomic, so parallel test workers can share it.
A corrupt entry is ignored and rebuilt.

Calls are encoded and results decoded with the strict codec of
:mod:`sessionward.domain.abi`. :func:`transact` is a convenience for demo set-up and tests
(estimate, sign, send, wait); the service submits through
:class:`sessionward.chain.relayer.Relayer`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from sessionward.chain.errors import ChainError
from sessionward.chain.ethereum_transactions import Eip1559Transaction
from sessionward.chain.interface import CallRequest, Chain, Receipt
from sessionward.chain.signer import TransactionSigner
from sessionward.domain.abi import (
    CalldataMalformed,
    FunctionSignature,
    decode_tuple,
    encode_arguments,
    encode_call,
    parse_signature,
    parse_type,
)
from sessionward.domain.abi import TupleType as AbiTuple

__all__ = [
    "ContractArtifact",
    "DeployedContract",
    "ReturnDataMalformed",
    "TransactionFailed",
    "compile_vyper",
    "deploy",
    "storage_layout_path",
    "transact",
    "wait_for_receipt",
]

_CACHE_FORMAT: Final = "1"


class ReturnDataMalformed(ChainError):
    """A contract's return data is not the canonical ABI encoding of its declared outputs."""


class TransactionFailed(ChainError):
    """A transaction sent by :func:`transact`/:func:`deploy` was mined but reverted."""

    def __init__(self, receipt: Receipt) -> None:
        super().__init__(f"transaction {receipt.tx_hash} reverted: {receipt.revert_reason}")
        self.receipt = receipt


def _canonical_type(entry: dict[str, Any]) -> str:
    kind = str(entry["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in entry.get("components", []))
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def _signature_text(entry: dict[str, Any]) -> str:
    params = ",".join(_canonical_type(p) for p in entry.get("inputs", []))
    return f"{entry.get('name', 'constructor')}({params})"


@dataclass(frozen=True)
class ContractArtifact:
    """A compiled contract: its ABI, init code and runtime code."""

    name: str
    abi: tuple[dict[str, Any], ...] = field(repr=False)
    initcode: bytes = field(repr=False)
    runtime: bytes = field(repr=False)

    @cached_property
    def _functions(self) -> dict[str, list[dict[str, Any]]]:
        table: dict[str, list[dict[str, Any]]] = {}
        for entry in self.abi:
            if entry.get("type") == "function":
                table.setdefault(str(entry["name"]), []).append(entry)
        return table

    def _entry(self, function: str) -> dict[str, Any]:
        if "(" in function:
            wanted = parse_signature(function).canonical
            for entries in self._functions.values():
                for entry in entries:
                    if parse_signature(_signature_text(entry)).canonical == wanted:
                        return entry
            raise KeyError(f"{self.name} has no function {wanted}")
        entries = self._functions.get(function, [])
        if len(entries) != 1:
            raise KeyError(
                f"{self.name} has {len(entries)} functions named {function!r}; "
                "give the full signature"
            )
        return entries[0]

    def signature(self, function: str) -> FunctionSignature:
        """The :class:`FunctionSignature` of ``function`` (a name, or a full signature for
        overloaded names)."""
        return parse_signature(_signature_text(self._entry(function)))

    def encode(self, function: str, *args: object) -> bytes:
        """Calldata for ``function(*args)``."""
        return encode_call(self.signature(function), args)

    def decode_output(self, function: str, data: bytes) -> tuple[object, ...]:
        """Strictly decode ``function``'s return data into a tuple of values."""
        outputs = ",".join(_canonical_type(o) for o in self._entry(function).get("outputs", []))
        output_type = parse_type(f"({outputs})")
        if not isinstance(output_type, AbiTuple):  # pragma: no cover - "(...)" is a tuple
            raise TypeError("function outputs must form a tuple type")
        try:
            return decode_tuple(output_type, data, what=f"{self.name}.{function} result")
        except CalldataMalformed as exc:
            raise ReturnDataMalformed(exc.message) from None

    def deployment_code(self, *args: object) -> bytes:
        """Init code followed by the ABI-encoded constructor arguments."""
        constructor = next((e for e in self.abi if e.get("type") == "constructor"), None)
        if constructor is None:
            if args:
                raise ValueError(f"{self.name} takes no constructor arguments")
            return self.initcode
        text = "constructor(" + ",".join(_canonical_type(p) for p in constructor["inputs"]) + ")"
        return self.initcode + encode_arguments(parse_signature(text), args)


# -------------------------------------------------------------------------- compilation


def _cache_dir() -> Path:
    root = os.environ.get("SESSIONWARD_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "sessionward"
    return base / "vyper"


def _source_tree(path: Path) -> Path:
    """The folder whose every Vyper file may be imported by ``path``: SessionWard's contracts
    package for a source inside it (a module in a subfolder imports its parent's files, as
    ``erc7579_module/SessionWardModule.vy`` does with ``from .. import sessions``), else the
    source's own folder."""
    package = Path(__file__).resolve().parents[1] / "contracts"
    return package if path.is_relative_to(package) else path.parent


def _cache_key(path: Path) -> str:
    versions = f"vyper {metadata.version('vyper')}, snekmate {metadata.version('snekmate')}"
    digest = hashlib.sha256()
    digest.update(f"{_CACHE_FORMAT}|{versions}|{path}|".encode())
    tree = _source_tree(path)
    for source in sorted(p for p in tree.rglob("*") if p.suffix in (".vy", ".vyi") and p.is_file()):
        digest.update(str(source.relative_to(tree)).encode() + b"\0")
        digest.update(hashlib.sha256(source.read_bytes()).digest())
    layout = storage_layout_path(path)
    if layout.is_file():
        digest.update(b"storage layout\0" + hashlib.sha256(layout.read_bytes()).digest())
    return digest.hexdigest()


def storage_layout_path(path: Path) -> Path:
    """Where the storage-layout override of the Vyper source ``path`` sits, when it has one:
    ``<stem>.layout.json`` next to it (the format of vyper's ``layout`` output, ``n_slots``
    included). :func:`compile_vyper` compiles with it (vyper checks every variable is in it)."""
    return path.with_suffix(".layout.json")


def _compile_uncached(path: Path) -> dict[str, Any]:
    from vyper.compiler import compile_from_file_input
    from vyper.compiler.input_bundle import FilesystemInputBundle

    search_paths = [path.parent, *(Path(p) for p in sys.path if p)]
    bundle = FilesystemInputBundle(search_paths)
    layout = storage_layout_path(path)
    override = None
    if layout.is_file():
        from vyper.compiler.input_bundle import JSONInput

        text = layout.read_text()
        override = JSONInput(
            contents=text, data=json.loads(text), source_id=-1, path=layout, resolved_path=layout
        )
    output = compile_from_file_input(
        bundle.load_file(path),
        input_bundle=bundle,
        output_formats=["abi", "bytecode", "bytecode_runtime"],
        storage_layout_override=override,
    )
    return {
        "abi": output["abi"],
        "bytecode": output["bytecode"],
        "bytecode_runtime": output["bytecode_runtime"],
    }


def compile_vyper(path: str | Path, *, use_cache: bool = True) -> ContractArtifact:
    """Compile the Vyper file at ``path`` (imports resolve next to it, then on ``sys.path``,
    which is where snekmate lives), using the disk cache unless ``use_cache`` is False."""
    source = Path(path).resolve(strict=True)
    artifact: dict[str, Any] | None = None
    entry = _cache_dir() / f"{source.stem}-{_cache_key(source)}.json"
    if use_cache:
        try:
            artifact = json.loads(entry.read_text())
        except (OSError, ValueError):
            artifact = None
    if artifact is None:
        artifact = _compile_uncached(source)
        if use_cache:
            entry.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", dir=entry.parent, delete=False, suffix=".tmp"
            ) as handle:
                json.dump(artifact, handle)
            os.replace(handle.name, entry)
    return ContractArtifact(
        name=source.stem,
        abi=tuple(artifact["abi"]),
        initcode=bytes.fromhex(str(artifact["bytecode"]).removeprefix("0x")),
        runtime=bytes.fromhex(str(artifact["bytecode_runtime"]).removeprefix("0x")),
    )


# -------------------------------------------------------------------------- transacting


def wait_for_receipt(
    chain: Chain, tx_hash: str, *, timeout: float = 30.0, poll_interval: float = 0.05
) -> Receipt:
    """Poll until ``tx_hash`` is mined. Raises :class:`ChainError` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        receipt = chain.get_receipt(tx_hash)
        if receipt is not None:
            return receipt
        if time.monotonic() >= deadline:
            raise ChainError(f"transaction {tx_hash} not mined within {timeout} s")
        time.sleep(poll_interval)


def transact(
    chain: Chain,
    signer: TransactionSigner,
    *,
    to: str | None,
    data: bytes = b"",
    value: int = 0,
    gas: int | None = None,
    check: bool = True,
) -> Receipt:
    """Estimate (unless ``gas`` is given, +20 %), sign with ``signer`` at its pending nonce,
    send, and wait for the receipt. Raises :class:`TransactionFailed` on revert when
    ``check``. For set-up code and tests, not for the service's submissions."""
    if gas is None:
        estimate = chain.estimate_gas(
            CallRequest(to=to, data=data, value=value, sender=signer.address)
        )
        gas = estimate + estimate // 5
    fees = chain.max_fee()
    unsigned = Eip1559Transaction(
        chain_id=chain.chain_id,
        nonce=chain.get_transaction_count(signer.address, "pending"),
        max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
        max_fee_per_gas=fees.max_fee_per_gas,
        gas=gas,
        to=to,
        value=value,
        data=data,
    )
    receipt = wait_for_receipt(chain, chain.send_raw_transaction(signer.sign_transaction(unsigned)))
    if check and not receipt.succeeded:
        raise TransactionFailed(receipt)
    return receipt


@dataclass(frozen=True)
class DeployedContract:
    """A compiled contract at an address on a chain: read with :meth:`call`, write with
    :meth:`transact`."""

    chain: Chain
    address: str
    compiled: ContractArtifact

    def call(self, function: str, *args: object, sender: str | None = None) -> tuple[object, ...]:
        """``eth_call`` ``function(*args)`` and decode the result tuple."""
        data = self.chain.call(self.address, self.compiled.encode(function, *args), sender=sender)
        return self.compiled.decode_output(function, data)

    def call_one(self, function: str, *args: object, sender: str | None = None) -> object:
        """:meth:`call` for a function returning exactly one value."""
        (value,) = self.call(function, *args, sender=sender)
        return value

    def transact(
        self,
        signer: TransactionSigner,
        function: str,
        *args: object,
        value: int = 0,
        gas: int | None = None,
        check: bool = True,
    ) -> Receipt:
        return transact(
            self.chain,
            signer,
            to=self.address,
            data=self.compiled.encode(function, *args),
            value=value,
            gas=gas,
            check=check,
        )


def deploy(
    chain: Chain,
    signer: TransactionSigner,
    compiled: ContractArtifact,
    *args: object,
    value: int = 0,
    gas: int | None = None,
) -> DeployedContract:
    """Deploy ``compiled`` with constructor ``args`` from ``signer``; waits for the receipt."""
    receipt = transact(
        chain, signer, to=None, data=compiled.deployment_code(*args), value=value, gas=gas
    )
    if receipt.contract_address is None:
        raise ChainError(f"deployment {receipt.tx_hash} has no contract address")
    return DeployedContract(chain, receipt.contract_address, compiled)
