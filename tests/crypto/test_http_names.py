"""The protocol's HTTP names have one home that the API, its OpenAPI document and the SDK share."""

from __future__ import annotations

from sessionward.api import openapi
from sessionward.api.methods import METHODS
from sessionward.crypto import http_names, request_signature
from sessionward.sdk import transport


def test_the_sdk_and_the_request_signature_use_the_shared_names() -> None:
    assert request_signature.SIGNATURE_HEADER == http_names.SIGNATURE_HEADER
    assert transport.METHOD_PATH == http_names.METHOD_PREFIX == "/v1/Waas/"


def test_the_openapi_document_states_the_shared_names() -> None:
    document = openapi.openapi_document()
    assert {f"{http_names.METHOD_PREFIX}{name}" for name in METHODS} <= set(document["paths"])
    parameters = {
        parameter["name"]
        for item in document["paths"].values()
        for operation in item.values()
        for parameter in operation.get("parameters", [])
    }
    assert http_names.IDEMPOTENCY_HEADER in parameters
    assert http_names.SIGNATURE_HEADER in str(document["components"])
    assert http_names.REQUEST_ID_HEADER in str(document["paths"])
