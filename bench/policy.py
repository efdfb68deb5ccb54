"""Policy-engine benchmarks (issue: core).

1. ``evaluate`` for one call and for a batch of 5, against an 8-permission envelope with usage
   state: p50 / p99 in microseconds (goal: p50 <= 30 us for one call).
2. EIP-712 grant digest: ours vs eth_account's ``encode_typed_data`` in the same run (equal
   digests asserted; goal >= 10x faster).
3. The stateless part of the same decision (target, selector, value, argument rules) as a Cedar
   policy evaluated with cedarpy, side by side (goal: our *full* decision in <= 0.5x Cedar's time).

Run: ``.venv/bin/python bench/policy.py`` (prints a table; about 30 s).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime

import cedarpy
from eth_account.messages import encode_typed_data

from sessionward.crypto.keccak import keccak256
from sessionward.crypto.typed_data import credential_hash, grant_digest, typed_data_document
from sessionward.domain.abi import parse_signature
from sessionward.domain.calldata import Call, encode_batch_execution, encode_execute, mode_batch
from sessionward.domain.catalog import KnownContract, default_catalog
from sessionward.domain.envelope import Envelope
from sessionward.domain.grant import validate_grant
from sessionward.domain.policy import CallRequest, SessionStatus, SessionView, evaluate
from sessionward.domain.usage import NATIVE, USD, USES, Counter, Usage, token_bucket

ACCOUNT = "0x1111111111111111111111111111111111111111"
SESSION_KEY = "0x5e5510e0000000000000000000000000000000a1"
ROUTER = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
TOKEN_X = "0x7070707070707070707070707070707070707070"
MERCHANT = "0x3333333333333333333333333333333333333333"
NOW = 1_771_700_000
TRANSFER = parse_signature("transfer(address to,uint256 amount)")


def timed(fn: Callable[[], object], n: int) -> list[float]:
    for _ in range(min(n // 10, 2000)):
        fn()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        start = clock()
        fn()
        samples.append((clock() - start) / 1000)
    return samples


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    catalog = default_catalog().with_contracts(
        [KnownContract(1, TOKEN_X, frozenset({"erc20"}), "Token X", "TKX", 18)]
    )
    envelope = Envelope.from_json(
        {
            "capabilities": ["erc20.transfer", "erc20.approve", "swap.execute", "weth.deposit"],
            "allowedDestinations": [USDC, TOKEN_X, ROUTER, WETH, MERCHANT],
            "chainId": 1,
            "expiresAt": NOW + 3000,
            "valueLimit": {"limit": str(10**18), "period": 3600},
            "tokenLimits": [
                {"token": USDC, "limit": str(10**12), "period": 3600},
                {"token": TOKEN_X, "limit": str(10**24), "period": 3600},
            ],
            "maxValueUsd": "100000",
            "maxUses": 100000,
            "rateLimit": {"count": 1000, "interval": 60},
        }
    )
    scope = validate_grant(
        envelope, catalog=catalog, account=ACCOUNT, chain_id=1, now=NOW, session_key=SESSION_KEY
    )
    # erc20.transfer/approve on USDC, TOKEN_X and WETH (6) + 3 swap functions + deposit = 10;
    # keep exactly 8 by dropping WETH's two ERC-20 functions from the expansion.
    permissions = {
        k: v
        for k, v in scope.permissions.items()
        if not (k[0] == WETH and v.action_class.startswith("erc20"))
    }
    scope = type(scope)(
        **{**{f: getattr(scope, f) for f in scope.__dataclass_fields__}, "permissions": permissions}
    )
    assert len(scope.permissions) == 8, len(scope.permissions)
    session = SessionView("bench", scope, SessionStatus.ACTIVE, credential_expires_at=NOW + 86400)
    usage = Usage(
        {
            USES: Counter(0, 17),
            NATIVE: Counter(0, 10**15),
            USD: Counter(0, 1234 * 10**6),
            token_bucket(USDC): Counter(0, 5 * 10**8),
        }
    )
    transfer = (
        TRANSFER.selector + bytes(12) + bytes.fromhex(MERCHANT[2:]) + (10**6).to_bytes(32, "big")
    )
    one = CallRequest(1, ACCOUNT, USDC, 0, transfer)
    batch_calldata = encode_execute(
        mode_batch(), encode_batch_execution([Call(USDC, 0, transfer)] * 5)
    )
    five = CallRequest(1, ACCOUNT, ACCOUNT, 0, batch_calldata)
    assert evaluate(one, session, usage, NOW, catalog=catalog).allowed
    assert evaluate(five, session, usage, NOW, catalog=catalog).allowed

    n = 30_000
    single = timed(lambda: evaluate(one, session, usage, NOW, catalog=catalog), n)
    batched = timed(lambda: evaluate(five, session, usage, NOW, catalog=catalog), n // 3)

    # --- EIP-712 grant digest ---------------------------------------------------------------
    message = scope.grant_message(credential=credential_hash("cred-bench"), nonce=7, epoch=0)
    document = typed_data_document("SessionGrant", 1, ACCOUNT, message)
    ours = grant_digest(1, ACCOUNT, message)
    signable = encode_typed_data(full_message=document)
    theirs = keccak256(b"\x19" + signable.version + signable.header + signable.body)
    assert ours == theirs, "digest mismatch with eth_account"
    # Every iteration hashes a different grant (nonce and expiry change, so the SessionGrant and
    # Envelope structs are new; permissions repeat as they do for one backend's grants).
    variants = []
    for i in range(6000):
        m = dict(message, nonce=1000 + i)
        m["envelope"] = dict(message["envelope"], expiresAt=NOW + 3000 + i)
        variants.append(m)
    fresh = iter(variants)
    ours_t = timed(lambda: grant_digest(1, ACCOUNT, next(fresh)), 5000)
    documents = iter([typed_data_document("SessionGrant", 1, ACCOUNT, m) for m in variants[:400]])
    theirs_t = timed(lambda: encode_typed_data(full_message=next(documents)), 300)

    # --- Cedar: the stateless part of the same decision --------------------------------------
    policies = []
    for (target, selector), p in scope.permissions.items():
        conds = [
            f'context.target == "{target}"',
            f'context.selector == "0x{selector.hex()}"',
            f"context.value <= {min(p.max_value_per_call, 2**62)}",
        ]
        for rule in p.rules:
            field = rule.arg.replace(".", "_").replace("[", "_").replace("]", "")
            allowed = ", ".join(f'"{v}"' for v in rule.values)
            conds.append(f"[{allowed}].contains(context.args.{field})")
        policies.append(
            'permit(principal == Session::"bench", action == Action::"call", resource)\n  when { '
            + " && ".join(conds)
            + " };"
        )
    policy_set = cedarpy.PolicySet.from_str("\n".join(policies))
    entities = cedarpy.Entities.from_json_str("[]")

    def cedar_decide() -> bool:
        # Cedar cannot decode ABI: hand it the decoded call (an advantage for Cedar).
        request = {
            "principal": 'Session::"bench"',
            "action": 'Action::"call"',
            "resource": 'Target::"' + USDC + '"',
            "context": {
                "target": USDC,
                "selector": "0xa9059cbb",
                "value": 0,
                "args": {"to": MERCHANT},
            },
        }
        return cedarpy.is_authorized(request, policy_set, entities).allowed

    assert cedar_decide()
    cedar_t = timed(cedar_decide, 5000)

    p50_one = pct(single, 0.5)
    p50_cedar = pct(cedar_t, 0.5)
    rows = [
        ("evaluate, 1 call (8 permissions, usage)", pct(single, 0.5), pct(single, 0.99)),
        ("evaluate, batch of 5", pct(batched, 0.5), pct(batched, 0.99)),
        ("EIP-712 grant digest, SessionWard", pct(ours_t, 0.5), pct(ours_t, 0.99)),
        ("EIP-712 grant digest, eth_account", pct(theirs_t, 0.5), pct(theirs_t, 0.99)),
        ("Cedar (cedarpy), stateless part only", pct(cedar_t, 0.5), pct(cedar_t, 0.99)),
    ]
    print(
        f"# bench/policy.py  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  {platform.machine()} {platform.python_version()}"
    )
    print(f"{'case':45} {'p50 us':>10} {'p99 us':>10}")
    for name, p50, p99 in rows:
        print(f"{name:45} {p50:10.1f} {p99:10.1f}")
    print(
        f"grant digest speed-up vs eth_account (p50): {pct(theirs_t, 0.5) / pct(ours_t, 0.5):.1f}x (goal >= 10x)"
    )
    print(f"full decision / Cedar stateless (p50): {p50_one / p50_cedar:.2f}x (goal <= 0.5x)")
    print(f"evaluate p50 one call: {p50_one:.1f} us (goal <= 30 us)")


if __name__ == "__main__":
    main()
