"""Calldata for SessionWard's contracts, as the service submits them through the relayer.

The ABIs come from the Vyper sources (compiled once, cached on disk), so the encodings cannot
drift from the contracts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sessionward.chain.demo import demo_contract
from sessionward.crypto.typed_data import SCHEMA

# Gas limits given to the relayer for the service's own calls (no estimation: an estimate
# against the current state would fail for a call that depends on an earlier queued one, such
# as enabling a session on an account whose deployment is not mined yet).
DEPLOY_GAS: Final = 600_000
ENABLE_GAS: Final = 3_000_000
REVOKE_GAS: Final = 150_000
EXECUTE_BASE_GAS: Final = 300_000
EXECUTE_GAS_PER_CALL: Final = 250_000


class AccountCalls:
    """Encoders for the account factory and the SessionAccount's sessions module."""

    def __init__(self) -> None:
        self._account = demo_contract("SessionAccount")
        self._factory = demo_contract("SessionAccountFactory")

    def create_account(self, owner: str, salt: bytes) -> bytes:
        return self._factory.encode("create_account", owner, salt)

    def get_address(self, owner: str, salt: bytes) -> bytes:
        return self._factory.encode("get_address", owner, salt)

    def decode_address(self, data: bytes) -> str:
        (address,) = self._factory.decode_output("get_address", data)
        assert isinstance(address, str)
        return address

    def owner(self) -> bytes:
        return self._account.encode("owner")

    def decode_owner(self, data: bytes) -> str:
        (owner,) = self._account.decode_output("owner", data)
        assert isinstance(owner, str)
        return owner

    def epoch(self) -> bytes:
        return self._account.encode("epoch")

    def decode_uint(self, function: str, data: bytes) -> int:
        (value,) = self._account.decode_output(function, data)
        assert isinstance(value, int)
        return value

    def enable_session(self, grant: Mapping[str, Any], owner_signature: bytes) -> bytes:
        """``enable_session(SessionGrant, bytes)`` with the grant message the owner signed."""
        return self._account.encode(
            "enable_session", as_abi_tuple("SessionGrant", grant), owner_signature
        )

    def execute_with_session(
        self,
        session_key: str,
        mode: bytes,
        execution: bytes,
        nonce: int,
        deadline: int,
        signature: bytes,
    ) -> bytes:
        """The relayed session call; ``nonce`` is the session-call nonce the key signed."""
        return self._account.encode(
            "execute_with_session", session_key, mode, execution, nonce, deadline, signature
        )

    def revoke_session(self, session_key: str) -> bytes:
        return self._account.encode("revoke_session", session_key)


def as_abi_tuple(struct: str, message: Mapping[str, Any]) -> tuple[object, ...]:
    """An EIP-712 struct message as the ABI tuple of the same struct (fields in declared order,
    nested structs and arrays of structs converted too): the contract takes the grant exactly
    as the owner signed it."""
    names = set(SCHEMA.struct_names)
    values: list[object] = []
    for field_type, name in SCHEMA.fields(struct):
        value = message[name]
        base = field_type.removesuffix("[]")
        if base in names:
            value = (
                [as_abi_tuple(base, v) for v in value]
                if field_type.endswith("[]")
                else as_abi_tuple(base, value)
            )
        elif isinstance(value, list):
            value = tuple(value)
        values.append(tuple(value) if isinstance(value, list) else value)
    return tuple(values)
