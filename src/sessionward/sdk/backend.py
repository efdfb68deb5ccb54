"""The remote backend's client: register a credential, prepare and execute calls within
granted sessions, read its sessions, retire its credential.

Every answer is the API's JSON object as a plain ``dict`` (keys as in the OpenAPI document:
a transaction is ``{txnId, status, sessionId, walletId, to, value, data, intent, verdict,
feeWei, expiresAt, txHash, failure}``; a session ``{sessionId, walletId, credentialId,
account, chainId, sessionKey, status, summary, envelope, ...}``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any, Final, Literal

from .base import SignedClient, page_body
from .transport import amount, hex_bytes, json_args

FINAL_STATUSES: Final = frozenset({"executed", "failed", "denied"})


class BackendClient(SignedClient):
    """``BackendClient(base_url, signer, credential_id=None, *, http=None)``."""

    def register(self, app_name: str, app_url: str | None, expires_at: int) -> dict[str, Any]:
        """RegisterCredential, signed by the key itself; remembers the new ``credentialId``."""
        body: dict[str, Any] = {"appName": app_name, "expiresAt": expires_at}
        if app_url is not None:
            body["appUrl"] = app_url
        answer = self._self_signed("RegisterCredential", body)
        self.credential_id = answer["credentialId"]
        return answer

    def prepare_transaction(
        self,
        wallet_id: str,
        session_id: str,
        to: str,
        value: int | str,
        data: bytes | str,
        chain_id: int | None = None,
        *,
        network: str | int | None = None,
    ) -> dict[str, Any]:
        """PrepareEthereumTransaction: the quote (``status: "quoted"``), or a
        :class:`SessionWardApiError` ``PolicyDenied`` with the reasons. ``network`` (name or
        chain id), when given, must be the wallet's (else 403 ``CHAIN_MISMATCH``)."""
        body: dict[str, Any] = {
            "walletId": wallet_id,
            "sessionId": session_id,
            "to": to,
            "value": amount(value),
            "data": hex_bytes(data),
        }
        if chain_id is not None:
            body["chainId"] = chain_id
        if network is not None:
            body["network"] = network
        return self._call("PrepareEthereumTransaction", body)

    def prepare_contract_call(
        self,
        wallet_id: str,
        session_id: str,
        contract: str,
        method: str,
        args: Sequence[Any],
        value: int | str = 0,
        chain_id: int | None = None,
        *,
        network: str | int | None = None,
    ) -> dict[str, Any]:
        """PrepareEthereumContractCall: ``method`` is a signature such as
        ``"transfer(address,uint256)"``; integer arguments may be Python ints."""
        body: dict[str, Any] = {
            "walletId": wallet_id,
            "sessionId": session_id,
            "contract": contract,
            "method": method,
            "args": json_args(list(args)),
            "value": amount(value),
        }
        if chain_id is not None:
            body["chainId"] = chain_id
        if network is not None:
            body["network"] = network
        return self._call("PrepareEthereumContractCall", body)

    def execute(
        self,
        txn_id: str,
        idempotency_key: str | None = None,
        *,
        submission: Literal["relayer", "userop"] = "relayer",
    ) -> dict[str, Any]:
        """Execute a quote. Always sent with an ``Idempotency-Key`` (a fresh one unless given),
        so that a retry after a network failure can never execute twice. ``submission``:
        through the service's relayer, or as an ERC-4337 UserOperation through the network's
        bundler."""
        key = idempotency_key if idempotency_key is not None else uuid.uuid4().hex
        body: dict[str, Any] = {"txnId": txn_id}
        if submission != "relayer":
            body["submission"] = submission
        return self._call("Execute", body, idempotency_key=key)

    def transaction_status(self, txn_id: str) -> dict[str, Any]:
        return self._read("TransactionStatus", {"txnId": txn_id})

    def wait_for_transaction(
        self, txn_id: str, timeout: float = 30.0, poll: float = 0.1
    ) -> dict[str, Any]:
        """Poll TransactionStatus until executed, failed or denied; ``TimeoutError`` after
        ``timeout`` seconds. Polls back off up to 1 s."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.transaction_status(txn_id)
            if status["status"] in FINAL_STATUSES:
                return status
            if time.monotonic() >= deadline:
                raise TimeoutError(f"transaction {txn_id} still {status['status']}")
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
            poll = min(poll * 1.5, 1.0)

    def get_session(self, session_id: str) -> dict[str, Any]:
        return self._read("GetSession", {"sessionId": session_id})

    def list_sessions(self, cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
        """One page ``{items, nextCursor}`` of this credential's sessions."""
        return self._read("ListSessions", page_body(cursor, limit))

    def get_session_usage(
        self, session_id: str, *, network: str | int | None = None
    ) -> dict[str, Any]:
        """``{sessionId, limits: [{limit, bucket, spent, max, window}]}``."""
        body: dict[str, Any] = {"sessionId": session_id}
        if network is not None:
            body["network"] = network
        return self._read("GetSessionUsage", body)

    def revoke_credential(self, reason: str | None = None) -> dict[str, Any]:
        """Retire this credential and every session bound to it."""
        if self.credential_id is None:
            raise ValueError("no credential id yet: register first")
        body: dict[str, Any] = {"credentialId": self.credential_id}
        if reason is not None:
            body["reason"] = reason
        return self._call("RevokeCredential", body)
