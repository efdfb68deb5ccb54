"""Specification of the capability envelope's JSON form (sessionward.domain.envelope).

Parsing checks shape only: the seed example loads as written, every accepted envelope round-trips
through ``to_json``, and anything ambiguous (unknown fields, floats, out-of-range or boolean
amounts, bad checksums, duplicate entries) is refused with ENVELOPE_MALFORMED naming the field.
Grant-time rules (tiers, TTLs, caps) are specified in test_grant.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from domain_support import (
    CHAIN_ID,
    MERCHANT,
    ROUTER_A,
    ROUTER_A_CHECKSUM,
    SEED_EXPIRY,
    SESSION_KEY,
    TOKEN_X,
    USDC,
    seed_doc,
)

from sessionward.domain import strict_json
from sessionward.domain.envelope import (
    MAX_LIST,
    ArgRule,
    Envelope,
    EnvelopeMalformed,
    Permission,
    RateLimit,
    RuleOp,
    TokenLimit,
    ValueLimit,
)
from sessionward.domain.strict_json import MalformedJson
from sessionward.reasons import ReasonCode

SEED_TEXT = (
    '{"sessionKey": "0x5e5510e0000000000000000000000000000000a1", '
    '"capabilities": ["swap.execute"], "maxValueUsd": 500, '
    f'"allowedDestinations": ["{ROUTER_A_CHECKSUM}"], '
    '"chainId": 1, "expiresAt": 1771703600}'
)

FULL_DOC: dict[str, Any] = {
    "sessionKey": SESSION_KEY,
    "capabilities": ["erc20.transfer", "swap.execute"],
    "permissions": [
        {
            "target": USDC,
            "function": "transfer(address to,uint256 amount)",
            "maxValuePerCall": "0",
            "rules": [
                {"arg": "to", "op": "in", "values": [MERCHANT, "$account"]},
                {"arg": "amount", "op": "lte", "value": 1000},
            ],
        }
    ],
    "allowedDestinations": [ROUTER_A, USDC, MERCHANT],
    "chainId": 1,
    "validAfter": 1_771_700_100,
    "expiresAt": SEED_EXPIRY,
    "valueLimit": {"limit": "1000000000000000000", "period": 86400},
    "tokenLimits": [{"token": USDC, "limit": "250000000", "period": 3600}],
    "maxValueUsd": "500.25",
    "maxUses": 10,
    "rateLimit": {"count": 3, "interval": 60},
    "maxFeeWei": "20000000000000000",
}


def malformed(document: object) -> str:
    """Parse ``document`` expecting ENVELOPE_MALFORMED; return the message."""
    with pytest.raises(EnvelopeMalformed) as info:
        Envelope.from_json(document)
    assert info.value.code is ReasonCode.ENVELOPE_MALFORMED
    return info.value.message


# --- the seed example ----------------------------------------------------------------------


def test_seed_example_text_loads_as_written() -> None:
    envelope = Envelope.from_json(strict_json.loads(SEED_TEXT))
    assert envelope == Envelope(
        chain_id=CHAIN_ID,
        expires_at=SEED_EXPIRY,
        capabilities=("swap.execute",),
        allowed_destinations=(ROUTER_A,),  # checksummed input, lower-case inside
        session_key=SESSION_KEY,
        max_value_usd=500_000_000,
    )
    assert envelope.valid_after is None and envelope.value_limit is None
    assert envelope.token_limits == () and envelope.permissions == ()
    assert envelope.max_uses is None and envelope.rate_limit is None
    assert envelope.max_fee_wei is None


def test_seed_example_round_trips_through_to_json() -> None:
    envelope = Envelope.from_json(seed_doc())
    doc = envelope.to_json()
    assert doc == {
        "sessionKey": SESSION_KEY,
        "capabilities": ["swap.execute"],
        "allowedDestinations": [ROUTER_A],
        "chainId": 1,
        "expiresAt": SEED_EXPIRY,
        "maxValueUsd": "500",
    }
    assert Envelope.from_json(doc) == envelope
    assert Envelope.from_json(strict_json.loads(json.dumps(doc))) == envelope


def test_every_field_round_trips_through_to_json() -> None:
    envelope = Envelope.from_json(FULL_DOC)
    assert envelope.permissions == (
        Permission(
            target=USDC,
            function="transfer(address to,uint256 amount)",
            max_value_per_call=0,
            rules=(
                ArgRule("to", RuleOp.IN, (MERCHANT, "$account")),
                ArgRule("amount", RuleOp.LTE, (1000,)),
            ),
        ),
    )
    assert envelope.value_limit == ValueLimit(10**18, 86400)
    assert envelope.token_limits == (TokenLimit(USDC, 250_000_000, 3600),)
    assert envelope.max_value_usd == 500_250_000
    assert envelope.rate_limit == RateLimit(3, 60)
    assert envelope.max_fee_wei == 2 * 10**16
    doc = envelope.to_json()
    assert doc["maxValueUsd"] == "500.25"
    assert doc["valueLimit"] == {"limit": "1000000000000000000", "period": 86400}
    assert Envelope.from_json(doc) == envelope
    assert Envelope.from_json(strict_json.loads(json.dumps(doc))).to_json() == doc


def test_amounts_may_be_json_integers_or_decimal_strings() -> None:
    as_int = Envelope.from_json(
        seed_doc(maxFeeWei=10**30, tokenLimits=[{"token": USDC, "limit": 5}])
    )
    as_str = Envelope.from_json(
        seed_doc(maxFeeWei=str(10**30), tokenLimits=[{"token": USDC, "limit": "5"}])
    )
    assert as_int == as_str
    assert as_int.max_fee_wei == 10**30


@pytest.mark.parametrize(
    "usd,micro",
    [(0, 0), (500, 500_000_000), ("500", 500_000_000), ("12.5", 12_500_000), ("0.000001", 1)],
)
def test_usd_amounts_are_exact_micro_usd(usd: int | str, micro: int) -> None:
    assert Envelope.from_json(seed_doc(maxValueUsd=usd)).max_value_usd == micro


def test_the_largest_uint256_amount_is_accepted() -> None:
    envelope = Envelope.from_json(seed_doc(tokenLimits=[{"token": USDC, "limit": str(2**256 - 1)}]))
    assert envelope.token_limits[0].limit == 2**256 - 1


def test_rule_operator_codes_are_the_on_chain_values() -> None:
    assert [op.code for op in RuleOp] == [0, 1, 2, 3, 4, 5]
    assert [op.value for op in RuleOp] == ["eq", "ne", "lte", "gte", "in", "not_in"]


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document,field",
    [
        (seed_doc(owner="0x" + "11" * 20), "owner"),
        (seed_doc(valueLimit={"limit": 1, "perod": 60}), "perod"),
        (seed_doc(tokenLimits=[{"token": USDC, "limit": 1, "decimals": 6}]), "decimals"),
        (seed_doc(rateLimit={"count": 1, "interval": 60, "burst": 2}), "burst"),
        (
            seed_doc(permissions=[{"target": ROUTER_A, "function": "f()", "selector": "0x01"}]),
            "selector",
        ),
        (
            seed_doc(
                permissions=[
                    {
                        "target": ROUTER_A,
                        "function": "f(uint256 a)",
                        "rules": [{"arg": "a", "op": "eq", "value": 1, "note": "x"}],
                    }
                ]
            ),
            "note",
        ),
    ],
    ids=["top", "valueLimit", "tokenLimits", "rateLimit", "permission", "rule"],
)
def test_unknown_fields_are_refused_at_every_level(document: dict[str, Any], field: str) -> None:
    assert field in malformed(document)


def test_duplicate_keys_in_the_raw_text_are_refused() -> None:
    raw = SEED_TEXT[:-1] + ', "maxValueUsd": 5000000}'
    with pytest.raises(MalformedJson) as info:
        strict_json.loads(raw)
    assert info.value.code is ReasonCode.INPUT_MALFORMED
    assert "maxValueUsd" in info.value.message


@pytest.mark.parametrize("number", ["500.0", "1e3", "5E2"])
def test_float_amounts_in_the_raw_text_are_refused(number: str) -> None:
    raw = SEED_TEXT.replace('"maxValueUsd": 500', f'"maxValueUsd": {number}')
    assert number in raw
    with pytest.raises(MalformedJson) as info:
        strict_json.loads(raw)
    assert info.value.code is ReasonCode.INPUT_MALFORMED


@pytest.mark.parametrize(
    "document,field",
    [
        (seed_doc(maxValueUsd=500.0), "maxValueUsd"),
        (seed_doc(maxValueUsd=1e3), "maxValueUsd"),
        (seed_doc(maxFeeWei=1.0), "maxFeeWei"),
        (seed_doc(tokenLimits=[{"token": USDC, "limit": 1e3}]), "tokenLimits[0].limit"),
        (seed_doc(valueLimit={"limit": 0.5}), "valueLimit.limit"),
        (seed_doc(chainId=1.0), "chainId"),
        (seed_doc(expiresAt=1771703600.0), "expiresAt"),
        (seed_doc(maxValueUsd="1e3"), "maxValueUsd"),
        (seed_doc(maxValueUsd="500.0000001"), "maxValueUsd"),
        (seed_doc(tokenLimits=[{"token": USDC, "limit": "1.5"}]), "tokenLimits[0].limit"),
    ],
)
def test_floats_for_amounts_are_refused_naming_the_field(
    document: dict[str, Any], field: str
) -> None:
    assert field in malformed(document)


@pytest.mark.parametrize(
    "document,field",
    [
        (seed_doc(tokenLimits=[{"token": USDC, "limit": 2**256}]), "tokenLimits[0].limit"),
        (seed_doc(tokenLimits=[{"token": USDC, "limit": str(2**256)}]), "tokenLimits[0].limit"),
        (seed_doc(tokenLimits=[{"token": USDC, "limit": -1}]), "tokenLimits[0].limit"),
        (seed_doc(maxFeeWei=-1), "maxFeeWei"),
        (seed_doc(maxFeeWei="-1"), "maxFeeWei"),
        (seed_doc(valueLimit={"limit": 2**256}), "valueLimit.limit"),
        (seed_doc(maxValueUsd=-500), "maxValueUsd"),
        (seed_doc(chainId=2**64), "chainId"),
        (seed_doc(chainId=-1), "chainId"),
        (seed_doc(expiresAt=2**48), "expiresAt"),
        (seed_doc(expiresAt=-1), "expiresAt"),
        (seed_doc(maxUses=2**32), "maxUses"),
        (
            seed_doc(
                permissions=[{"target": ROUTER_A, "function": "f()", "maxValuePerCall": 2**256}]
            ),
            "permissions[0].maxValuePerCall",
        ),
    ],
)
def test_out_of_range_integers_are_refused_naming_the_field(
    document: dict[str, Any], field: str
) -> None:
    assert field in malformed(document)


@pytest.mark.parametrize(
    "document,field",
    [
        (seed_doc(maxValueUsd=True), "maxValueUsd"),
        (seed_doc(maxFeeWei=False), "maxFeeWei"),
        (seed_doc(tokenLimits=[{"token": USDC, "limit": True}]), "tokenLimits[0].limit"),
        (seed_doc(valueLimit={"limit": True}), "valueLimit.limit"),
        (seed_doc(chainId=True), "chainId"),
        (seed_doc(expiresAt=True), "expiresAt"),
        (seed_doc(maxUses=True), "maxUses"),
        (seed_doc(rateLimit={"count": True, "interval": 60}), "rateLimit.count"),
    ],
)
def test_booleans_as_amounts_are_refused(document: dict[str, Any], field: str) -> None:
    assert field in malformed(document)


@pytest.mark.parametrize("text", ["01", "+1", " 1", "1 ", "1_000", "0x10", "", "١"])
def test_amount_strings_are_plain_canonical_decimals(text: str) -> None:
    assert "maxFeeWei" in malformed(seed_doc(maxFeeWei=text))


def _flip_case(address: str, index: int) -> str:
    chars = list(address)
    chars[index] = chars[index].swapcase()
    return "".join(chars)


def test_a_bad_eip55_checksum_is_refused_naming_the_field() -> None:
    # The first letter of the body whose case can flip: a one-letter typo in a checksummed address.
    index = next(i for i, c in enumerate(ROUTER_A_CHECKSUM) if i > 1 and c.isalpha())
    bad = _flip_case(ROUTER_A_CHECKSUM, index)
    message = malformed(seed_doc(allowedDestinations=[MERCHANT, bad]))
    assert "allowedDestinations[1]" in message and "checksum" in message
    assert "sessionKey" in malformed(seed_doc(sessionKey=_flip_case(ROUTER_A_CHECKSUM, index)))
    assert "tokenLimits[0].token" in malformed(seed_doc(tokenLimits=[{"token": bad, "limit": 1}]))


def test_all_lower_and_all_upper_case_addresses_are_accepted() -> None:
    upper = "0x" + ROUTER_A[2:].upper()
    for form in (ROUTER_A, upper, ROUTER_A_CHECKSUM):
        assert Envelope.from_json(seed_doc(allowedDestinations=[form])).allowed_destinations == (
            ROUTER_A,
        )


@pytest.mark.parametrize(
    "address",
    [
        "7a250d5630b4cf539739df2c5dacb4c659f2488d",
        ROUTER_A[:-1],
        ROUTER_A + "0",
        "0x" + "g" * 40,
        12,
    ],
)
def test_malformed_addresses_are_refused(address: object) -> None:
    assert "allowedDestinations[0]" in malformed(seed_doc(allowedDestinations=[address]))


@pytest.mark.parametrize(
    "document,field",
    [
        (seed_doc(allowedDestinations=[ROUTER_A, ROUTER_A]), "allowedDestinations"),
        (seed_doc(allowedDestinations=[ROUTER_A, ROUTER_A_CHECKSUM]), "allowedDestinations"),
        (seed_doc(capabilities=["swap.execute", "swap.execute"]), "capabilities"),
        (
            seed_doc(tokenLimits=[{"token": USDC, "limit": 1}, {"token": USDC, "limit": 2}]),
            "tokenLimits",
        ),
        (
            seed_doc(
                tokenLimits=[
                    {"token": TOKEN_X, "limit": 1},
                    {"token": "0x" + TOKEN_X[2:].upper(), "limit": 1, "period": 60},
                ]
            ),
            "tokenLimits",
        ),
        (
            seed_doc(permissions=[{"target": ROUTER_A, "function": "f()"}] * 2),
            "permissions",
        ),
    ],
    ids=["dest", "dest-other-case", "capability", "token", "token-other-case", "permission"],
)
def test_duplicate_entries_are_refused(document: dict[str, Any], field: str) -> None:
    message = malformed(document)
    assert message.startswith(field)
    assert "duplicate" in message or "twice" in message


def test_lists_longer_than_the_bound_are_refused() -> None:
    many = ["0x" + f"{i + 1:040x}" for i in range(MAX_LIST + 1)]
    assert "allowedDestinations" in malformed(seed_doc(allowedDestinations=many))
    assert Envelope.from_json(seed_doc(allowedDestinations=many[:MAX_LIST]))


@pytest.mark.parametrize("document", [[], "envelope", 1, None])
def test_a_document_that_is_not_an_object_is_refused(document: object) -> None:
    assert "envelope" in malformed(document)


def test_chain_id_is_required() -> None:
    assert "chainId" in malformed(seed_doc(chainId=None))


@pytest.mark.parametrize(
    "rule,field",
    [
        ({"arg": "a", "op": "in", "value": 1}, "values"),
        ({"arg": "a", "op": "eq", "values": [1]}, "value"),
        ({"arg": "a", "op": "in", "values": []}, "values"),
        ({"arg": "a", "op": "in", "values": [1, 1]}, "values"),
        ({"arg": "a", "op": "lt", "value": 1}, "op"),
        ({"arg": "a", "op": "eq", "value": 1.5}, "value"),
        ({"arg": "a", "op": "eq", "value": 2**256}, "value"),
        ({"arg": "a", "op": "eq", "value": None}, "value"),
        ({"arg": "", "op": "eq", "value": 1}, "arg"),
        ({"op": "eq", "value": 1}, "arg"),
    ],
)
def test_malformed_rules_are_refused_naming_the_rule(rule: dict[str, Any], field: str) -> None:
    document = seed_doc(
        permissions=[{"target": ROUTER_A, "function": "f(uint256 a)", "rules": [rule]}]
    )
    message = malformed(document)
    assert message.startswith("permissions[0].rules[0]") and field in message


def test_capability_names_must_be_printable_text() -> None:
    assert "capabilities[0]" in malformed(seed_doc(capabilities=["swap\nexecute"]))
    assert "capabilities[0]" in malformed(seed_doc(capabilities=[7]))
