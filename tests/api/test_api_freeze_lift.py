"""The two-person rule for lifting a global freeze is bound to one freeze (issue 14.3): an
approval counts only for the freeze it was given for (its id, after its start), so a new freeze
needs two new approvals. The attack that used to lift both: ops-2 approves lifting freeze A,
ops-1 starts freeze B, ops-3 approves once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_support import (
    Actor,
    Api,
    World,
    new_world,
    ops_actors,
    refused,
    transfer_call,
)

from sessionward.service.config import Settings
from sessionward.service.waas import Waas

_OPS = ops_actors(3)


@pytest.fixture(scope="module")
def ops() -> list[Actor]:
    return [actor for actor, _ in _OPS]


@pytest.fixture(scope="module")
def waas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Waas]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("freeze"),
        ops_credentials=tuple(credential for _, credential in _OPS),
        run_relayer=False,
    )
    service = Waas.from_settings(settings)
    yield service
    service.stop()


def _freeze(api: Api, by: Actor, reason: str) -> str:
    answer = api.ok("EmergencyRevoke", {"scope": "global", "reason": reason}, by)
    return str(answer["freezeId"])


def _active(waas: Waas) -> set[str]:
    return {f.id for f in waas.runtime.store.freezes.active() if f.scope == "global"}


def _quote_status(api: Api, waas: Waas, world: World) -> tuple[int, str | None]:
    answer = api.call(
        "PrepareEthereumContractCall",
        transfer_call(waas, world.owner, world.session_id),
        world.backend,
    )
    return answer.status_code, answer.json().get("code")


def test_an_approval_for_one_freeze_never_lifts_a_later_one(
    api: Api, waas: Waas, ops: list[Actor]
) -> None:
    world = new_world(api, waas)
    ops1, ops2, ops3 = ops
    freeze_a = _freeze(api, ops1, "incident A")
    refused(api.call("LiftFreeze", {"scope": "global"}, ops2), 409, "FREEZE_LIFT_NEEDS_SECOND_OPS")
    freeze_b = _freeze(api, ops1, "incident B")

    lifted = api.ok("LiftFreeze", {"scope": "global"}, ops3)

    # A had two approvals (ops-2 then ops-3); B has one (ops-3): B stays.
    assert lifted == {"lifted": 1, "approvals": sorted([ops2.credential_id, ops3.credential_id])}
    assert _active(waas) == {freeze_b}
    assert freeze_a not in _active(waas)
    assert _quote_status(api, waas, world) == (403, "GLOBAL_FREEZE")
    # ops-3 again changes nothing: the same credential twice is one approval.
    refused(api.call("LiftFreeze", {"scope": "global"}, ops3), 409, "FREEZE_LIFT_NEEDS_SECOND_OPS")
    assert _active(waas) == {freeze_b}

    # B's own second approval lifts it.
    assert api.ok("LiftFreeze", {"scope": "global"}, ops2)["lifted"] == 1
    assert _active(waas) == set()
    assert _quote_status(api, waas, world)[0] == 200


def test_an_approval_can_name_the_one_freeze_it_is_for(
    api: Api, waas: Waas, ops: list[Actor]
) -> None:
    ops1, ops2, ops3 = ops
    first = _freeze(api, ops1, "first")
    second = _freeze(api, ops1, "second")
    for approver in (ops2, ops3):
        answer = api.call("LiftFreeze", {"scope": "global", "target": second}, approver)
    assert answer.status_code == 200, answer.text
    assert _active(waas) == {first}
    refused(
        api.call("LiftFreeze", {"scope": "global", "target": second}, ops2),
        400,
        "INPUT_MALFORMED",
    )
    refused(
        api.call("LiftFreeze", {"scope": "global", "target": first}, ops2),
        409,
        "FREEZE_LIFT_NEEDS_SECOND_OPS",
    )
    assert api.ok("LiftFreeze", {"scope": "global", "target": first}, ops3)["lifted"] == 1
    assert _active(waas) == set()
