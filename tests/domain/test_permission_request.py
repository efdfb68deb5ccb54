"""ERC-7715 ``wallet_grantPermissions`` requests become envelopes, or are refused with the code
that says why; a granted envelope is written back as ERC-7715 ``PermissionResponse`` objects.

The ``ERC_*`` vectors are the examples of the ERC text (ERCS/erc-7715.md, "Request example" and
the ERC-7710 example), with their ``'0x...'`` placeholders filled in and their numbers as JSON.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from domain_support import ACCOUNT, CHAIN_ID, MERCHANT, NOW, STRANGER, TOKEN_X, USDC
from hypothesis import given
from hypothesis import strategies as st

from sessionward.domain.catalog import Catalog
from sessionward.domain.envelope import Envelope
from sessionward.domain.grant import validate_grant
from sessionward.domain.permission_request import (
    ImportedRequest,
    PermissionRequestRefused,
    cap_windows,
    envelope_from_permission_request,
    permission_response,
    stream_as_periodic,
)
from sessionward.reasons import ReasonCode

ERC_SIGNER = "0x016562aa41a8697720ce0943f003141f5deae006"
EXPIRY = NOW + 1800

# The ERC's "Request example" (chainId 123; the account placeholder is the wallet's account).
ERC_REQUEST_EXAMPLE: list[dict[str, Any]] = [
    {
        "chainId": 123,
        "address": ACCOUNT,
        "expiry": 1577840461,
        "signer": {"type": "account", "data": {"address": ERC_SIGNER}},
        "permission": {"type": "native-token-transfer", "data": {"allowance": "0x1DCD6500"}},
        "policies": [{"type": "gas-limit", "data": {"limit": "0x1DCD6500"}}],
    }
]
# The ERC-7710 section's example: Alice (the signer) asks Bob's wallet for 1 ether.
ERC_7710_EXAMPLE: list[dict[str, Any]] = [
    {
        "address": ACCOUNT,
        "chainId": 123,
        "signer": {"type": "account", "data": {"id": ERC_SIGNER}},
        "permissions": [
            {
                "type": "native-token-transfer",
                "data": {"allowance": "0x0DE0B6B3A7640000"},
                "required": True,
            }
        ],
        "expiry": 1577840461,
    }
]
# The ERC's response example: the keys every PermissionResponse carries.
ERC_RESPONSE_KEYS = {"chainId", "address", "expiry", "signer", "permission", "policies", "context"}


def periodic_request(**overrides: Any) -> list[dict[str, Any]]:
    """10 TOKEN_X (6 decimals) a day to MERCHANT, managed by the wallet, for 30 minutes."""
    entry: dict[str, Any] = {
        "chainId": hex(CHAIN_ID),
        "address": ACCOUNT,
        "expiry": EXPIRY,
        "signer": {"type": "wallet", "data": {}},
        "permission": {
            "type": "erc20-token-periodic",
            "data": {
                "tokenAddress": TOKEN_X,
                "periodAmount": hex(10 * 10**6),
                "periodDuration": 86400,
                "startTime": NOW,
                "justification": "Pay the merchant up to 10 TKX a day",
            },
        },
        "policies": [{"type": "payee", "data": {"addresses": [MERCHANT]}}],
    }
    entry.update(overrides)
    return [{k: v for k, v in entry.items() if v is not None}]


def imported(request: object, *, backend: str | None = STRANGER, chain: int = CHAIN_ID) -> Any:
    return envelope_from_permission_request(
        request, chain_id=chain, account=ACCOUNT, backend_address=backend
    )


def refusal(request: object, **kwargs: Any) -> PermissionRequestRefused:
    with pytest.raises(PermissionRequestRefused) as refused:
        imported(request, **kwargs)
    return refused.value


# --- the ERC's own examples ------------------------------------------------------------------


def test_the_erc_request_example_is_refused_as_a_plain_native_transfer() -> None:
    refused = refusal(ERC_REQUEST_EXAMPLE, backend=ERC_SIGNER, chain=123)
    assert refused.code is ReasonCode.PERMISSION_UNENFORCEABLE
    assert refused.path == "[0].permission"


def test_the_erc_request_example_names_another_signer_than_the_backend() -> None:
    refused = refusal(ERC_REQUEST_EXAMPLE, backend=STRANGER, chain=123)
    assert (refused.code, refused.path) == (ReasonCode.SIGNER_MISMATCH, "[0].signer")


def test_the_erc_request_example_on_another_chain_is_a_chain_mismatch() -> None:
    refused = refusal(ERC_REQUEST_EXAMPLE, backend=ERC_SIGNER, chain=CHAIN_ID)
    assert refused.code is ReasonCode.CHAIN_MISMATCH


def test_the_erc_7710_example_is_refused_as_a_plain_native_transfer() -> None:
    refused = refusal(ERC_7710_EXAMPLE, backend=ERC_SIGNER, chain=123)
    assert (refused.code, refused.path) == (
        ReasonCode.PERMISSION_UNENFORCEABLE,
        "[0].permissions[0]",
    )


def test_the_erc_gas_limit_policy_is_unenforceable_on_an_erc20_allowance() -> None:
    request = periodic_request()
    request[0]["policies"].append({"type": "gas-limit", "data": {"limit": "0x1DCD6500"}})
    refused = refusal(request)
    assert (refused.code, refused.path) == (ReasonCode.PERMISSION_UNENFORCEABLE, "[0].policies[1]")


# --- what maps onto the envelope -----------------------------------------------------------


def test_an_erc20_periodic_allowance_becomes_a_token_limit_on_a_transfer_to_the_payee(
    catalog: Catalog,
) -> None:
    result = imported(periodic_request())
    assert isinstance(result, ImportedRequest)
    assert result.envelope == {
        "chainId": CHAIN_ID,
        "capabilities": ["erc20.transfer"],
        "allowedDestinations": [TOKEN_X, MERCHANT],
        "expiresAt": EXPIRY,
        "validAfter": NOW,
        "tokenLimits": [{"token": TOKEN_X, "limit": str(10 * 10**6), "period": 86400}],
    }
    assert result.adjustments == () and result.left_out == ()
    assert result.justifications == ("Pay the merchant up to 10 TKX a day",)
    scope = validate_grant(
        Envelope.from_json(result.envelope),
        catalog=catalog,
        account=ACCOUNT,
        chain_id=CHAIN_ID,
        now=NOW,
    )
    assert scope.expires_at == EXPIRY


def test_a_total_allowance_an_expiry_rule_and_limits_map_exactly() -> None:
    request = periodic_request(
        permission={
            "type": "erc20-token-transfer",
            "data": {"address": USDC, "allowance": "0x1DCD6500"},
        },
        rules=[{"type": "expiry", "data": {"timestamp": EXPIRY - 60}}],
        policies=[
            {"type": "payee", "data": {"addresses": [MERCHANT]}},
            {"type": "call-limit", "data": {"count": 5}},
            {"type": "rate-limit", "data": {"count": 2, "interval": 60}},
        ],
    )
    envelope = imported(request).envelope
    assert envelope["tokenLimits"] == [{"token": USDC, "limit": str(0x1DCD6500), "period": 0}]
    assert envelope["expiresAt"] == EXPIRY - 60
    assert envelope["maxUses"] == 5
    assert envelope["rateLimit"] == {"count": 2, "interval": 60}
    assert "validAfter" not in envelope


def test_several_requests_grant_several_tokens_in_one_envelope() -> None:
    second = periodic_request(
        permission={
            "type": "erc20-token-allowance",
            "data": {"tokenAddress": USDC, "allowanceAmount": "1000", "startTime": NOW},
        }
    )
    envelope = imported(periodic_request() + second).envelope
    assert [t["token"] for t in envelope["tokenLimits"]] == [TOKEN_X, USDC]
    assert envelope["allowedDestinations"] == [TOKEN_X, USDC, MERCHANT]


def test_an_account_signer_must_be_the_backend_credential_address() -> None:
    request = periodic_request(signer={"type": "account", "data": {"address": STRANGER}})
    assert imported(request, backend=STRANGER).envelope["capabilities"] == ["erc20.transfer"]
    assert refusal(request, backend=MERCHANT).code is ReasonCode.SIGNER_MISMATCH
    assert refusal(request, backend=None).code is ReasonCode.SIGNER_MISMATCH


def test_the_later_drafts_to_field_is_the_account_signer() -> None:
    request = periodic_request(signer=None, to=STRANGER)
    assert imported(request, backend=STRANGER).envelope["tokenLimits"]
    assert refusal(request, backend=MERCHANT).code is ReasonCode.SIGNER_MISMATCH


def test_an_optional_permission_of_an_unknown_type_is_left_out_and_listed() -> None:
    request = periodic_request()
    request[0]["permissions"] = [
        request[0].pop("permission"),
        {"type": "erc721-token-transfer", "data": {}, "required": False},
    ]
    result = imported(request)
    assert result.left_out == ("[0].permissions[1]",)
    assert len(result.envelope["tokenLimits"]) == 1


# --- refusals: exact codes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "code", "path"),
    [
        pytest.param(
            {"permission": {"type": "erc721-token-transfer", "data": {}}},
            ReasonCode.PERMISSION_TYPE_UNSUPPORTED,
            "[0].permission.type",
            id="erc721",
        ),
        pytest.param(
            {"permission": {"type": "native-token-periodic", "data": {"periodAmount": "0x1"}}},
            ReasonCode.PERMISSION_UNENFORCEABLE,
            "[0].permission",
            id="native-periodic",
        ),
        pytest.param(
            {"policies": []},
            ReasonCode.PERMISSION_UNENFORCEABLE,
            "policies",
            id="any-recipient",
        ),
        pytest.param(
            {"policies": [{"type": "spent-limit", "data": {"allowance": "0x1"}}]},
            ReasonCode.PERMISSION_UNENFORCEABLE,
            "[0].policies[0]",
            id="native-spent-limit",
        ),
        pytest.param(
            {"policies": [{"type": "teleport", "data": {}}]},
            ReasonCode.PERMISSION_TYPE_UNSUPPORTED,
            "[0].policies[0].type",
            id="unknown-policy",
        ),
        pytest.param(
            {"signer": {"type": "key", "data": {"id": "did:key:zQ3s"}}},
            ReasonCode.PERMISSION_UNENFORCEABLE,
            "[0].signer.type",
            id="dapp-chosen-key",
        ),
        pytest.param(
            {"signer": {"type": "psychic", "data": {}}},
            ReasonCode.PERMISSION_TYPE_UNSUPPORTED,
            "[0].signer.type",
            id="unknown-signer",
        ),
        pytest.param(
            {"address": MERCHANT}, ReasonCode.ACCOUNT_MISMATCH, "[0].address", id="other-account"
        ),
        pytest.param(
            {"chainId": "0x89"}, ReasonCode.CHAIN_MISMATCH, "[0].chainId", id="other-chain"
        ),
        pytest.param({"expiry": None}, ReasonCode.EXPIRY_MISSING, "expiry", id="no-expiry"),
        pytest.param(
            {"permission": {"type": "erc20-token-periodic", "data": {"tokenAddress": TOKEN_X}}},
            ReasonCode.INPUT_MALFORMED,
            "",
            id="no-period-amount",
        ),
        pytest.param({"chainId": "0xzz"}, ReasonCode.INPUT_MALFORMED, "[0].chainId", id="bad-hex"),
        pytest.param(
            {"chainId": "0x-1"}, ReasonCode.INPUT_MALFORMED, "[0].chainId", id="signed-hex"
        ),
        pytest.param(
            {"chainId": "0x" + "1" * 65}, ReasonCode.INPUT_MALFORMED, "[0].chainId", id="long-hex"
        ),
    ],
)
def test_what_cannot_be_enforced_is_refused_with_its_code(
    overrides: dict[str, Any], code: ReasonCode, path: str
) -> None:
    refused = refusal(periodic_request(**overrides))
    assert (refused.code, refused.path) == (code, path)


@pytest.mark.parametrize("amount", ["0x-1", "0x1_0", "0x 1", "-1", "1.5", 1.5, True, None])
def test_an_amount_that_is_not_a_uint256_is_malformed(amount: object) -> None:
    permission = {
        "type": "erc20-token-periodic",
        "data": {"tokenAddress": TOKEN_X, "periodAmount": amount, "periodDuration": 60},
    }
    assert refusal(periodic_request(permission=permission)).code is ReasonCode.INPUT_MALFORMED


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**300), 2**300) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
_KEYS = st.sampled_from(
    ["chainId", "address", "expiry", "signer", "permission", "permissions", "policies", "rules",
     "type", "data", "to", "tokenAddress", "periodAmount", "periodDuration", "startTime",
     "addresses", "count", "interval", "timestamp", "required", "isAdjustmentAllowed"]
)  # fmt: skip


@given(
    request=_JSON | st.lists(st.dictionaries(_KEYS, _JSON, max_size=8), max_size=3),
    mutation=st.dictionaries(_KEYS, _JSON, max_size=3),
)
def test_any_json_is_an_envelope_or_a_coded_refusal_never_a_crash(
    request: object, mutation: dict[str, Any]
) -> None:
    for candidate in (request, [{**periodic_request()[0], **mutation}]):
        try:
            result = imported(candidate)
        except PermissionRequestRefused as refused:
            assert refused.code in ReasonCode
        else:
            Envelope.from_json(result.envelope)


def test_a_token_asked_twice_is_refused() -> None:
    refused = refusal(periodic_request() + periodic_request())
    assert (refused.code, refused.path) == (ReasonCode.PERMISSION_UNENFORCEABLE, "[1].permission")


def test_entries_of_one_import_must_agree_on_chain_account_and_signer() -> None:
    other = periodic_request(signer={"type": "account", "data": {"address": STRANGER}})
    refused = refusal(periodic_request() + other)
    assert (refused.code, refused.path) == (ReasonCode.INPUT_MALFORMED, "[1].signer")


def test_a_request_that_is_not_an_object_is_malformed() -> None:
    malformed: list[object] = [[], [1], "wallet_grantPermissions", [{}] * 17]
    for request in malformed:
        assert refusal(request).code is ReasonCode.INPUT_MALFORMED


def test_the_request_document_is_not_modified() -> None:
    request = periodic_request()
    before = copy.deepcopy(request)
    imported(request)
    assert request == before


# --- streams ---------------------------------------------------------------------------------


def stream(**data: Any) -> dict[str, Any]:
    return {"type": "erc20-token-stream", "data": {"tokenAddress": TOKEN_X, **data}}


def test_a_stream_is_granted_as_a_periodic_allowance_that_never_runs_ahead_of_it() -> None:
    request = periodic_request(
        permission=stream(initialAmount="0x64", amountPerSecond="0xa", startTime=NOW)
    )
    result = imported(request)
    assert result.envelope["tokenLimits"] == [{"token": TOKEN_X, "limit": "100", "period": 10}]
    assert result.envelope["validAfter"] == NOW
    assert len(result.adjustments) == 1


def test_a_stream_period_stretches_so_the_total_stays_within_its_maximum() -> None:
    request = periodic_request(
        permission=stream(initialAmount=100, amountPerSecond=10, maxAmount=300, startTime=NOW)
    )
    limit = imported(request).envelope["tokenLimits"][0]
    # 1,800 s to expiry, 3 windows of 100 at most: one every 600 s.
    assert (limit["limit"], limit["period"]) == ("100", 600)


def test_a_stream_without_accrual_is_an_exact_total_allowance() -> None:
    request = periodic_request(
        permission=stream(initialAmount=100, amountPerSecond=0, maxAmount=80, startTime=NOW)
    )
    result = imported(request)
    assert result.envelope["tokenLimits"] == [{"token": TOKEN_X, "limit": "80", "period": 0}]
    assert result.adjustments == ()


@pytest.mark.parametrize(
    ("data", "path"),
    [
        pytest.param(
            {"amountPerSecond": 10, "startTime": NOW},
            "[0].permission.data.initialAmount",
            id="no-initial",
        ),
        pytest.param(
            {"initialAmount": 1, "amountPerSecond": 10},
            "[0].permission.data.startTime",
            id="no-start",
        ),
    ],
)
def test_a_stream_that_has_no_safe_periodic_form_is_refused(
    data: dict[str, Any], path: str
) -> None:
    refused = refusal(periodic_request(permission=stream(**data)))
    assert (refused.code, refused.path) == (ReasonCode.PERMISSION_UNENFORCEABLE, path)


def test_a_stream_that_forbids_adjustment_is_refused() -> None:
    permission = stream(initialAmount=100, amountPerSecond=10, startTime=NOW)
    permission["isAdjustmentAllowed"] = False
    refused = refusal(periodic_request(permission=permission))
    assert (refused.code, refused.path) == (ReasonCode.PERMISSION_UNENFORCEABLE, "[0].permission")


@given(
    initial=st.integers(0, 1000),
    per_second=st.integers(0, 50),
    maximum=st.none() | st.integers(0, 5000),
    duration=st.integers(1, 3000),
)
def test_the_periodic_form_of_a_stream_is_never_ahead_of_it(
    initial: int, per_second: int, maximum: int | None, duration: int
) -> None:
    limit, period, _exact = stream_as_periodic(initial, per_second, maximum)
    if limit == 0:
        return
    if maximum is not None:
        period = cap_windows(limit, period, maximum, 0, duration)
    for t in range(0, duration):
        windows = 1 if period == 0 else t // period + 1
        allowed = limit * windows if period else limit
        streamed = initial + per_second * t
        if maximum is not None:
            streamed = min(streamed, maximum)
        assert allowed <= streamed, (t, allowed, streamed)


# --- export ----------------------------------------------------------------------------------


def test_a_granted_envelope_is_written_back_in_the_erc_response_shape() -> None:
    request = periodic_request()
    request[0]["policies"].append({"type": "call-limit", "data": {"count": 3}})
    envelope = Envelope.from_json(imported(request).envelope)
    [response] = permission_response(envelope, account=ACCOUNT, context="0x01")
    assert set(response) == ERC_RESPONSE_KEYS
    assert response["permission"] == {
        "type": "erc20-token-periodic",
        "data": {
            "tokenAddress": TOKEN_X,
            "periodAmount": hex(10 * 10**6),
            "periodDuration": 86400,
            "startTime": NOW,
        },
    }
    assert response["policies"] == [
        {"type": "payee", "data": {"addresses": [MERCHANT]}},
        {"type": "call-limit", "data": {"count": 3}},
    ]
    assert (response["chainId"], response["expiry"]) == (hex(CHAIN_ID), EXPIRY)


def test_an_exported_response_imports_back_to_the_same_envelope() -> None:
    envelope = imported(periodic_request()).envelope
    responses = permission_response(Envelope.from_json(envelope), account=ACCOUNT, context="0x")
    again = [{k: v for k, v in r.items() if k != "context"} for r in responses]
    assert imported(again).envelope == envelope


def test_a_scope_without_an_erc7715_form_is_not_exported() -> None:
    swap = Envelope.from_json(
        {"chainId": CHAIN_ID, "capabilities": ["swap.execute"], "expiresAt": EXPIRY}
    )
    with pytest.raises(PermissionRequestRefused) as refused:
        permission_response(swap, account=ACCOUNT, context="0x")
    assert refused.value.code is ReasonCode.PERMISSION_TYPE_UNSUPPORTED
