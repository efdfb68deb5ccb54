"""The TypeScript client's generated files (clients/typescript/src/generated: the API types
from the OpenAPI document, the protocol's constants and EIP-712 grant types) are exactly what
clients/typescript/scripts/generate.py renders from the code now: they cannot drift."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "typescript"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "ts_generate", PACKAGE / "scripts" / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_typescript_matches_the_openapi_document_and_protocol() -> None:
    for name, text in _generator().rendered().items():
        stored = (PACKAGE / "src" / "generated" / name).read_text()
        assert stored == text, (
            f"src/generated/{name} is stale: run .venv/bin/python "
            "clients/typescript/scripts/generate.py"
        )


def test_every_api_method_has_a_typed_request_and_answer() -> None:
    from sessionward.api.methods import METHODS

    api = (PACKAGE / "src" / "generated" / "api.ts").read_text()
    for name in METHODS:
        assert f"  {name}: {{ request: " in api, name
    assert "export type ReasonCode = " in api
    assert "export interface GrantDocument" in api
