# pragma version ~=0.4.3
"""
@title Test call target that accepts native value
@notice The demo tokens and router are not payable, so value limits need a target that is:
        `record` stores its arguments and keeps the value it was sent.
"""

calls: public(uint256)
last_a: public(uint256)
last_b: public(address)
last_c: public(bytes32)
received: public(uint256)


@external
@payable
def record(a: uint256, b: address, c: bytes32) -> bool:
    self.calls += 1
    self.last_a = a
    self.last_b = b
    self.last_c = c
    self.received += msg.value
    return True
