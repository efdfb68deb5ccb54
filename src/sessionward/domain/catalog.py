"""The action catalog: named, tiered action classes, the forbidden set and known contracts.

The catalog is data (``catalog.toml`` next to this module, extensible by a user file); this module
only loads and indexes it. A catalog is immutable once loaded: a session is compiled against one
catalog and the signed grant records the result (see :mod:`sessionward.domain.grant`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .abi import FunctionSignature, parse_signature, validate_argument_path
from .values import InvalidValue, parse_address

TARGET = "$target"


class CatalogError(ValueError):
    """The catalog file is inconsistent (a configuration error, raised at load time)."""


class Tier(StrEnum):
    """Delegability tier (docs/design.md section 3)."""

    SAFE = "safe"
    GUARDED = "guarded"
    FORBIDDEN = "forbidden"


@dataclass(frozen=True, slots=True)
class Outflow:
    """What a function moves out of the account.

    ``token`` is :data:`TARGET` (the called contract is the token) or an argument path holding the
    token address; ``amount`` is an argument path; when ``owner`` is set the outflow counts only if
    that argument is the account itself (``transferFrom(from, ...)``, ``permit(owner, ...)``).
    """

    token: str
    amount: str
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class CatalogFunction:
    """One function of an action class, with what the policy must know about it."""

    action_class: str
    signature: FunctionSignature
    tier: Tier = Tier.GUARDED
    payable: bool = False
    recipients: tuple[str, ...] = ()
    """Argument paths that must be the account or an allowed destination."""
    account_recipients: tuple[str, ...] = ()
    """Argument paths that must be the account itself (a swap's output)."""
    outflow: Outflow | None = None
    forbid_max: str | None = None


@dataclass(frozen=True, slots=True)
class ActionClass:
    name: str
    tier: Tier
    target_kind: str
    verb: str
    functions: tuple[CatalogFunction, ...]


@dataclass(frozen=True, slots=True)
class ForbiddenFunction:
    signature: FunctionSignature
    why: str
    action_class: str


@dataclass(frozen=True, slots=True)
class KnownContract:
    chain_id: int
    address: str
    kinds: frozenset[str]
    name: str
    symbol: str | None = None
    decimals: int | None = None


@dataclass(frozen=True)
class Catalog:
    """An indexed, immutable catalog."""

    max_ttl: Mapping[Tier, int]
    actions: Mapping[str, ActionClass]
    forbidden: Mapping[bytes, ForbiddenFunction]
    contracts: Mapping[tuple[int, str], KnownContract]
    by_selector: Mapping[bytes, tuple[CatalogFunction, ...]] = field(default_factory=dict)
    multisend: Mapping[int, frozenset[str]] = field(default_factory=dict)
    """Safe MultiSend contracts per chain: requests to them are unwrapped into their calls."""

    def __post_init__(self) -> None:
        multisend: dict[int, set[str]] = {}
        for (chain_id, address), known in self.contracts.items():
            if "multisend" in known.kinds:
                multisend.setdefault(chain_id, set()).add(address)
        object.__setattr__(self, "multisend", {c: frozenset(a) for c, a in multisend.items()})

    def forbidden_classes(self) -> frozenset[str]:
        """Names of never-delegable action classes (asking for one is refused, not unknown)."""
        return frozenset(f.action_class for f in self.forbidden.values())

    def kinds_of(self, chain_id: int, address: str) -> frozenset[str]:
        known = self.contracts.get((chain_id, address))
        return known.kinds if known else frozenset()

    def contract(self, chain_id: int, address: str) -> KnownContract | None:
        return self.contracts.get((chain_id, address))

    def with_contracts(self, extra: Iterable[KnownContract]) -> Catalog:
        """This catalog plus more known contracts (a deployment registering its own)."""
        contracts = dict(self.contracts)
        for c in extra:
            contracts[(c.chain_id, c.address)] = c
        return replace(self, contracts=contracts)

    def multisend_addresses(self, chain_id: int) -> frozenset[str]:
        return frozenset(
            a for (c, a), k in self.contracts.items() if c == chain_id and "multisend" in k.kinds
        )


@cache
def default_catalog() -> Catalog:
    """The catalog shipped with SessionWard."""
    text = resources.files(__package__).joinpath("catalog.toml").read_text(encoding="utf-8")
    return catalog_from_documents([tomllib.loads(text)])


def load_catalog(*extra_files: Path) -> Catalog:
    """The shipped catalog extended by user files (later files win for same-named entries)."""
    base = resources.files(__package__).joinpath("catalog.toml").read_text(encoding="utf-8")
    docs = [tomllib.loads(base)]
    for path in extra_files:
        try:
            docs.append(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CatalogError(f"cannot read catalog {path}: {exc}") from None
    return catalog_from_documents(docs)


def catalog_from_documents(documents: Iterable[Mapping[str, Any]]) -> Catalog:
    """Build a catalog from parsed TOML documents, merged in order."""
    tiers: dict[Tier, int] = {}
    actions: dict[str, ActionClass] = {}
    forbidden: dict[bytes, ForbiddenFunction] = {}
    contracts: dict[tuple[int, str], KnownContract] = {}
    for doc in documents:
        for name, spec in doc.get("tiers", {}).items():
            tier = _tier(name)
            if tier is Tier.FORBIDDEN:
                raise CatalogError("the forbidden tier has no TTL: it is never delegable")
            ttl = spec.get("max_ttl")
            if not isinstance(ttl, int) or ttl <= 0:
                raise CatalogError(f"tiers.{name}.max_ttl must be a positive integer")
            tiers[tier] = ttl
        for name, spec in doc.get("actions", {}).items():
            actions[name] = _action(name, spec)
        for spec in doc.get("forbidden", []):
            sig = _signature(spec.get("signature"), "forbidden")
            forbidden[sig.selector] = ForbiddenFunction(
                sig, str(spec.get("why", "never delegable")), str(spec.get("class", "forbidden"))
            )
        for spec in doc.get("contracts", []):
            known = _contract(spec)
            contracts[(known.chain_id, known.address)] = known
    for tier in (Tier.SAFE, Tier.GUARDED):
        if tier not in tiers:
            raise CatalogError(f"tier {tier.value!r} needs a max_ttl")
    by_selector: dict[bytes, list[CatalogFunction]] = {}
    for action in actions.values():
        if action.tier is Tier.FORBIDDEN:
            raise CatalogError(f"action {action.name!r}: forbidden actions belong in [[forbidden]]")
        for fn in action.functions:
            if fn.signature.selector in forbidden:
                raise CatalogError(
                    f"{fn.signature.canonical} is both delegable ({action.name}) and forbidden"
                )
            by_selector.setdefault(fn.signature.selector, []).append(fn)
    return Catalog(
        max_ttl=tiers,
        actions=actions,
        forbidden=forbidden,
        contracts=contracts,
        by_selector={k: tuple(v) for k, v in by_selector.items()},
    )


def _tier(name: object) -> Tier:
    try:
        return Tier(str(name))
    except ValueError:
        raise CatalogError(f"unknown tier {name!r}") from None


def _signature(text: object, where: str) -> FunctionSignature:
    if not isinstance(text, str):
        raise CatalogError(f"{where}: signature must be a string")
    try:
        return parse_signature(text)
    except ValueError as exc:
        raise CatalogError(f"{where}: {exc}") from None


def _path(sig: FunctionSignature, path: str, where: str) -> str:
    try:
        validate_argument_path(sig, path)
    except ValueError as exc:
        raise CatalogError(f"{where}: {exc}") from None
    return path


def _action(name: str, spec: Mapping[str, Any]) -> ActionClass:
    where = f"actions.{name}"
    tier = _tier(spec.get("tier"))
    functions = []
    for i, fspec in enumerate(spec.get("functions", [])):
        fwhere = f"{where}.functions[{i}]"
        sig = _signature(fspec.get("signature"), fwhere)
        outflow = None
        if "outflow" in fspec:
            o = fspec["outflow"]
            token = o.get("token")
            if token != TARGET:
                token = _path(sig, str(token), fwhere)
            owner = o.get("owner")
            outflow = Outflow(
                token=token,
                amount=_path(sig, str(o.get("amount")), fwhere),
                owner=_path(sig, owner, fwhere) if owner is not None else None,
            )
        forbid_max = fspec.get("forbid_max")
        functions.append(
            CatalogFunction(
                action_class=name,
                signature=sig,
                tier=tier,
                payable=bool(fspec.get("payable", False)),
                recipients=tuple(_path(sig, p, fwhere) for p in fspec.get("recipients", [])),
                account_recipients=tuple(
                    _path(sig, p, fwhere) for p in fspec.get("account_recipients", [])
                ),
                outflow=outflow,
                forbid_max=_path(sig, forbid_max, fwhere) if forbid_max is not None else None,
            )
        )
    if not functions:
        raise CatalogError(f"{where}: an action class needs at least one function")
    return ActionClass(
        name=name,
        tier=tier,
        target_kind=str(spec.get("target_kind", "")),
        verb=str(spec.get("verb", name)),
        functions=tuple(functions),
    )


def _contract(spec: Mapping[str, Any]) -> KnownContract:
    try:
        address = parse_address(spec.get("address"), "contracts.address")
    except InvalidValue as exc:
        raise CatalogError(exc.message) from None
    chain_id = spec.get("chain_id")
    if not isinstance(chain_id, int) or chain_id <= 0:
        raise CatalogError(f"contract {address}: chain_id must be a positive integer")
    return KnownContract(
        chain_id=chain_id,
        address=address,
        kinds=frozenset(spec.get("kinds", [])),
        name=str(spec.get("name", address)),
        symbol=spec.get("symbol"),
        decimals=spec.get("decimals"),
    )
