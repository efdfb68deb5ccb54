# pragma version ~=0.4.3
"""
@title Foreign delegation target: writes its own sequential storage slots 0..15
@notice Models another wallet implementation an EIP-7702 EOA delegates to in between.
"""

words: public(uint256[16])


@external
def scribble():
    for i: uint256 in range(16):
        self.words[i] = max_value(uint256) - i
