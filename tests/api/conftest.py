"""Fixtures of the API tests: one Waas (embedded defaults) and one in-process app per module;
every test makes its own wallets and credentials."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_support import Actor, Api, TestClient, World, new_world, ops_actors

from sessionward.api import SessionWardApi, create_app
from sessionward.service.config import Settings
from sessionward.service.waas import Waas


@pytest.fixture(scope="module")
def ops() -> list[Actor]:
    return [actor for actor, _ in _OPS]


_OPS = ops_actors(2)


@pytest.fixture(scope="module")
def waas(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Waas]:
    """The module's service. A module that drives one signer at full speed (and is not about
    rate limits) sets ``REQUEST_RATE_LIMITS = False`` to turn the per-signer limits off."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("waas"),
        ops_credentials=tuple(credential for _, credential in _OPS),
        run_relayer=False,
        rate_limit_enabled=getattr(request.module, "REQUEST_RATE_LIMITS", True),
    )
    service = Waas.from_settings(settings)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def app(waas: Waas) -> SessionWardApi:
    return create_app(waas)


@pytest.fixture(scope="module")
def client(app: SessionWardApi) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def api(client: TestClient) -> Api:
    return Api(client)


@pytest.fixture
def world(api: Api, waas: Waas) -> World:
    """A fresh owner, wallet and backend with an active session."""
    return new_world(api, waas)
