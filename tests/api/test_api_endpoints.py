"""Routing, the error shape, health, metrics and the OpenAPI document."""

from __future__ import annotations

import logging

import pytest
from api_support import Api, TestClient, World, quote, refused, transfer_call

from sessionward.api import SessionWardApi, create_app
from sessionward.api.methods import METHODS
from sessionward.service.waas import Waas


def test_an_unknown_method_is_404_method_unknown(api: Api) -> None:
    doc = refused(api.post_raw("DeleteEverything", b"{}"), 404, "METHOD_UNKNOWN")
    assert doc["error"] == "NotFound"


def test_an_unknown_path_is_404_method_unknown(client: TestClient) -> None:
    response = client.get("/admin")
    refused(response, 404, "METHOD_UNKNOWN")


def test_a_method_called_with_get_is_405(client: TestClient) -> None:
    response = client.get("/v1/Waas/Execute")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"] == "MethodNotAllowed"


def test_every_error_has_the_one_shape(api: Api) -> None:
    response = api.post_raw("ListSessions", b"{}")
    doc = response.json()
    assert set(doc) == {"error", "code", "reason", "msg", "status", "requestId"}
    assert doc["requestId"] == response.headers["x-request-id"]


def test_a_policy_denial_carries_the_decision_and_every_violation(
    api: Api, world: World, waas: Waas
) -> None:
    body = {**transfer_call(waas, world.owner, world.session_id), "args": ["0x" + "55" * 20, "1"]}
    doc = refused(
        api.call("PrepareEthereumContractCall", body, world.backend), 403, "ARG_RULE_VIOLATED"
    )
    assert doc["error"] == "PolicyDenied"
    assert doc["decisionId"].startswith("dec_")
    assert doc["reasons"] == ["ARG_RULE_VIOLATED"]
    assert doc["reason"] == doc["violations"][0]["rule"]
    assert {"code", "rule", "detail"} <= set(doc["violations"][0])


def test_success_answers_carry_a_request_id(api: Api, world: World) -> None:
    response = api.call("ListSessions", {}, world.backend)
    assert response.headers["x-request-id"].startswith("req_")


def test_healthz_answers_while_the_process_lives(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_503_when_the_database_does_not_answer_while_healthz_stays_alive(
    waas: Waas, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_options: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(waas.runtime.store.db, "writing", broken)
    with TestClient(create_app(waas)) as client:
        ready = client.get("/readyz")
        alive = client.get("/healthz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == {"ok": False, "reason": "OSError: disk gone"}
    assert alive.status_code == 200


def test_metrics_count_requests_decisions_latency_and_revocations(
    api: Api, world: World, waas: Waas, client: TestClient
) -> None:
    txn_id = quote(api, waas, world)
    api.ok("Execute", {"txnId": txn_id}, world.backend)
    denied = {**transfer_call(waas, world.owner, world.session_id), "args": ["0x" + "55" * 20, "1"]}
    api.call("PrepareEthereumContractCall", denied, world.backend)
    api.ok(
        "RevokeAccess",
        {"walletId": world.wallet_id, "credentialId": world.backend.credential_id},
        world.owner,
    )
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'sessionward_requests_total{method="Execute",status="200"}' in text
    assert 'sessionward_decisions_total{reason="none",verdict="allow"}' in text
    assert 'sessionward_decisions_total{reason="ARG_RULE_VIOLATED",verdict="deny"}' in text
    assert 'sessionward_decision_reasons_total{reason="ARG_RULE_VIOLATED"}' in text
    assert "sessionward_execute_latency_seconds_count" in text
    assert 'sessionward_revocations_total{path="owner"}' in text
    assert 'sessionward_revoked_sessions_total{path="owner"}' in text


def test_metrics_labels_are_bounded(api: Api, client: TestClient) -> None:
    api.post_raw("Nonsense-" + "x" * 40, b"{}")
    assert "Nonsense" not in client.get("/metrics").text


def test_openapi_documents_every_method_and_the_error_shape(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for name in METHODS:
        operation = doc["paths"][f"/v1/Waas/{name}"]["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert body["$ref"].removeprefix("#/components/schemas/") in doc["components"]["schemas"]
        assert "200" in operation["responses"]
        error = operation["responses"]["400"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/Error"}
    assert (
        doc["components"]["securitySchemes"]["requestSignature"]["name"] == "Oms-Wallet-Signature"
    )
    execute = doc["components"]["schemas"]["ExecuteRequest"]
    assert execute["additionalProperties"] is False


def test_an_unexpected_exception_is_a_500_of_the_same_shape_without_details(
    waas: Waas, world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret-ish internal detail")

    app: SessionWardApi = create_app(waas)
    monkeypatch.setattr(waas.sessions, "list_for_backend", explode)
    with TestClient(app) as client, caplog.at_level(logging.ERROR, "sessionward.api"):
        response = Api(client).call("ListSessions", {}, world.backend)
    assert response.status_code == 500
    doc = response.json()
    assert doc["error"] == "InternalError" and doc["code"] == "INTERNAL_ERROR"
    assert "secret-ish" not in response.text and "Traceback" not in response.text
    assert doc["requestId"] in caplog.text
