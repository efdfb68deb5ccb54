# pragma version ~=0.4.3
"""
@title Probe: a tiny contract the chain tests deploy, call, revert and delegate to
@notice `store` keeps a number and logs who stored it; 13 is refused with the reason
        "UNLUCKY" so tests can read a revert reason; `boom` reverts without one.
"""

event Stored:
    who: indexed(address)
    amount: uint256

value: public(uint256)
deposits: public(uint256)


@deploy
def __init__(initial: uint256):
    self.value = initial


@external
@payable
def store(amount: uint256):
    assert amount != 13, "UNLUCKY"
    self.value = amount
    self.deposits += msg.value
    log Stored(who=msg.sender, amount=amount)


@external
def boom():
    raise


@external
@view
def whoami() -> address:
    return self
