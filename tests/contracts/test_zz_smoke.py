import boa
from contracts_support import *  # noqa


def test_smoke(world, wallet, session):
    t = world.token
    g = wallet.grant(
        session,
        permissions=[
            permission(t, "transfer(address,uint256)", rules=[rule(0, "in", world.relayer)])
        ],
        token_limits=[token_limit(t, 10 * UNIT)],
    )
    assert wallet.contract.grant_digest(grant_struct(g)) == typed_data.grant_digest(
        wallet.chain_id, wallet.address, g
    )
    wallet.enable(g)
    print(wallet.state(session))
    call = Call(addr(t), 0, calldata("transfer(address,uint256)", world.relayer, 3 * UNIT))
    wallet.run(session, single(call))
    assert t.balanceOf(world.relayer) == 3 * UNIT
    print(wallet.state(session), wallet.contract.token_usage(session.address, addr(t)))
    with boa.reverts("TOKEN_LIMIT_EXCEEDED"):
        wallet.run(
            session,
            single(
                Call(addr(t), 0, calldata("transfer(address,uint256)", world.relayer, 8 * UNIT))
            ),
        )
