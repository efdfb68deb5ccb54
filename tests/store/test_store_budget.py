"""Budget reservations: the session check, exact conditional charges, release and settle."""

from __future__ import annotations

import pytest
from store_support import T0, Seeder

from sessionward.domain.usage import FEE, NATIVE, USES, Charge, Counter, token_bucket
from sessionward.reasons import ReasonCode
from sessionward.store import Store
from sessionward.store.errors import AlreadyExists
from sessionward.store.freezes import Scope

UINT256_MAX = 2**256 - 1
USDC = token_bucket("0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48")


def native(amount: int, limit: int = 10_000, window: int = 0) -> Charge:
    return Charge(NATIVE, window, amount, limit, ReasonCode.VALUE_LIMIT_EXCEEDED)


def use(limit: int = 100) -> Charge:
    return Charge(USES, 0, 1, limit, ReasonCode.USAGE_LIMIT_REACHED)


# ------------------------------------------------------------------------- charges


def test_reservation_within_limits_is_held_and_counted(store: Store, seed: Seeder) -> None:
    s = seed.session()
    outcome = store.budget.reserve(s.session_id, "r1", [native(700), use()], now=T0 + 1)
    assert outcome.accepted and outcome.reasons == ()
    assert outcome.usage.counters == {NATIVE: Counter(0, 700), USES: Counter(0, 1)}
    assert store.budget.usage_of(s.session_id) == outcome.usage
    record = store.budget.reservation("r1")
    assert record is not None and record.status == "held" and record.created_at == T0 + 1
    assert record.charges == (native(700), use())
    session = store.sessions.get(s.session_id)
    assert session is not None and session.last_used_at == T0 + 1


def test_charge_reaching_the_limit_exactly_is_accepted(store: Store, seed: Seeder) -> None:
    s = seed.session()
    assert store.budget.reserve(s.session_id, "r1", [native(10_000)], now=T0 + 1).accepted


def test_charge_crossing_the_limit_is_refused_and_nothing_changes(
    store: Store, seed: Seeder
) -> None:
    s = seed.session()
    assert store.budget.reserve(s.session_id, "r1", [native(9_000), use()], now=T0 + 1).accepted
    before = store.budget.usage_of(s.session_id)

    outcome = store.budget.reserve(s.session_id, "r2", [use(), native(1_001)], now=T0 + 2)

    assert not outcome.accepted
    assert outcome.reasons == (ReasonCode.VALUE_LIMIT_EXCEEDED,)
    assert store.budget.usage_of(s.session_id) == before == outcome.usage
    assert store.budget.reservation("r2") is None
    session = store.sessions.get(s.session_id)
    assert session is not None and session.last_used_at == T0 + 1


def test_every_failing_charge_is_reported(store: Store, seed: Seeder) -> None:
    s = seed.session()
    charges = [
        native(5, limit=4),
        Charge(USDC, 0, 10, 5, ReasonCode.TOKEN_LIMIT_EXCEEDED),
        Charge(FEE, 0, 1, 10, ReasonCode.FEE_LIMIT_EXCEEDED),
        use(limit=0),
    ]
    outcome = store.budget.reserve(s.session_id, "r1", charges, now=T0 + 1)
    assert outcome.reasons == (
        ReasonCode.VALUE_LIMIT_EXCEEDED,
        ReasonCode.TOKEN_LIMIT_EXCEEDED,
        ReasonCode.USAGE_LIMIT_REACHED,
    )
    assert store.budget.usage_of(s.session_id).counters == {}


def test_a_newer_window_refills_the_bucket(store: Store, seed: Seeder) -> None:
    s = seed.session()
    assert store.budget.reserve(s.session_id, "r1", [native(10_000, window=0)], now=T0).accepted
    assert not store.budget.reserve(s.session_id, "r2", [native(1, window=0)], now=T0).accepted
    outcome = store.budget.reserve(s.session_id, "r3", [native(9_999, window=1)], now=T0)
    assert outcome.accepted
    assert outcome.usage.counters[NATIVE] == Counter(1, 9_999)


def test_an_older_window_is_charged_to_the_newer_counter(store: Store, seed: Seeder) -> None:
    # Clock skew between nodes: a charge for window 2 after window 3 was opened must not reset
    # the counter (that would forget what window 3 already spent).
    s = seed.session()
    assert store.budget.reserve(s.session_id, "r1", [native(6_000, window=3)], now=T0).accepted
    refused = store.budget.reserve(s.session_id, "r2", [native(5_000, window=2)], now=T0)
    assert refused.reasons == (ReasonCode.VALUE_LIMIT_EXCEEDED,)
    accepted = store.budget.reserve(s.session_id, "r3", [native(4_000, window=2)], now=T0)
    assert accepted.usage.counters[NATIVE] == Counter(3, 10_000)


def test_amounts_up_to_uint256_max_are_exact(store: Store, seed: Seeder) -> None:
    s = seed.session()
    big = 2**255 + 12_345
    first = Charge(USDC, 0, big, UINT256_MAX, ReasonCode.TOKEN_LIMIT_EXCEEDED)
    second = Charge(USDC, 0, UINT256_MAX - big, UINT256_MAX, ReasonCode.TOKEN_LIMIT_EXCEEDED)
    assert store.budget.reserve(s.session_id, "r1", [first], now=T0).accepted
    assert store.budget.reserve(s.session_id, "r2", [second], now=T0).accepted
    assert store.budget.usage_of(s.session_id).counters[USDC] == Counter(0, UINT256_MAX)
    one_more = Charge(USDC, 0, 1, UINT256_MAX, ReasonCode.TOKEN_LIMIT_EXCEEDED)
    outcome = store.budget.reserve(s.session_id, "r3", [one_more], now=T0)
    assert outcome.reasons == (ReasonCode.TOKEN_LIMIT_EXCEEDED,)
    assert store.budget.usage_of(s.session_id).counters[USDC] == Counter(0, UINT256_MAX)


def test_limits_differing_only_past_2_to_the_63_are_compared_exactly(
    store: Store, seed: Seeder
) -> None:
    s = seed.session()
    limit = 2**200 + 1
    assert store.budget.reserve(
        s.session_id,
        "r1",
        [Charge(USDC, 0, 2**200, limit, ReasonCode.TOKEN_LIMIT_EXCEEDED)],
        now=T0,
    ).accepted
    assert store.budget.reserve(
        s.session_id, "r2", [Charge(USDC, 0, 1, limit, ReasonCode.TOKEN_LIMIT_EXCEEDED)], now=T0
    ).accepted
    outcome = store.budget.reserve(
        s.session_id, "r3", [Charge(USDC, 0, 1, limit, ReasonCode.TOKEN_LIMIT_EXCEEDED)], now=T0
    )
    assert outcome.reasons == (ReasonCode.TOKEN_LIMIT_EXCEEDED,)
    assert store.budget.usage_of(s.session_id).counters[USDC] == Counter(0, limit)


def test_an_amount_beyond_uint256_is_a_programming_error(store: Store, seed: Seeder) -> None:
    s = seed.session()
    with pytest.raises(ValueError):
        store.budget.reserve(s.session_id, "r1", [native(2**256, limit=2**300)], now=T0)
    assert store.budget.usage_of(s.session_id).counters == {}


def test_a_reservation_id_is_used_once(store: Store, seed: Seeder) -> None:
    s = seed.session()
    assert store.budget.reserve(s.session_id, "r1", [native(1)], now=T0).accepted
    with pytest.raises(AlreadyExists):
        store.budget.reserve(s.session_id, "r1", [native(1)], now=T0)
    assert store.budget.usage_of(s.session_id).counters[NATIVE] == Counter(0, 1)


# ---------------------------------------------------------------- release/settle


def test_release_gives_the_amounts_back_once(store: Store, seed: Seeder) -> None:
    s = seed.session()
    assert store.budget.reserve(s.session_id, "r1", [native(3_000), use()], now=T0).accepted
    assert store.budget.reserve(s.session_id, "r2", [native(4_000), use()], now=T0).accepted

    assert store.budget.release("r1", now=T0 + 5)
    assert not store.budget.release("r1", now=T0 + 6)

    usage = store.budget.usage_of(s.session_id).counters
    assert usage == {NATIVE: Counter(0, 4_000), USES: Counter(0, 1)}
    record = store.budget.reservation("r1")
    assert record is not None and record.status == "released" and record.released_at == T0 + 5


def test_release_after_the_window_refilled_gives_nothing_back(store: Store, seed: Seeder) -> None:
    s = seed.session()
    assert store.budget.reserve(s.session_id, "r1", [native(3_000, window=0)], now=T0).accepted
    assert store.budget.reserve(s.session_id, "r2", [native(500, window=1)], now=T0).accepted
    assert store.budget.release("r1")
    assert store.budget.usage_of(s.session_id).counters[NATIVE] == Counter(1, 500)


def test_settled_reservation_cannot_be_released(store: Store, seed: Seeder) -> None:
    s = seed.session()
    assert store.budget.reserve(s.session_id, "r1", [native(3_000)], now=T0).accepted
    assert store.budget.settle("r1", now=T0 + 9)
    assert not store.budget.settle("r1", now=T0 + 10)
    assert not store.budget.release("r1")
    record = store.budget.reservation("r1")
    assert record is not None and record.status == "settled" and record.settled_at == T0 + 9
    assert store.budget.usage_of(s.session_id).counters[NATIVE] == Counter(0, 3_000)


def test_unknown_reservation_is_neither_released_nor_settled(store: Store) -> None:
    assert not store.budget.release("nope")
    assert not store.budget.settle("nope")
    assert store.budget.reservation("nope") is None


def test_release_of_uint256_amounts_is_exact(store: Store, seed: Seeder) -> None:
    s = seed.session()
    a = Charge(USDC, 0, 2**255, UINT256_MAX, ReasonCode.TOKEN_LIMIT_EXCEEDED)
    b = Charge(USDC, 0, 2**254 + 7, UINT256_MAX, ReasonCode.TOKEN_LIMIT_EXCEEDED)
    assert store.budget.reserve(s.session_id, "r1", [a], now=T0).accepted
    assert store.budget.reserve(s.session_id, "r2", [b], now=T0).accepted
    assert store.budget.release("r1")
    assert store.budget.usage_of(s.session_id).counters[USDC] == Counter(0, 2**254 + 7)


# --------------------------------------------------------------- session check


def _refusal(
    store: Store,
    session_id: str,
    *,
    now: int = T0 + 1,
    action_class: str | list[str] | None = None,
) -> tuple[ReasonCode, ...]:
    outcome = store.budget.reserve(
        session_id, "r-refused", [native(1)], now=now, action_class=action_class
    )
    assert not outcome.accepted
    assert store.budget.reservation("r-refused") is None
    return outcome.reasons


def test_unknown_session_is_refused(store: Store) -> None:
    assert _refusal(store, "missing") == (ReasonCode.SESSION_UNKNOWN,)


def test_pending_session_is_refused(store: Store, seed: Seeder) -> None:
    s = seed.session(approve=False)
    assert _refusal(store, s.session_id) == (ReasonCode.SESSION_PENDING_APPROVAL,)


def test_revoked_session_is_refused_and_usage_unchanged(store: Store, seed: Seeder) -> None:
    s = seed.session()
    assert store.budget.reserve(s.session_id, "r1", [native(5)], now=T0).accepted
    assert store.sessions.revoke_session(s.session_id, by="owner", reason="done", now=T0 + 1)
    assert _refusal(store, s.session_id, now=T0 + 2) == (ReasonCode.SESSION_REVOKED,)
    assert store.budget.usage_of(s.session_id).counters == {NATIVE: Counter(0, 5)}


def test_suspended_session_is_refused(store: Store, seed: Seeder) -> None:
    s = seed.session()
    assert store.sessions.suspend(s.session_id, renewal_nonce=7)
    assert _refusal(store, s.session_id) == (ReasonCode.SESSION_SUSPENDED,)
    assert store.sessions.renew(s.session_id, renewal_nonce=7)
    assert store.budget.reserve(s.session_id, "r1", [native(1)], now=T0 + 1).accepted


def test_expired_session_is_refused_at_its_expiry(store: Store, seed: Seeder) -> None:
    s = seed.session(expires_at=T0 + 100)
    assert store.budget.reserve(s.session_id, "r1", [native(1)], now=T0 + 99).accepted
    assert _refusal(store, s.session_id, now=T0 + 100) == (ReasonCode.SESSION_EXPIRED,)


def test_session_before_its_window_is_refused(store: Store, seed: Seeder) -> None:
    s = seed.session(valid_after=T0 + 50)
    assert _refusal(store, s.session_id, now=T0 + 49) == (ReasonCode.SESSION_NOT_YET_VALID,)
    assert store.budget.reserve(s.session_id, "r1", [native(1)], now=T0 + 50).accepted


def test_revoked_credential_refuses_its_sessions(store: Store, seed: Seeder) -> None:
    s = seed.session()
    assert store.credentials.revoke(s.credential_id, reason="retired", now=T0)
    assert _refusal(store, s.session_id) == (ReasonCode.CREDENTIAL_REVOKED,)


def test_expired_credential_refuses_its_sessions(store: Store, seed: Seeder) -> None:
    credential = seed.credential(expires_at=T0 + 10)
    s = seed.session(credential_id=credential)
    assert _refusal(store, s.session_id, now=T0 + 10) == (ReasonCode.CREDENTIAL_EXPIRED,)


@pytest.mark.parametrize(
    ("scope", "reason"),
    [
        ("global", ReasonCode.GLOBAL_FREEZE),
        ("wallet", ReasonCode.WALLET_FROZEN),
        ("credential", ReasonCode.CREDENTIAL_REVOKED),
        ("session", ReasonCode.SESSION_SUSPENDED),
        ("action_class", ReasonCode.ACTION_CLASS_FROZEN),
    ],
)
def test_each_freeze_scope_refuses_with_its_reason(
    store: Store, seed: Seeder, scope: Scope, reason: ReasonCode
) -> None:
    s = seed.session()
    target = {
        "global": None,
        "wallet": s.wallet_id,
        "credential": s.credential_id,
        "session": s.session_id,
        "action_class": "swap.execute",
    }[scope]
    store.freezes.freeze(scope, target, reason="incident", by="ops1", now=T0)
    assert _refusal(store, s.session_id, action_class="swap.execute") == (reason,)


def test_action_class_freeze_spares_other_classes(store: Store, seed: Seeder) -> None:
    s = seed.session(action_classes=("swap.execute", "erc20.transfer"))
    store.freezes.freeze("action_class", "swap.execute", reason="bad router", by="ops", now=T0)
    assert store.budget.reserve(
        s.session_id, "r1", [native(1)], now=T0 + 1, action_class="erc20.transfer"
    ).accepted
    assert _refusal(store, s.session_id, action_class=["erc20.transfer", "swap.execute"]) == (
        ReasonCode.ACTION_CLASS_FROZEN,
    )


def test_freeze_of_another_wallet_does_not_refuse(store: Store, seed: Seeder) -> None:
    s = seed.session()
    other = seed.wallet()
    store.freezes.freeze("wallet", other, reason="incident", by="ops", now=T0)
    assert store.budget.reserve(s.session_id, "r1", [native(1)], now=T0 + 1).accepted


def test_every_refusal_reason_is_reported(store: Store, seed: Seeder) -> None:
    s = seed.session(expires_at=T0 + 10)
    store.sessions.revoke_session(s.session_id, by="owner", reason="x", now=T0)
    store.credentials.revoke(s.credential_id, reason="x", now=T0)
    store.freezes.freeze("global", None, reason="x", by="ops", now=T0)
    store.freezes.freeze("wallet", s.wallet_id, reason="x", by="ops", now=T0)
    assert set(_refusal(store, s.session_id, now=T0 + 10)) == {
        ReasonCode.SESSION_REVOKED,
        ReasonCode.SESSION_EXPIRED,
        ReasonCode.CREDENTIAL_REVOKED,
        ReasonCode.GLOBAL_FREEZE,
        ReasonCode.WALLET_FROZEN,
    }


def test_lifted_freeze_no_longer_refuses(store: Store, seed: Seeder) -> None:
    s = seed.session()
    store.freezes.freeze("wallet", s.wallet_id, reason="check", by="ops", now=T0)
    assert _refusal(store, s.session_id) == (ReasonCode.WALLET_FROZEN,)
    assert store.freezes.lift("wallet", s.wallet_id, by="ops", now=T0 + 1) == 1
    assert store.budget.reserve(s.session_id, "r1", [native(1)], now=T0 + 2).accepted


# ------------------------------------------------------------------------- call nonces


def _reserve_taking_call_nonce(
    store: Store, session_id: str, reservation_id: str, charge: Charge
) -> tuple[bool, int | None]:
    """One execution-style reservation: in a transaction of its own, rolled back if refused."""
    with store.db.writing() as conn:
        store.db.pass_gate(conn)
        outcome = store.budget.reserve_in(
            conn, session_id, reservation_id, [charge], now=T0 + 1, take_call_nonce=True
        )
        if not outcome.accepted:
            conn.rollback()
    return outcome.accepted, outcome.call_nonce


def test_reservations_taking_call_nonces_get_them_in_order(store: Store, seed: Seeder) -> None:
    s = seed.session()
    taken = [_reserve_taking_call_nonce(store, s.session_id, f"r{i}", native(1)) for i in range(3)]
    assert taken == [(True, 0), (True, 1), (True, 2)]
    session = store.sessions.get(s.session_id)
    assert session is not None and session.call_nonce == 3


def test_a_refused_or_plain_reservation_takes_no_call_nonce(store: Store, seed: Seeder) -> None:
    s = seed.session()
    assert _reserve_taking_call_nonce(store, s.session_id, "r1", native(10_001)) == (False, None)
    plain = store.budget.reserve(s.session_id, "r2", [native(1)], now=T0 + 1)
    assert plain.accepted and plain.call_nonce is None
    session = store.sessions.get(s.session_id)
    assert session is not None and session.call_nonce == 0
    assert _reserve_taking_call_nonce(store, s.session_id, "r3", native(1)) == (True, 0)
