"""Plain-language summary of a granted scope, for consent screens.

Deterministic: the same scope and app name always give the same text, so it can be shown,
stored and compared. Example::

    Lets Acme Agent call swap on 0x7a250d… on Ethereum (chain 1), at most 500 USD in total,
    until 2026-02-21 19:53 UTC. It cannot change owners, install modules, or approve spending.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .catalog import Catalog
from .grant import CUSTOM_ACTION, Scope
from .values import format_usd, short_address

CHAIN_NAMES = {
    1: "Ethereum",
    10: "OP Mainnet",
    137: "Polygon",
    8453: "Base",
    42161: "Arbitrum One",
    11155111: "Sepolia",
    31337: "local devnet",
}

_APPROVAL_CLASSES = frozenset(
    {
        "erc20.approve",
        "erc20.increaseAllowance",
        "erc20.permit",
        "permit2.approve",
        "permit2.permit",
    }
)


def _period(seconds: int) -> str:
    named = {3600: "hour", 86400: "day", 604800: "week"}
    if seconds in named:
        return f"per {named[seconds]}"
    return f"per {seconds} s"


def _join(items: list[str], conjunction: str = "and") -> str:
    if len(items) <= 2:
        return f" {conjunction} ".join(items)
    return ", ".join(items[:-1]) + f", {conjunction} " + items[-1]


def summarize(scope: Scope, *, app_name: str, catalog: Catalog) -> str:
    """One paragraph saying what the session lets ``app_name`` do, and what it cannot do."""
    env = scope.envelope
    verbs: dict[str, list[str]] = {}
    for permission in scope.ordered_permissions():
        action = catalog.actions.get(permission.action_class)
        if permission.action_class == CUSTOM_ACTION or action is None:
            verb = permission.signature.name
        else:
            verb = action.verb
        targets = verbs.setdefault(verb, [])
        shown = short_address(permission.target)
        if shown not in targets:
            targets.append(shown)
    actions = [f"{verb} on {_join(targets)}" for verb, targets in verbs.items()]
    chain = CHAIN_NAMES.get(scope.chain_id, "chain")
    chain_text = f"{chain} (chain {scope.chain_id})"

    limits: list[str] = []
    if env.max_value_usd is not None:
        limits.append(f"at most {format_usd(env.max_value_usd)} USD in total")
    if env.value_limit is not None and env.value_limit.limit > 0:
        per = f" {_period(env.value_limit.period)}" if env.value_limit.period else " in total"
        limits.append(f"at most {env.value_limit.limit} wei of native value{per}")
    for token_limit in env.token_limits:
        known = catalog.contract(scope.chain_id, token_limit.token)
        name = known.symbol if known and known.symbol else short_address(token_limit.token)
        per = f" {_period(token_limit.period)}" if token_limit.period else " in total"
        limits.append(f"at most {token_limit.limit} base units of {name}{per}")
    if env.max_uses is not None:
        limits.append(f"at most {env.max_uses} times")
    if env.rate_limit is not None:
        rate = env.rate_limit
        limits.append(f"at most {rate.count} times {_period(rate.interval)}")

    until = datetime.fromtimestamp(scope.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    limit_text = f", {_join(limits)}," if limits else ""
    cannot = ["change owners", "install modules"]
    classes = {p.action_class for p in scope.permissions.values()}
    cannot.append(
        "approve unlimited spending" if classes & _APPROVAL_CLASSES else "approve spending"
    )
    return (
        f"Lets {app_name} call {_join(actions)} on {chain_text}{limit_text} until {until}."
        f" It cannot {_join(cannot, 'or')}."
    )
