"""The differential harness: the same envelope and the same calls, decided by the off-chain
policy engine (``sessionward.domain.policy.evaluate``) and executed by the on-chain sessions
module (``execute_with_session`` on a factory SessionAccount, titanoboa in process).

A *case* is an envelope written in terms of *roles* (``tokenA``, ``router``, ``merchant``, ...)
and a list of steps (time jumps and executions). :func:`run_case` compiles the envelope with
``validate_grant`` (with the world's price source, so a USD cap becomes token and native limits
as in the service), has the owner sign the grant and enables it on chain, then for every
execution evaluates the request off chain (``now`` is the block timestamp, usage the model's)
and submits on chain exactly what the service's Execute signs for it
(:func:`sessionward.domain.calldata.account_execution`: a MultiSend's records as one batch),
signed by the session key, and checks:

1. off-chain ALLOW ⇒ on-chain success;
2. an on-chain revert with a reason code ⇒ that code is among the off-chain violations
   (docs/protocol.md section 4 lists one documented exception, :func:`_documented_divergence`);
3. an off-chain violation of a check both sides implement (:func:`is_shared`) ⇒ on-chain revert,
   with a reason code unless the check is "the target would refuse this" (inner call data
   the contract does not read).

The model's usage is the off-chain accounting of what actually executed: after every on-chain
success the decision's charges are applied (also for a denied decision that the chain ran,
which happens exactly when the denial is off-chain only). Swap inputs, like every other outflow,
count on both sides (rule 7), so every token limit verdict is a shared one.

An envelope the policy refuses because two explicit permissions overlap is also offered to the
chain (both permissions in one signed grant): the chain must refuse to enable it as well.

A ``userop`` step is a session user operation sent from the account's EntryPoint (an address
of the world standing in for EntryPoint v0.7): ``validateUserOp`` (scope, signature, fee budget,
window as validation data), then ``execute_session_op`` (:func:`run_user_op`).

The world is deployed once per module; every case runs inside ``boa.env.anchor()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import boa

from evm_support import Key, addr, at, calldata, derive_key
from sessionward.chain.contracts import ContractArtifact
from sessionward.chain.demo import demo_contract
from sessionward.chain.revert import decode_revert_reason
from sessionward.contracts import load_deployer
from sessionward.contracts.encoding import grant_struct
from sessionward.crypto import typed_data
from sessionward.crypto.keccak import keccak256
from sessionward.domain.abi import decode_arguments, parse_signature
from sessionward.domain.calldata import (
    EXECUTE,
    Call,
    CalldataError,
    account_execution,
    encode_batch_execution,
    encode_execute,
    encode_multisend,
    encode_single_execution,
    mode_batch,
    mode_single,
)
from sessionward.domain.catalog import Catalog, KnownContract, default_catalog
from sessionward.domain.decision import Decision, GrantRefused, Violation
from sessionward.domain.envelope import (
    ArgRule,
    Envelope,
    Permission,
    RuleOp,
    RuleValue,
    TokenLimit,
    ValueLimit,
)
from sessionward.domain.grant import Scope, validate_grant
from sessionward.domain.policy import CallRequest, SessionStatus, SessionView, evaluate
from sessionward.domain.prices import NATIVE_ASSET, FixedPrices, Price
from sessionward.domain.usage import FEE, TOKEN_PREFIX, Charge, Counter, Usage
from sessionward.reasons import ReasonCode

HERE: Final = Path(__file__).resolve().parent
T0: Final = 1_800_000_000
ZERO_ADDRESS: Final = "0x" + "00" * 20
MAX_UINT256: Final = 2**256 - 1
FAR_DEADLINE: Final = 2**40  # router deadlines: never the reason a swap fails
BALANCE: Final = 10**30

# Function texts as an envelope writes them (argument names are the rule paths).
TRANSFER: Final = "transfer(address to,uint256 amount)"
APPROVE: Final = "approve(address spender,uint256 amount)"
INCREASE: Final = "increaseAllowance(address spender,uint256 addedValue)"
TRANSFER_FROM: Final = "transferFrom(address from,address to,uint256 amount)"
SWAP_V2: Final = (
    "swapExactTokensForTokens(uint256 amountIn,uint256 amountOutMin,address[] path,address to,"
    "uint256 deadline)"
)
SWAP_V3: Final = (
    "exactInputSingle((address tokenIn,address tokenOut,uint24 fee,address recipient,"
    "uint256 deadline,uint256 amountIn,uint256 amountOutMinimum,uint160 sqrtPriceLimitX96) params)"
)
RECORD: Final = "record(uint256 a,address b,bytes32 c)"
BURN: Final = "burn(uint256 amount)"  # a token function the catalog does not know
SET_APPROVAL_FOR_ALL: Final = "setApprovalForAll(address operator,bool approved)"  # forbidden
MINT: Final = "mint(address owner,uint256 amount)"  # never granted
SWAP_FEE: Final = 3_000

# Which on-chain outcome a shared off-chain verdict must produce.
_SHARED: Final = frozenset(
    {
        ReasonCode.SESSION_NOT_YET_VALID,
        ReasonCode.SESSION_EXPIRED,
        ReasonCode.EMPTY_BATCH,
        ReasonCode.CALL_TYPE_FORBIDDEN,
        ReasonCode.SELF_CALL_FORBIDDEN,
        ReasonCode.TARGET_NOT_ALLOWED,
        ReasonCode.SELECTOR_NOT_ALLOWED,
        ReasonCode.ARG_RULE_VIOLATED,
        ReasonCode.VALUE_CAP_EXCEEDED,
        ReasonCode.VALUE_LIMIT_EXCEEDED,
        ReasonCode.USAGE_LIMIT_REACHED,
    }
)
_CODES: Final = frozenset(code.value for code in ReasonCode)


# ------------------------------------------------------------------------------- the world


def make_key(label: str) -> Key:
    """The test key named ``label`` (the same key on every run)."""
    return derive_key(b"sessionward-onchain-tests:", label)


@dataclass
class DiffWorld:
    """One deployment shared by every case of a module (each case runs in an anchor)."""

    chain_id: int
    account: str
    owner: Key
    session: Key
    relayer: str
    roles: dict[str, str]
    catalog: Catalog
    prices: FixedPrices
    multisend: str
    """A Safe MultiSend address the catalog knows (never deployed: its records are run by the
    account itself, so nothing ever calls it)."""
    entry_point: str
    """The account's EntryPoint: user operations are validated and executed from it."""
    artifact: ContractArtifact = field(repr=False)
    recorder: Any = field(repr=False)

    def __repr__(self) -> str:  # the catalog is large; keep hypothesis reports short
        return f"DiffWorld(account={self.account})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def address(self, role: str) -> str:
        return self.roles[role]

    def submit(self, function: str, *args: Any) -> tuple[bool, str | None]:
        """Send ``function(*args)`` to the account from the relayer: ``(succeeded, revert
        reason)``; the reason is ``None`` when the revert carried no ``Error(string)``."""
        ok, output = self.call_from(self.relayer, function, *args)
        return ok, None if ok else decode_revert_reason(output)

    def call_from(self, sender: str, function: str, *args: Any) -> tuple[bool, bytes]:
        """``function(*args)`` on the account from ``sender``: ``(succeeded, output)``."""
        computation = boa.env.execute_code(
            to_address=self.account,
            sender=sender,
            data=self.artifact.encode(function, *args),
            gas=10_000_000,
        )
        return not computation.is_error, bytes(computation.output)


def deploy_diff_world() -> DiffWorld:
    """Deploy the implementation, the factory, the owner's account, two demo tokens, the demo
    router with reserves, a payable recorder, and the approvals that make every call the policy
    may allow executable (the account approves the router and itself; a friend approves the
    account), so that an on-chain failure can only be the policy's."""
    boa.env.timestamp = T0
    chain_id = int(boa.env.evm.patch.chain_id)
    relayer = addr(boa.env.generate_address("relayer"))
    owner, session = make_key("owner"), make_key("session")
    # The EntryPoint is emulated by an address of the world: it calls validateUserOp and
    # execute_session_op the way EntryPoint v0.7 does (tests/contracts runs the real one).
    entry_point = addr(boa.env.generate_address("entrypoint"))
    implementation = load_deployer("SessionAccount").deploy(entry_point)
    factory = load_deployer("SessionAccountFactory").deploy(implementation.address)
    account_address = addr(factory.create_account(owner.address, b"\x00" * 31 + b"\x07"))
    account = at("SessionAccount", account_address)
    token_a = load_deployer("DemoToken").deploy("Demo A", "DA", 18)
    token_b = load_deployer("DemoToken").deploy("Demo B", "DB", 18)
    router = load_deployer("DemoRouter").deploy()
    recorder = boa.load_partial(str(HERE / "Recorder.vy")).deploy()
    friend = addr(boa.env.generate_address("friend"))
    merchant = addr(boa.env.generate_address("merchant"))
    stranger = addr(boa.env.generate_address("stranger"))
    boa.env.set_balance(account_address, BALANCE)
    for token in (token_a, token_b):
        for holder in (account_address, friend, router.address):
            token.mint(holder, BALANCE)
        token.approve(account_address, MAX_UINT256, sender=friend)
        for spender in (router.address, account_address):
            approve = Call(addr(token), 0, calldata(APPROVE, addr(spender), MAX_UINT256))
            account.execute(mode_single(), encode_single_execution(approve), sender=owner.address)
    roles = {
        "account": account_address,
        "tokenA": addr(token_a),
        "tokenB": addr(token_b),
        "router": addr(router),
        "recorder": addr(recorder),
        "friend": friend,
        "merchant": merchant,
        "stranger": stranger,
    }
    multisend = addr(boa.env.generate_address("multisend"))
    catalog = default_catalog().with_contracts(
        [
            KnownContract(chain_id, roles["tokenA"], frozenset({"erc20"}), "Demo A", "DA", 18),
            KnownContract(chain_id, roles["tokenB"], frozenset({"erc20"}), "Demo B", "DB", 18),
            KnownContract(chain_id, roles["router"], frozenset({"router"}), "Demo router"),
            KnownContract(chain_id, multisend, frozenset({"multisend"}), "MultiSendCallOnly"),
        ]
    )
    # Prices for USD-capped envelopes: 1 DA = 0.001 USD, 1 DB = 0.002 USD, the native coin
    # 0.00001 USD, so the generator's amounts sit around the converted limits.
    prices = FixedPrices(
        {
            (chain_id, roles["tokenA"]): Price(Decimal("0.001"), 0),
            (chain_id, roles["tokenB"]): Price(Decimal("0.002"), 0),
            (chain_id, NATIVE_ASSET): Price(Decimal("0.00001"), 0),
        }
    )
    return DiffWorld(
        chain_id=chain_id,
        account=account_address,
        owner=owner,
        session=session,
        relayer=relayer,
        roles=roles,
        catalog=catalog,
        prices=prices,
        multisend=multisend,
        entry_point=entry_point,
        artifact=demo_contract("SessionAccount"),
        recorder=recorder,
    )


# ---------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class RuleSpec:
    arg: str
    op: RuleOp
    values: tuple[RuleValue, ...]
    """Operands; a string naming a role (``"merchant"``) is replaced by its address."""


@dataclass(frozen=True)
class PermissionSpec:
    target: str
    function: str
    max_value: int
    rules: tuple[RuleSpec, ...]


@dataclass(frozen=True)
class EnvelopeSpec:
    capabilities: tuple[str, ...]
    destinations: tuple[str, ...]
    permissions: tuple[PermissionSpec, ...]
    value_limit: tuple[int, int] | None
    token_limits: tuple[tuple[str, int, int], ...]
    max_uses: int | None
    start: int
    """``validAfter - now`` at grant time."""
    ttl: int
    """``expiresAt - now`` at grant time."""
    usd_cap: int | None = None
    """``maxValueUsd`` in micro-USD (converted into token and native limits at grant time)."""
    max_fee_wei: int | None = None
    """``maxFeeWei``: the budget session user operations are charged against in validation."""


@dataclass(frozen=True)
class CallSpec:
    """One inner call: ``kind`` selects the builder, ``args`` are roles and amounts."""

    kind: str
    args: tuple[Any, ...]
    value: int = 0


@dataclass(frozen=True)
class Step:
    """A time jump (``shape == "time"``, ``seconds``) or an execution of ``calls``.

    Shapes: ``single``, ``batch``, ``empty`` (a batch of none), ``multisend`` (the calls as
    Safe MultiSend records sent to the MultiSend contract; ``multisend_delegate`` with the first
    record a delegatecall), ``userop`` (the calls as a session user operation with ``gas``
    = (verificationGasLimit, callGasLimit, preVerificationGas, maxFeePerGas), validated and
    executed from the EntryPoint), and the refused modes ``delegatecall``, ``try``,
    ``static`` (carrying the first call as a single execution)."""

    shape: str
    calls: tuple[CallSpec, ...] = ()
    seconds: int = 0
    gas: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def max_cost(self) -> int:
        """What the EntryPoint may take from the account for a user operation."""
        verification, call, pre_verification, max_fee = self.gas
        return (verification + call + pre_verification) * max_fee


@dataclass(frozen=True)
class Case:
    envelope: EnvelopeSpec
    steps: tuple[Step, ...]


def _operand(world: DiffWorld, value: RuleValue) -> RuleValue:
    if isinstance(value, str) and value in world.roles:
        return world.roles[value]
    return value


def build_envelope(world: DiffWorld, spec: EnvelopeSpec, now: int) -> Envelope:
    destinations = list(dict.fromkeys(world.address(r) for r in spec.destinations))
    for permission in spec.permissions:
        target = world.address(permission.target)
        if target not in destinations:
            destinations.append(target)
    return Envelope(
        chain_id=world.chain_id,
        expires_at=now + spec.ttl,
        valid_after=now + spec.start,
        capabilities=spec.capabilities,
        permissions=tuple(
            Permission(
                target=world.address(p.target),
                function=p.function,
                max_value_per_call=p.max_value,
                rules=tuple(
                    ArgRule(r.arg, r.op, tuple(_operand(world, v) for v in r.values))
                    for r in p.rules
                ),
            )
            for p in spec.permissions
        ),
        allowed_destinations=tuple(destinations),
        value_limit=None if spec.value_limit is None else ValueLimit(*spec.value_limit),
        token_limits=tuple(
            TokenLimit(world.address(token), limit, period)
            for token, limit, period in spec.token_limits
        ),
        max_uses=spec.max_uses,
        max_value_usd=spec.usd_cap,
        max_fee_wei=spec.max_fee_wei,
    )


def build_call(world: DiffWorld, spec: CallSpec) -> Call:
    """The inner call of ``spec`` (roles resolved)."""
    a = world.address
    kind, args = spec.kind, spec.args
    if kind in ("transfer", "approve", "increaseAllowance"):
        token, who, amount = args
        text = {"transfer": TRANSFER, "approve": APPROVE, "increaseAllowance": INCREASE}[kind]
        return Call(a(token), spec.value, calldata(text, a(who), amount))
    if kind == "transferFrom":
        token, source, to, amount = args
        return Call(a(token), spec.value, calldata(TRANSFER_FROM, a(source), a(to), amount))
    if kind == "swapV2":
        token_in, token_out, to, amount = args
        data = calldata(SWAP_V2, amount, 0, [a(token_in), a(token_out)], a(to), FAR_DEADLINE)
        return Call(a("router"), spec.value, data)
    if kind == "swapV3":
        token_in, token_out, to, amount = args
        params = (a(token_in), a(token_out), SWAP_FEE, a(to), FAR_DEADLINE, amount, 0, 0)
        return Call(a("router"), spec.value, calldata(SWAP_V3, params))
    if kind == "record":
        number, who, tag = args
        word = bytes.fromhex(tag.removeprefix("0x"))
        return Call(a("recorder"), spec.value, calldata(RECORD, number, a(who), word))
    if kind == "burn":
        token, amount = args
        return Call(a(token), spec.value, calldata(BURN, amount))
    if kind == "forbidden":
        (token,) = args
        return Call(a(token), spec.value, calldata(SET_APPROVAL_FOR_ALL, a("merchant"), True))
    if kind == "unknown":
        (target,) = args
        return Call(a(target), spec.value, calldata(MINT, a("merchant"), 1))
    if kind == "self":
        inner = encode_single_execution(Call(a("merchant"), 1, b""))
        return Call(a("account"), spec.value, encode_execute(mode_single(), inner))
    if kind == "truncated":
        token, to, amount, cut = args
        return Call(a(token), spec.value, calldata(TRANSFER, a(to), amount)[:-cut])
    if kind == "short":
        (token,) = args
        return Call(a(token), spec.value, b"\xa9\x05")
    raise ValueError(f"unknown call kind {kind!r}")


_MODES: Final = {
    "delegatecall": bytes([0xFF]) + bytes(31),
    "static": bytes([0xFE]) + bytes(31),
    "try": bytes([0x00, 0x01]) + bytes(30),
}


def build_request(world: DiffWorld, step: Step) -> CallRequest:
    """The request a backend sends for ``step`` (what Prepare decides on)."""
    calls = [build_call(world, c) for c in step.calls]
    if step.shape in ("multisend", "multisend_delegate"):
        operations = [1] + [0] * (len(calls) - 1) if step.shape == "multisend_delegate" else None
        data = encode_multisend(calls, operations)
        value = sum(c.value for c in calls)
        return CallRequest(world.chain_id, world.account, world.multisend, value, data)
    if step.shape == "userop":
        mode = mode_single() if len(calls) == 1 else mode_batch()
        single = len(calls) == 1
        execution = encode_single_execution(calls[0]) if single else encode_batch_execution(calls)
        return CallRequest(
            world.chain_id,
            world.account,
            world.account,
            0,
            encode_execute(mode, execution),
            fee_wei=step.max_cost,
        )
    if step.shape == "single":
        mode, execution = mode_single(), encode_single_execution(calls[0])
    elif step.shape in ("batch", "empty"):
        mode = mode_batch()
        execution = encode_batch_execution(calls if step.shape == "batch" else [])
    else:
        mode, execution = _MODES[step.shape], encode_single_execution(calls[0])
    return CallRequest(
        world.chain_id, world.account, world.account, 0, encode_execute(mode, execution)
    )


def build_execution(world: DiffWorld, request: CallRequest) -> tuple[bytes, bytes] | None:
    """What is signed for ``request``: for the account's own ``execute`` its mode and execution
    as written (refused modes included: a compromised service may sign them, the chain must
    refuse them); otherwise what the service's Execute signs, or ``None`` when the request
    cannot be unwrapped (nothing is signed, and the policy must have refused it)."""
    if request.to == world.account:
        mode, execution = decode_arguments(EXECUTE, request.data[4:])
        assert isinstance(mode, bytes) and isinstance(execution, bytes)
        return mode, execution
    try:
        return account_execution(
            account=world.account,
            to=request.to,
            value=request.value,
            data=request.data,
            multisend=world.catalog.multisend_addresses(world.chain_id),
        )
    except CalldataError:
        return None


# ---------------------------------------------------------------------------------- model


@dataclass
class Model:
    """The off-chain usage of one session."""

    scope: Scope
    counters: dict[str, Counter] = field(default_factory=dict)
    nonces: Iterator[int] = field(default_factory=lambda: iter(range(1 << 30)))
    outcomes: list[str] = field(default_factory=list)
    """One label per execution (``off-chain verdict / on-chain outcome``), for statistics."""

    @property
    def usage(self) -> Usage:
        return Usage(dict(self.counters))

    def apply(self, charges: Sequence[Charge]) -> None:
        for charge in charges:
            current = self.counters.get(charge.bucket)
            spent = current.amount if current and current.window == charge.window else 0
            self.counters[charge.bucket] = Counter(charge.window, spent + charge.amount)


def is_shared(violation: Violation, scope: Scope) -> bool:
    """Whether the chain implements the check that produced ``violation`` (docs/protocol.md
    section 4): everything but the off-chain rows, with three partial cases. An argument rule is
    shared unless it is marked off-chain only (offset 0xffff). NON_DELEGABLE_ACTION
    is shared for unlimited approvals, not for the forbidden-selector catalog; a token limit is
    shared when the token has a limit (a token without one is refused off chain only when no
    other limit or cap measures it)."""
    code = violation.code
    if code is ReasonCode.ARG_RULE_VIOLATED:
        # The catalog's rule on a swap input behind an offset (path[0]) is off chain only.
        return not any(
            r.offset is None and f".rules[{r.label}]" in violation.rule
            for p in scope.permissions.values()
            for r in p.rules
        )
    if code in _SHARED:
        return True
    if code is ReasonCode.CALLDATA_MALFORMED:
        return True
    if code is ReasonCode.NON_DELEGABLE_ACTION:
        return "unlimited" in violation.detail
    if code is ReasonCode.TOKEN_LIMIT_EXCEEDED:
        token = violation.rule.removeprefix("tokenLimits[").removesuffix("]")
        return token in scope.token_limits
    return False


# What the contract may report for an inner call whose arguments the policy cannot decode.
_PER_CALL_CODES: Final = frozenset(
    {
        "ARG_RULE_VIOLATED",
        "VALUE_CAP_EXCEEDED",
        "NON_DELEGABLE_ACTION",
        "TOKEN_LIMIT_EXCEEDED",
    }
)


def _documented_divergence(reason: str, decision: Decision) -> bool:
    """Where the first on-chain reason may be missing from the off-chain verdicts:

    - docs/protocol.md section 4, rule 2: a forbidden-catalog selector is NON_DELEGABLE_ACTION
      off chain and fails the permission lookup on chain;
    - an inner call whose arguments do not decode is CALLDATA_MALFORMED off chain, and the
      policy checks nothing else of that call (no rules, value cap, unlimited approval or
      outflow), while the contract reads only the words it needs and reports the first of
      those checks that fails (both refuse; reported to the domain owner).
    """
    violations = decision.violations
    forbidden = any(
        v.code is ReasonCode.NON_DELEGABLE_ACTION and v.rule.startswith("forbidden[")
        for v in violations
    )
    if forbidden and reason in ("TARGET_NOT_ALLOWED", "SELECTOR_NOT_ALLOWED"):
        return True
    undecodable = any(
        v.code is ReasonCode.CALLDATA_MALFORMED and v.rule.startswith("permissions[")
        for v in violations
    )
    return undecodable and reason in _PER_CALL_CODES


def _inner_call_data_only(violations: Sequence[Violation]) -> bool:
    """Every shared violation is malformed *inner* call data, which the contract does not read
    in full: the target refuses it instead (a revert without a reason code)."""
    return all(
        v.code is ReasonCode.CALLDATA_MALFORMED and v.rule.startswith("permissions[")
        for v in violations
    )


# ----------------------------------------------------------------------------------- runs


class Mismatch(AssertionError):
    """The off-chain verdict and the on-chain outcome disagree."""


def _compile(world: DiffWorld, envelope: Envelope, now: int) -> Scope:
    return validate_grant(
        envelope,
        catalog=world.catalog,
        account=world.account,
        chain_id=world.chain_id,
        now=now,
        session_key=world.session.address,
        prices=world.prices,
    )


def _enable(world: DiffWorld, grant: dict[str, Any]) -> tuple[bool, str | None]:
    signature = world.owner.sign(typed_data.grant_digest(world.chain_id, world.account, grant))
    return world.submit("enable_session", grant_struct(grant), signature)


def _message(scope: Scope) -> dict[str, Any]:
    return scope.grant_message(
        credential=typed_data.credential_hash("cred-differential"), nonce=1, epoch=0
    )


def grant_and_enable(world: DiffWorld, spec: EnvelopeSpec) -> Scope:
    """Compile ``spec`` at the current block time and enable it on the account. Raises
    ``GrantRefused`` when the policy refuses the envelope and :class:`Mismatch` when the chain
    refuses a grant the policy accepted, or accepts overlapping permissions the policy refused."""
    now = boa.env.timestamp
    envelope = build_envelope(world, spec, now)
    try:
        scope = _compile(world, envelope, now)
    except GrantRefused as refused:
        if refused.code is ReasonCode.PERMISSION_OVERLAP:
            _offer_overlap(world, envelope, now)
        raise
    grant = _message(scope)
    ok, reason = _enable(world, grant)
    if not ok:
        raise Mismatch(f"the chain refused a grant the policy accepted: {reason}\n{grant}")
    return scope


def _offer_overlap(world: DiffWorld, envelope: Envelope, now: int) -> None:
    """Sign a grant holding every overlapping permission (as if the policy had passed them
    all) and check the chain refuses to enable it: one (target, selector), one permission."""
    first: list[Permission] = []
    again: list[Permission] = []
    seen: set[tuple[str, bytes]] = set()
    for permission in envelope.permissions:
        key = (permission.target, parse_signature(permission.function).selector)
        (again if key in seen else first).append(permission)
        seen.add(key)
    try:
        base = _compile(world, replace(envelope, permissions=tuple(first)), now)
        extra = _compile(world, replace(envelope, capabilities=(), permissions=tuple(again)), now)
    except GrantRefused:
        return  # another refusal hides the overlap: nothing to offer
    grant = _message(base)
    grant["envelope"]["permissions"] += _message(extra)["envelope"]["permissions"]
    ok, reason = _enable(world, grant)
    if ok:
        raise Mismatch(f"the chain enabled overlapping permissions the policy refused\n{grant}")
    if reason not in ("ENVELOPE_MALFORMED", None):
        raise Mismatch(f"the chain refused overlapping permissions with {reason!r}\n{grant}")


def execute_step(world: DiffWorld, model: Model, step: Step) -> tuple[Decision, bool, str | None]:
    """Decide ``step`` off chain, run on chain what is signed for it, compare (module doc),
    update the model."""
    request = build_request(world, step)
    now = boa.env.timestamp
    session = SessionView("differential", model.scope, SessionStatus.ACTIVE)
    decision = evaluate(
        request, session, model.usage, now, catalog=world.catalog, prices=world.prices
    )
    signed = build_execution(world, request)
    if signed is None:
        # Nothing can be signed for it (a MultiSend with a delegatecall record, an empty one):
        # the policy must refuse it, with the same reason the unwrapping gives.
        if decision.allowed:
            raise Mismatch(f"off-chain ALLOW of a request nothing can be signed for\nstep: {step}")
        model.outcomes.append("DENY / not signed")
        return decision, False, None
    mode, execution = signed
    if step.shape == "userop":
        ok, reason = run_user_op(world, model, step, decision, mode, execution)
        model.outcomes.append(
            f"userop: {'ALLOW' if decision.allowed else 'DENY'} / {'executed' if ok else 'refused'}"
        )
        if not ok:
            model.outcomes.append(f"chain refused user operation: {reason}")
        return decision, ok, reason
    nonce = next(model.nonces)
    deadline = now + 600
    digest = typed_data.session_call_digest(
        world.chain_id,
        world.account,
        world.session.address,
        typed_data.execution_hash(mode, execution),
        nonce,
        deadline,
    )
    ok, reason = world.submit(
        "execute_with_session",
        world.session.address,
        mode,
        execution,
        nonce,
        deadline,
        world.session.sign(digest),
    )
    compare(decision, ok, reason, model.scope, step)
    verdict = "ALLOW" if decision.allowed else "DENY"
    model.outcomes.append(f"{step.shape}: {verdict} / {'executed' if ok else 'reverted'}")
    if not ok:
        model.outcomes.append(f"chain reverted {reason}")
    if ok:
        model.apply(decision.charges)
    return decision, ok, reason


SESSION_OP: Final = "execute_session_op(address,bytes32,bytes)"
SIG_VALIDATION_FAILED: Final = 1


def run_user_op(
    world: DiffWorld,
    model: Model,
    step: Step,
    decision: Decision,
    mode: bytes,
    execution: bytes,
) -> tuple[bool, str | None]:
    """Run ``step`` as a session user operation the way EntryPoint v0.7 would: validation
    (scope, signature, fee budget; its window returned as validation data and checked
    against the block time), then ``execute_session_op``. Compares with ``decision``:
    off-chain ALLOW ⇒ validated and executed (with a fee budget: without one the account pays
    no session gas, FEE_LIMIT_EXCEEDED); a refusal's reason code is an off-chain verdict;
    shared verdicts (``maxFeeWei`` included) are refused. The fee is charged to the model
    when validation passes, whatever the execution does, as the chain does."""
    now = boa.env.timestamp
    scope = model.scope
    session = world.session.address
    verification, call_gas, pre_verification, max_fee = step.gas
    call_data = calldata(SESSION_OP, session, mode, execution)
    user_op_hash = keccak256(b"differential-user-op" + next(model.nonces).to_bytes(32, "big"))
    signature = b"\x01" + bytes.fromhex(session[2:]) + world.session.sign(eth_signed(user_op_hash))
    op = (
        world.account,
        0,
        b"",
        call_data,
        verification.to_bytes(16, "big") + call_gas.to_bytes(16, "big"),
        pre_verification,
        (10**9).to_bytes(16, "big") + max_fee.to_bytes(16, "big"),
        b"",
        signature,
    )
    in_window = scope.valid_after <= now < scope.expires_at
    budget = scope.envelope.max_fee_wei
    where = f"\nstep: {step}\noff-chain: {[v.to_json() for v in decision.violations]}"
    codes = {code.value for code in decision.reasons}
    with boa.env.anchor():
        ok, output = world.call_from(
            world.entry_point, "validateUserOp", op, user_op_hash, step.max_cost
        )
    if ok:
        (data,) = world.artifact.decode_output("validateUserOp", output)
        assert isinstance(data, int)
        if data & ((1 << 160) - 1) == SIG_VALIDATION_FAILED:
            raise Mismatch(f"validation refused the session key's own signature{where}")
        valid_after = max(scope.valid_after - 1, 0)
        if (data >> 208, (data >> 160) & (2**48 - 1)) != (valid_after, scope.expires_at - 1):
            raise Mismatch(f"validation returned another window: {data:#x}{where}")
        if not in_window:
            # The EntryPoint refuses the operation (AA22): nothing is charged or run.
            reason = "SESSION_NOT_YET_VALID" if now < scope.valid_after else "SESSION_EXPIRED"
            if reason not in codes:
                raise Mismatch(f"the EntryPoint's window refused, off-chain {codes}{where}")
            return False, reason
        if budget is None:
            raise Mismatch(f"validation passed a self-paid operation with no fee budget{where}")
        # Valid: the EntryPoint runs it (validation's fee charge stays, whatever happens next).
        world.call_from(world.entry_point, "validateUserOp", op, user_op_hash, step.max_cost)
        model.apply([c for c in decision.charges if c.bucket == FEE])
        executed, out = world.call_from(
            world.entry_point, "execute_session_op", session, mode, execution
        )
        reason = None if executed else decode_revert_reason(out)
        shared_codes = [
            v for v in decision.violations if v.code is not ReasonCode.FEE_LIMIT_EXCEEDED
        ]
        compare(
            Decision(tuple(shared_codes), decision.intents, decision.charges),
            executed,
            reason,
            scope,
            step,
        )
        if ReasonCode.FEE_LIMIT_EXCEEDED in decision.reasons:
            raise Mismatch(f"validation passed an operation over the fee budget{where}")
        if executed:
            model.apply([c for c in decision.charges if c.bucket != FEE])
        return executed, reason
    reason = decode_revert_reason(output)
    no_budget = budget is None and reason == "FEE_LIMIT_EXCEEDED"
    if reason in _CODES:
        if reason not in codes and not no_budget and not _documented_divergence(reason, decision):
            raise Mismatch(f"validation refused with {reason}, not an off-chain verdict{where}")
    elif decision.allowed:
        raise Mismatch(f"off-chain ALLOW but validation reverted ({reason!r}){where}")
    if decision.allowed and not no_budget:
        raise Mismatch(f"off-chain ALLOW but validation refused with {reason}{where}")
    return False, reason


def eth_signed(digest: bytes) -> bytes:
    """The EIP-191 hash a user operation's signer signs (``toEthSignedMessageHash``)."""
    return keccak256(b"\x19Ethereum Signed Message:\n32" + digest)


def compare(
    decision: Decision,
    ok: bool,
    reason: str | None,
    scope: Scope,
    step: Step,
) -> None:
    """The three properties of the module doc for one execution."""
    codes = {code.value for code in decision.reasons}
    shared = [v for v in decision.violations if is_shared(v, scope)]
    where = f"\nstep: {step}\noff-chain: {[v.to_json() for v in decision.violations]}"
    if decision.allowed and not ok:
        raise Mismatch(f"off-chain ALLOW but the chain reverted with {reason!r}{where}")
    if ok and shared:
        raise Mismatch(f"off-chain refused a shared check but the chain executed{where}")
    if ok:
        return
    if reason in _CODES:
        if reason not in codes and not _documented_divergence(reason, decision):
            raise Mismatch(f"the chain reverted {reason}, not an off-chain verdict{where}")
    elif shared and not _inner_call_data_only(shared):
        raise Mismatch(
            f"off-chain refused a shared check; the chain reverted without a reason code"
            f" ({reason!r}){where}"
        )


def run_case(world: DiffWorld, case: Case) -> Model:
    """Enable the case's envelope and run its steps (inside the caller's anchor)."""
    boa.env.timestamp = T0
    model = Model(grant_and_enable(world, case.envelope))
    for step in case.steps:
        if step.shape == "time":
            boa.env.time_travel(seconds=step.seconds)
        else:
            execute_step(world, model, step)
    return model


def token_bucket_of(token: str) -> str:
    return TOKEN_PREFIX + token
