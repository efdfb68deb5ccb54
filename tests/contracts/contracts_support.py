"""Helpers of the on-chain tests (titanoboa, in process): keys, ABI words, grants, a world.

Every contract is compiled once per test session (``load_deployer`` caches, boa also caches on
disk). Each test module deploys one *world* (EntryPoint double, implementation, factory, an
account owned by an EOA, two demo tokens, a router, a call recorder); every test runs inside a
``boa.env.anchor()`` so its state changes, time travel and chain-id patches are rolled back.

Grants are built as the ``SessionGrant`` messages of :mod:`sessionward.crypto.typed_data`, hashed
and signed with the shared Python code, and passed to the contract with
:func:`sessionward.contracts.encoding.grant_struct`: a test passes only if Python and Vyper agree
on every byte of the digest.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import count
from pathlib import Path
from typing import Any

import boa

from evm_support import Key, addr, at, derive_key
from evm_support import calldata as calldata  # re-exported: the tests import it from here
from sessionward.contracts import load_deployer
from sessionward.contracts.encoding import grant_struct
from sessionward.crypto import typed_data
from sessionward.crypto.keccak import keccak256
from sessionward.domain.abi import parse_signature
from sessionward.domain.calldata import (
    Call,
    encode_batch_execution,
    encode_single_execution,
    mode_batch,
    mode_single,
)

TESTS_DIR = Path(__file__).resolve().parent
T0 = 1_800_000_000
DAY = 86_400
ZERO_ADDRESS = "0x" + "00" * 20
MAX_UINT256 = 2**256 - 1
ETHER = 10**18
UNIT = 10**18  # one demo token
OP = {"eq": 0, "ne": 1, "lte": 2, "gte": 3, "in": 4, "not_in": 5}
OFFCHAIN_ONLY = 0xFFFF
ACCOUNT_SALT = b"\x00" * 31 + b"\x01"


# ------------------------------------------------------------------------------ keys and ABI


# ``Key``, ``addr``, ``calldata`` and ``at`` live in tests/evm_support.py (shared with
# tests/onchain); they are imported above so the tests keep importing them from here.


def make_key(label: str) -> Key:
    """The test key named ``label`` (the same key on every run)."""
    return derive_key(b"sessionward-contract-tests:", label)


def selector(signature: str) -> bytes:
    return keccak256(parse_signature(signature).canonical.encode())[:4]


def word(value: int | str) -> bytes:
    """A 32-byte ABI word: an unsigned integer or a (left-padded) address."""
    if isinstance(value, str):
        return bytes(12) + bytes.fromhex(value.removeprefix("0x"))
    return value.to_bytes(32, "big")


def rule(offset: int, op: str, *values: int | str, arg: str = "arg") -> dict[str, Any]:
    """A ``Rule`` on the static word ``offset`` (``OFFCHAIN_ONLY`` for off-chain rules)."""
    return {"arg": arg, "op": OP[op], "offset": offset, "values": [word(v) for v in values]}


def permission(
    target: Any,
    function: str,
    *,
    rules: Sequence[dict[str, Any]] = (),
    max_value: int = 0,
    action_class: str = "custom",
) -> dict[str, Any]:
    canonical = parse_signature(function).canonical
    return {
        "target": addr(target),
        "selector": selector(canonical),
        "function": canonical,
        "actionClass": action_class,
        "maxValuePerCall": max_value,
        "rules": list(rules),
    }


def token_limit(token: Any, limit: int, period: int = 0) -> dict[str, Any]:
    return {"token": addr(token), "limit": limit, "period": period}


def single(call: Call) -> tuple[bytes, bytes]:
    return mode_single(), encode_single_execution(call)


def batch(calls: Sequence[Call]) -> tuple[bytes, bytes]:
    return mode_batch(), encode_batch_execution(list(calls))


@cache
def double_deployer(name: str) -> Any:
    """Deployer of a test double in this folder (compiled once per session)."""
    return boa.load_partial(str(TESTS_DIR / f"{name}.vy"))


# ---------------------------------------------------------------------------------- wallet


@dataclass
class Wallet:
    """An account with its owner, and helpers to grant and use sessions on it."""

    contract: Any
    owner: Key
    relayer: str
    nonces: Iterator[int] = field(default_factory=lambda: count(1))

    @property
    def address(self) -> str:
        return addr(self.contract)

    @property
    def chain_id(self) -> int:
        return int(boa.env.evm.patch.chain_id)

    def grant(
        self,
        session: Key,
        *,
        permissions: Sequence[dict[str, Any]] = (),
        token_limits: Sequence[dict[str, Any]] = (),
        value_limit: int = 0,
        value_period: int = 0,
        max_uses: int = 0,
        max_fee_wei: int = 0,
        valid_after: int | None = None,
        expires_at: int | None = None,
        nonce: int | None = None,
        epoch: int | None = None,
        revoker: str = ZERO_ADDRESS,
        chain_id: int | None = None,
        account: str | None = None,
        capabilities: Sequence[str] = ("custom",),
        destinations: Sequence[str] = (),
    ) -> dict[str, Any]:
        """A ``SessionGrant`` message; by default valid from now for a day, fresh nonce."""
        start = boa.env.timestamp if valid_after is None else valid_after
        return {
            "account": account or self.address,
            "sessionKey": session.address,
            "credential": typed_data.credential_hash("cred-" + session.label),
            "nonce": next(self.nonces) if nonce is None else nonce,
            "epoch": self.contract.epoch() if epoch is None else epoch,
            "revoker": revoker,
            "envelope": {
                "chainId": self.chain_id if chain_id is None else chain_id,
                "validAfter": start,
                "expiresAt": start + DAY if expires_at is None else expires_at,
                "capabilities": list(capabilities),
                "permissions": list(permissions),
                "allowedDestinations": [addr(d) for d in destinations],
                "valueLimit": value_limit,
                "valuePeriod": value_period,
                "tokenLimits": list(token_limits),
                "maxValueUsd": "",
                "maxUses": max_uses,
                "rateCount": 0,
                "rateInterval": 0,
                "maxFeeWei": max_fee_wei,
            },
        }

    def sign_grant(self, grant: dict[str, Any], signer: Key | None = None) -> bytes:
        digest = typed_data.grant_digest(self.chain_id, self.address, grant)
        return (signer or self.owner).sign(digest)

    def enable(
        self, grant: dict[str, Any], signature: bytes | None = None, sender: str | None = None
    ) -> None:
        sig = self.sign_grant(grant) if signature is None else signature
        self.contract.enable_session(grant_struct(grant), sig, sender=sender or self.relayer)

    def session_signature(
        self, session: Key, mode: bytes, ec: bytes, *, nonce: int, deadline: int
    ) -> bytes:
        digest = typed_data.session_call_digest(
            self.chain_id,
            self.address,
            session.address,
            typed_data.execution_hash(mode, ec),
            nonce,
            deadline,
        )
        return session.sign(digest)

    def run(
        self,
        session: Key,
        execution: tuple[bytes, bytes],
        *,
        nonce: int | None = None,
        deadline: int | None = None,
        signer: Key | None = None,
        signature: bytes | None = None,
        sender: str | None = None,
    ) -> Any:
        """``execute_with_session`` signed by ``session`` (or ``signer``); the nonce defaults to
        the key's lowest unused nonce (``session_nonce``)."""
        mode, ec = execution
        n = self.contract.session_nonce(session.address) if nonce is None else nonce
        dl = boa.env.timestamp + 600 if deadline is None else deadline
        sig = signature
        if sig is None:
            sig = self.session_signature(signer or session, mode, ec, nonce=n, deadline=dl)
        return self.contract.execute_with_session(
            session.address, mode, ec, n, dl, sig, sender=sender or self.relayer
        )

    def owner_execute(
        self, execution: tuple[bytes, bytes], *, sender: str | None = None, value: int = 0
    ) -> Any:
        mode, ec = execution
        return self.contract.execute(mode, ec, sender=sender or self.owner.address, value=value)

    def state(self, session: Key) -> Any:
        return self.contract.session(session.address)


# ----------------------------------------------------------------------------------- world


@dataclass
class World:
    entry_point: Any
    implementation: Any
    factory: Any
    wallet: Wallet
    token: Any
    token2: Any
    router: Any
    target: Any
    relayer: str

    @property
    def account(self) -> Any:
        return self.wallet.contract


def deploy_world(entry_point: Any = None) -> World:
    """A fresh world whose accounts trust ``entry_point`` (default: a new EntryPoint double)."""
    boa.env.timestamp = T0
    relayer = addr(boa.env.generate_address("relayer"))
    if entry_point is None:
        entry_point = double_deployer("MockEntryPoint").deploy()
    implementation = load_deployer("SessionAccount").deploy(entry_point.address)
    factory = load_deployer("SessionAccountFactory").deploy(implementation.address)
    owner = make_key("owner")
    account = at("SessionAccount", factory.create_account(owner.address, ACCOUNT_SALT))
    token = load_deployer("DemoToken").deploy("Demo Dollar", "DUSD", 18)
    token2 = load_deployer("DemoToken").deploy("Demo Ether", "DETH", 18)
    router = load_deployer("DemoRouter").deploy()
    target = double_deployer("Target").deploy()
    token.mint(account.address, 1_000_000 * UNIT)
    token2.mint(account.address, 1_000 * UNIT)
    token.mint(router.address, 1_000_000 * UNIT)
    token2.mint(router.address, 1_000 * UNIT)
    boa.env.set_balance(account.address, 100 * ETHER)
    return World(
        entry_point=entry_point,
        implementation=implementation,
        factory=factory,
        wallet=Wallet(account, owner, relayer),
        token=token,
        token2=token2,
        router=router,
        target=target,
        relayer=relayer,
    )


# ---------------------------------------------------------------------- calls and refusals

RECORD = "record(uint256,address,bytes32)"
TRANSFER = "transfer(address,uint256)"


def record(
    world: World, a: int = 1, b: str | None = None, c: bytes = b"\x00" * 32, value: int = 0
) -> Call:
    """A call of ``Target.record(a, b, c)`` (``b`` defaults to the relayer) sending ``value``."""
    return Call(addr(world.target), value, calldata(RECORD, a, b or world.relayer, c))


def transfer(world: World, to: str, amount: int) -> Call:
    """A call of the world's DUSD ``transfer(to, amount)``."""
    return Call(addr(world.token), 0, calldata(TRANSFER, to, amount))


def snapshot(world: World, key: Key) -> tuple[Any, ...]:
    """Everything a session call of ``key`` may change: its session state and DUSD usage, the
    account's balances and the target's call count."""
    wallet = world.wallet
    return (
        wallet.state(key),
        wallet.contract.token_usage(key.address, addr(world.token)),
        world.token.balanceOf(wallet.address),
        world.token2.balanceOf(wallet.address),
        boa.env.get_balance(wallet.address),
        world.target.calls(),
    )


def refused(world: World, key: Key, execution: tuple[bytes, bytes], reason: str) -> None:
    """The session call reverts with ``reason`` and nothing changes (nonce included)."""
    before = snapshot(world, key)
    with boa.reverts(reason):
        world.wallet.run(key, execution)
    assert snapshot(world, key) == before


# ------------------------------------------------------------------------------------- gas


def intrinsic_gas(data: bytes) -> int:
    """Intrinsic gas of a call transaction carrying ``data`` (21000 + 16/4 per byte)."""
    return 21_000 + sum(16 if b else 4 for b in data)


def transaction_gas(sender: str, contract: Any, data: bytes, run: Any) -> tuple[int, int]:
    """``(execution, total)`` gas of ``run()``, a call through ``contract`` carrying ``data``,
    measured as a fresh transaction from ``sender``: the access journal and the storage
    original values are reset and the addresses a real transaction starts warm (sender,
    recipient, coinbase, precompiles) are warmed. ``execution`` is the EVM gas before refunds;
    ``total`` is what a receipt reports: intrinsic gas added, the refund (capped at a fifth,
    EIP-3529) taken off, and the EIP-7623 calldata floor applied. Invalidates open boa
    anchors, so only tests marked ``ignore_isolation`` may call it."""
    boa.env.reset_gas_used()
    state = boa.env.evm.vm.state
    # A transaction starts with its storage "original values" (EIP-2200) set to the current
    # state: without this, a slot written by an earlier call would be charged as dirty (100
    # gas) instead of a fresh write (2,900).
    state.lock_changes()
    warm = [bytes.fromhex(addr(a)[2:]) for a in (sender, contract)]
    warm.append(state.coinbase)
    warm += [bytes(19) + bytes([i]) for i in range(1, 0x12)]
    for address in warm:
        state.mark_address_warm(address)
    run()
    execution = int(boa.env.get_gas_used())
    refund = int(contract._computation.get_gas_refund())
    spent = execution + intrinsic_gas(data)
    tokens = sum(4 if b else 1 for b in data)
    return execution, max(spent - min(refund, spent // 5), 21_000 + 10 * tokens)


# ------------------------------------------------------------------------------ more accounts


def factory_account(world: World, owner: Any, salt: bytes = ACCOUNT_SALT) -> Any:
    """Another account from the world's factory (owner: an address or a contract)."""
    return at("SessionAccount", world.factory.create_account(addr(owner), salt))


def delegate_7702(eoa: str, implementation: Any, deployer: Any = None) -> Any:
    """Make ``eoa`` an EIP-7702 delegated account of ``implementation`` and return a handle.

    The EOA's code becomes the delegation designator ``0xef0100 ‖ implementation``. Calls made
    *inside* the EVM follow the designator (py-evm's Prague CALL family); a top-level boa call
    does not resolve it, so the handle's functions run the implementation's runtime code in the
    EOA's context, exactly what a transaction to a delegated EOA executes. ``deployer`` gives
    the handle's ABI for another implementation (default: SessionAccount).
    """
    boa.env.set_code(eoa, b"\xef\x01\x00" + bytes.fromhex(addr(implementation)[2:]))
    if deployer is None:
        handle = at("SessionAccount", eoa)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            handle = deployer.at(eoa)
    runtime = implementation.bytecode
    for value in vars(handle).values():
        if type(value).__name__ == "VyperFunction":
            value._override_bytecode = runtime
    return handle


# ------------------------------------------------------------------------------ ERC-4337

ENTRY_POINT_V07 = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"
_AA_ARTIFACTS = TESTS_DIR.parents[1] / "node_modules" / "@account-abstraction" / "contracts"


def entry_point_v07_artifact() -> dict[str, Any] | None:
    """The canonical EntryPoint v0.7 build (npm ``@account-abstraction/contracts`` 0.7.0), or
    None when the npm packages are not installed."""
    path = _AA_ARTIFACTS / "artifacts" / "EntryPoint.json"
    if not path.is_file():
        return None
    return dict(json.loads(path.read_text()))


def deploy_entry_point_v07() -> Any:
    """Run the real EntryPoint v0.7 constructor at its canonical address (it creates its
    SenderCreator) and return a handle with its ABI."""
    artifact = entry_point_v07_artifact()
    assert artifact is not None, "npm @account-abstraction/contracts is not installed"
    boa.env.deploy_code(
        bytecode=bytes.fromhex(artifact["bytecode"][2:]), override_address=ENTRY_POINT_V07
    )
    return boa.loads_abi(json.dumps(artifact["abi"]), name="EntryPoint").at(ENTRY_POINT_V07)


def user_op(
    sender: Any,
    call_data: bytes,
    signature: bytes = b"",
    nonce: int = 0,
    *,
    verification_gas: int = 500_000,
    call_gas: int = 500_000,
    pre_verification_gas: int = 50_000,
    max_priority_fee: int = 10**9,
    max_fee: int = 2 * 10**9,
    paymaster_and_data: bytes = b"",
) -> tuple[Any, ...]:
    """A v0.7 PackedUserOperation tuple. A session operation's fee budget is charged
    ``max_cost(op)`` in validation."""
    gas_limits = verification_gas.to_bytes(16, "big") + call_gas.to_bytes(16, "big")
    fees = max_priority_fee.to_bytes(16, "big") + max_fee.to_bytes(16, "big")
    return (
        addr(sender),
        nonce,
        b"",
        call_data,
        gas_limits,
        pre_verification_gas,
        fees,
        paymaster_and_data,
        signature,
    )


def max_cost(op: tuple[Any, ...]) -> int:
    """The EntryPoint v0.7 required prefund of ``op`` when the account pays: every gas limit
    (paymaster gas included) times maxFeePerGas."""
    limits, fees, paymaster = op[4], op[6], op[7]
    gas = int.from_bytes(limits[:16], "big") + int.from_bytes(limits[16:], "big") + op[5]
    if paymaster:
        gas += int.from_bytes(paymaster[20:36], "big") + int.from_bytes(paymaster[36:52], "big")
    return gas * int.from_bytes(fees[16:], "big")


def with_signature(op: tuple[Any, ...], signature: bytes) -> tuple[Any, ...]:
    return (*op[:8], signature)


def events(contract: Any, name: str) -> list[Any]:
    """Events ``name`` emitted by the last call made through ``contract`` (call this right after
    the call: any later call, views included, replaces boa's record)."""
    return [e for e in contract.get_logs() if type(e).__name__ == name]
