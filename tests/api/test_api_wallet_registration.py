"""Proof of control for every wallet registration (issue 14.4): ``RegisterWallet`` needs the
account owner's signature over a registration challenge bound to this service, the chain, the
account and the registering key, used once. The attack that used to work: anyone registers an
account whose owner is an ERC-1271 contract and gets its owner credential.

Each refusal is checked to leave nothing behind (no wallet, no credential); the real owner can
register afterwards."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from api_support import Actor, Api, refused

from sessionward.chain.contracts import compile_vyper, deploy, transact
from sessionward.crypto.registration import registration_digest
from sessionward.crypto.secp256k1 import sign_digest
from sessionward.service.waas import Waas

ERC1271_WALLET = Path(__file__).parents[1] / "chain" / "contracts" / "Erc1271Wallet.vy"


def _account_owned_by(waas: Waas, owner: str) -> str:
    """A deployed SessionAccount whose on-chain owner is ``owner``."""
    rt = waas.runtime
    salt = secrets.token_bytes(32)
    factory = rt.deployment.factory
    account = rt.calls.decode_address(rt.chain.call(factory, rt.calls.get_address(owner, salt)))
    transact(rt.chain, rt.deployer, to=factory, data=rt.calls.create_account(owner, salt))
    return str(account)


def _contract_owner(waas: Waas, signer: Actor) -> str:
    """An ERC-1271 owner contract that accepts ``signer``'s signatures (mode 0)."""
    contract = deploy(
        waas.runtime.chain,
        waas.runtime.deployer,
        compile_vyper(ERC1271_WALLET),
        signer.public_key,
        0,
    )
    return str(contract.address).lower()


def _nothing_for(waas: Waas, account: str, key: Actor) -> None:
    store = waas.runtime.store
    assert store.wallets.find(waas.runtime.chain_id, account) is None
    owners = store.credentials.with_role("owner")
    assert all(c.public_key.lower() != key.public_key.lower() for c in owners)


def _challenge(api: Api, key: Actor, account: str, **extra: Any) -> dict[str, Any]:
    body = {"alg": key.signer.alg, "publicKey": key.public_key, "account": account, **extra}
    return dict(api.ok("GetRegistrationChallenge", body, key))


def _register(api: Api, key: Actor, account: str, proof: dict[str, Any], **extra: Any) -> Any:
    body = {
        "alg": key.signer.alg,
        "publicKey": key.public_key,
        "account": account,
        "registration": proof,
        **extra,
    }
    return api.call("RegisterWallet", body, key)


def _proof(challenge: dict[str, Any], secret: bytes) -> dict[str, Any]:
    digest = bytes.fromhex(challenge["digest"][2:])
    return {
        "nonce": challenge["nonce"],
        "deadline": challenge["deadline"],
        "signature": "0x" + sign_digest(secret, digest).hex(),
    }


def test_an_erc1271_account_is_not_registered_without_its_owners_signature(
    api: Api, waas: Waas
) -> None:
    real, attacker = Actor.secp256k1(), Actor.secp256k1()
    owner_contract = _contract_owner(waas, real)
    account = _account_owned_by(waas, owner_contract)
    kind = {"owner": owner_contract, "ownerKind": "erc1271"}

    # The attacker signs the challenge itself: the owner contract does not accept it.
    challenge = _challenge(api, attacker, account, **kind)
    assert attacker.secret is not None
    answer = _register(api, attacker, account, _proof(challenge, attacker.secret), **kind)
    refused(answer, 403, "REGISTRATION_PROOF_INVALID")
    _nothing_for(waas, account, attacker)

    # The attacker replays a proof the real owner made for the real owner's key: it is bound to
    # that key, so it proves nothing for the attacker's.
    genuine = _challenge(api, real, account, **kind)
    assert real.secret is not None
    stolen = _proof(genuine, real.secret)
    refused(_register(api, attacker, account, stolen, **kind), 403, "REGISTRATION_PROOF_INVALID")
    _nothing_for(waas, account, attacker)

    # The real owner registers afterwards, with the very proof the attacker tried to use.
    answer = _register(api, real, account, stolen, **kind)
    assert answer.status_code == 200, answer.text
    wallet = answer.json()
    assert (wallet["account"], wallet["ownerKind"]) == (account, "erc1271")

    # A second registration of the account has its own code (not INPUT_MALFORMED).
    again = _proof(_challenge(api, real, account, **kind), real.secret)
    refused(_register(api, real, account, again, **kind), 409, "WALLET_ALREADY_REGISTERED")


def test_an_eoa_owner_registers_with_its_own_signature_once(api: Api, waas: Waas) -> None:
    owner = Actor.secp256k1()
    account = _account_owned_by(waas, owner.public_key)
    assert owner.secret is not None
    proof = _proof(_challenge(api, owner, account), owner.secret)
    forged = dict(proof, signature="0x" + sign_digest(secrets.token_bytes(32), b"\x01" * 32).hex())
    refused(_register(api, owner, account, forged), 403, "REGISTRATION_PROOF_INVALID")
    _nothing_for(waas, account, owner)
    answer = _register(api, owner, account, proof)
    assert answer.status_code == 200, answer.text


def test_a_proof_is_bound_to_this_service_and_its_deadline(api: Api, waas: Waas) -> None:
    owner = Actor.secp256k1()
    account = _account_owned_by(waas, owner.public_key)
    assert owner.secret is not None
    now = int(time.time())
    nonce = 7

    def signed(service: str, deadline: int) -> dict[str, Any]:
        digest = registration_digest(
            service=service,
            chain_id=waas.runtime.chain_id,
            account=account,
            owner=owner.public_key,
            public_key=owner.public_key,
            nonce=nonce,
            deadline=deadline,
        )
        assert owner.secret is not None
        return {
            "nonce": str(nonce),
            "deadline": deadline,
            "signature": "0x" + sign_digest(owner.secret, digest).hex(),
        }

    other_service = signed("another-deployment", now + 60)
    refused(_register(api, owner, account, other_service), 403, "REGISTRATION_PROOF_INVALID")
    expired = signed(waas.runtime.settings.service_id, now - 1)
    refused(_register(api, owner, account, expired), 400, "REGISTRATION_PROOF_EXPIRED")
    too_far = signed(waas.runtime.settings.service_id, now + 10 * 86_400)
    refused(_register(api, owner, account, too_far), 400, "REGISTRATION_PROOF_EXPIRED")
    _nothing_for(waas, account, owner)
    good = signed(waas.runtime.settings.service_id, now + 60)
    assert _register(api, owner, account, good).status_code == 200


def test_a_proof_is_single_use(api: Api, waas: Waas) -> None:
    owner = Actor.secp256k1()
    account = _account_owned_by(waas, owner.public_key)
    assert owner.secret is not None
    proof = _proof(_challenge(api, owner, account), owner.secret)
    # Spend the nonce as a verified proof would, then present it: refused as a replay.
    assert waas.runtime.store.replay.remember(
        f"registration:{account.lower()}", int(proof["nonce"]), proof["deadline"] * 1000
    )
    refused(_register(api, owner, account, proof), 409, "NONCE_REPLAYED")
    _nothing_for(waas, account, owner)


def _salted_challenge(api: Api, key: Actor, salt: bytes, owner: str) -> dict[str, Any]:
    body = {
        "alg": key.signer.alg,
        "publicKey": key.public_key,
        "salt": "0x" + salt.hex(),
        "owner": owner,
        "ownerKind": "erc1271",
    }
    return dict(api.ok("GetRegistrationChallenge", body, key))


def _create(api: Api, key: Actor, salt: bytes, owner: str, proof: dict[str, Any] | None) -> Any:
    body: dict[str, Any] = {
        "alg": key.signer.alg,
        "publicKey": key.public_key,
        "salt": "0x" + salt.hex(),
        "owner": owner,
        "ownerKind": "erc1271",
    }
    if proof is not None:
        body["registration"] = proof
    return api.call("CreateWallet", body, key)


def test_creating_a_wallet_for_a_contract_owner_needs_that_owners_proof(
    api: Api, waas: Waas
) -> None:
    real, attacker = Actor.secp256k1(), Actor.secp256k1()
    owner_contract = _contract_owner(waas, real)
    salt = secrets.token_bytes(32)
    assert attacker.secret is not None and real.secret is not None

    refused(_create(api, attacker, salt, owner_contract, None), 403, "REGISTRATION_PROOF_INVALID")
    forged = _proof(_salted_challenge(api, attacker, salt, owner_contract), attacker.secret)
    refused(_create(api, attacker, salt, owner_contract, forged), 403, "REGISTRATION_PROOF_INVALID")
    challenge = _salted_challenge(api, real, salt, owner_contract)
    account = challenge["account"]
    _nothing_for(waas, account, attacker)  # no wallet, hence no deployment job queued either

    answer = _create(api, real, salt, owner_contract, _proof(challenge, real.secret))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["account"], answer.json()["ownerKind"]) == (account, "erc1271")
