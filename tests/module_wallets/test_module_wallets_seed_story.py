"""The seed story on an ERC-7579 account SessionWard did not write: a wallet team's existing
OpenZeppelin ``AccountERC7579`` installs SessionWard's module, registers through the service
(``accountKind: erc7579``), and the owner grants a backend a session that swaps within its caps,
is refused outside them, and is revoked, through the relayer and through the real alto bundler,
on anvil with the canonical EntryPoint v0.7.

Each refusal is asserted with its exact reason code and with nothing changed: no token moved,
no session state on chain, no row in the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from erc4337_support import Stage
from module_wallet_support import NETWORK, ModuleWorld, module_world

from networks.networks_support import USDX_UNIT, Backend
from sessionward.reasons import ReasonCode
from sessionward.service.errors import ServiceError
from sessionward.service.onchain import ModuleSessions
from sessionward.store.schema import user_operations

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def world(
    stage: Stage, anvil: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModuleWorld]:
    data_dir = tmp_path_factory.mktemp("module-wallets") / "service"
    with module_world(stage, anvil, data_dir) as world:
        yield world


def test_the_seed_story_runs_on_a_third_party_erc7579_account(
    world: ModuleWorld, backend: Backend
) -> None:
    session = world.granted(backend)
    wallet = session.wallet
    record = world.rt.store.sessions.get(session.session_id)
    assert record is not None and record.status == "active"

    # Swaps within the caps: one relayed (module as executor), one as a UserOperation (module
    # as validator, through alto).
    for usdx, submission in ((40, "relayer"), (60, "userop")):
        before = world.usdx(wallet)
        assert world.run(session, usdx, submission) == "executed"
        assert world.usdx(wallet) == before - usdx * USDX_UNIT

    # Over the envelope's USD cap: refused by policy before anything is signed.
    before, counts = world.usdx(wallet), world.db_counts()
    with pytest.raises(ServiceError) as refused:
        world.prepare(session, 450, network=NETWORK)
    assert refused.value.code is ReasonCode.USD_LIMIT_EXCEEDED
    assert world.usdx(wallet) == before
    assert world.db_counts()["relay_jobs"] == counts["relay_jobs"]

    # Revocation: the service removes the session through the module (its relayer is the
    # grant's revoker); the chain then refuses the key and the service agrees.
    world.revoke(session)
    assert world.status_on_chain(wallet, session.session_key) == 2
    record = world.rt.store.sessions.get(session.session_id)
    assert record is not None and record.status == "revoked"
    assert record.onchain_revoked_at is not None
    with pytest.raises(ServiceError) as after:
        world.prepare(session, 5, network=NETWORK)
    assert after.value.code is ReasonCode.SESSION_REVOKED


def test_two_calls_whose_nonce_keys_collide_both_execute(
    world: ModuleWorld, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module wallet's UserOperation nonce key has 32 bits of the transaction's own: two
    calls of one account may draw the same. The second then takes its next candidate key
    (the service records the keys an account's calls took), and both run."""
    session = world.granted(backend)
    real = ModuleSessions.user_operation_nonce

    def colliding(self: ModuleSessions, txn_id: str, *, attempt: int = 0) -> int:
        return real(self, "the same for every call" if attempt == 0 else txn_id, attempt=attempt)

    monkeypatch.setattr(ModuleSessions, "user_operation_nonce", colliding)
    before = world.usdx(session.wallet)
    assert world.run(session, 7, "userop") == "executed"
    assert world.run(session, 8, "userop") == "executed"
    assert world.usdx(session.wallet) == before - 15 * USDX_UNIT
    nonces = set()
    with world.rt.store.db.reading() as conn:
        for row in conn.execute(user_operations.select()):
            operation = json.loads(row.operation)
            if operation["sender"].lower() == session.wallet.account:
                nonces.add(int(operation["nonce"], 16))
    assert len(nonces) == 2
