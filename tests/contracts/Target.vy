# pragma version ~=0.4.3
"""
@title Test call target: records what it was called with
"""

last_caller: public(address)
last_value: public(uint256)
last_a: public(uint256)
last_b: public(address)
last_c: public(bytes32)
last_data: public(Bytes[256])
calls: public(uint256)


@external
@payable
def record(a: uint256, b: address, c: bytes32) -> bool:
    self.last_caller = msg.sender
    self.last_value = msg.value
    self.last_a = a
    self.last_b = b
    self.last_c = c
    self.calls += 1
    return True


@external
@payable
def record_bytes(data: Bytes[256], a: uint256):
    self.last_caller = msg.sender
    self.last_value = msg.value
    self.last_data = data
    self.last_a = a
    self.calls += 1


@external
def boom():
    raise "BOOM"


@external
@payable
def __default__():
    self.last_caller = msg.sender
    self.last_value = msg.value
    self.calls += 1
