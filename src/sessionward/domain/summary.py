"""Plain-language consent text of a granted scope, for the owner to read before signing.

Two parts that never mix (issue 14.6, consent phishing):

- the app's **label**: its name and URL exactly as the app registered them, quoted, marked as
  not verified, limited in length and characters (:func:`check_app_metadata` at registration,
  and sanitised again when shown);
- SessionWard's own **sentences**, built only from the scope (the envelope as compiled): they
  never contain the app's name or URL, so an app called "this session CANNOT move funds" cannot
  put words in SessionWard's mouth.

Each sentence states one kind of fact (:class:`Sentence` ``kind``) and says who enforces it: the
wallet contract and SessionWard, or SessionWard alone before it signs. A property test checks
every sentence against the enforced rules. Deterministic: the same scope and label always give
the same text. Example (the seed envelope)::

    App (its own name, not verified by SessionWard): "Acme Agent"
    This session lets the app call swap on 0x7a250d… on Ethereum (chain 1) until 2026-02-21
    19:53 UTC. ...
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final
from urllib.parse import urlsplit

from sessionward.reasons import ReasonCode

from .catalog import Catalog
from .envelope import Envelope, RuleOp
from .grant import CUSTOM_ACTION, GrantedPermission, Scope, is_approval_like
from .values import InvalidValue, format_usd, short_address

CHAIN_NAMES = {
    1: "Ethereum",
    10: "OP Mainnet",
    137: "Polygon",
    8453: "Base",
    42161: "Arbitrum One",
    11155111: "Sepolia",
    31337: "local devnet",
}

APPROVAL_CLASSES: Final = frozenset(
    {
        "erc20.approve",
        "erc20.increaseAllowance",
        "erc20.permit",
        "permit2.approve",
        "permit2.permit",
    }
)

APP_NAME_MAX: Final = 48
"""Characters of an app name (``RegisterCredential``); longer names are refused."""
APP_URL_MAX: Final = 200
"""Characters of an app URL; longer URLs are refused."""
_NAME_PUNCTUATION: Final = frozenset("-_.,&'+!:@#/")
_URL_FORBIDDEN: Final = frozenset('"<>\\^`{|} ')

# Sentence kinds (the property test knows each one).
ACTIONS: Final = "actions"
SWAP_OUTPUT: Final = "swap_output"
ONCHAIN_LIMITS: Final = "onchain_limits"
NO_NATIVE: Final = "no_native"
OFFCHAIN_LIMITS: Final = "offchain_limits"
NO_SELF_CALLS: Final = "no_self_calls"
APPROVALS: Final = "approvals"


def _name_char_ok(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in "LN" or char == " " or char in _NAME_PUNCTUATION


def check_app_metadata(app_name: str | None, app_url: str | None) -> None:
    """Refuse an app label that could pass for SessionWard's own words (``RegisterCredential``).

    Name: 1..48 characters, letters and digits of any script, single inner spaces and
    ``- _ . , & ' + ! : @ # /``; no quotes, brackets, parentheses, control or format characters
    (bidirectional overrides included). URL: at most 200 characters, ``https://`` or
    ``http://`` with a host, no spaces, quotes, angle brackets or control characters. Raises
    :class:`InvalidValue` with ``CREDENTIAL_METADATA_INVALID``.
    """
    code = ReasonCode.CREDENTIAL_METADATA_INVALID
    if app_name is not None:
        if not 0 < len(app_name) <= APP_NAME_MAX:
            raise InvalidValue("appName", f"1 to {APP_NAME_MAX} characters", code)
        bad = next((c for c in app_name if not _name_char_ok(c)), None)
        if bad is not None:
            raise InvalidValue(
                "appName",
                f"character U+{ord(bad):04X} is not allowed (letters, digits, spaces and "
                "- _ . , & ' + ! : @ # / only)",
                code,
            )
        if app_name != app_name.strip() or "  " in app_name:
            raise InvalidValue("appName", "no leading, trailing or repeated spaces", code)
    if app_url is not None:
        if not 0 < len(app_url) <= APP_URL_MAX:
            raise InvalidValue("appUrl", f"1 to {APP_URL_MAX} characters", code)
        if any(c in _URL_FORBIDDEN or not c.isprintable() or not c.isascii() for c in app_url):
            raise InvalidValue("appUrl", "spaces, quotes, brackets and non-ASCII refused", code)
        parts = urlsplit(app_url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise InvalidValue("appUrl", "expected an https:// (or http://) URL with a host", code)


def quoted_label(text: str, limit: int) -> str:
    """``text`` as a quoted, inert label: characters a name may not hold become ``?``, and it is
    cut at ``limit`` characters (for labels stored before the registration rules)."""
    safe = "".join(c if _name_char_ok(c) or c in ":/?=%~" else "?" for c in text)
    if len(safe) > limit:
        safe = safe[: limit - 1] + "…"
    return f'"{safe}"'


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence of SessionWard's own text; ``kind`` says which fact it states."""

    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class Consent:
    """The consent text: the app's untrusted label, then SessionWard's sentences."""

    app_label: str
    sentences: tuple[Sentence, ...]

    def render(self) -> str:
        return self.app_label + "\n" + " ".join(s.text for s in self.sentences)


def _period(seconds: int) -> str:
    named = {3600: "hour", 86400: "day", 604800: "week"}
    if seconds in named:
        return f"per {named[seconds]}"
    return f"per {seconds} s"


def _join(items: list[str], conjunction: str = "and") -> str:
    if len(items) <= 2:
        return f" {conjunction} ".join(items)
    return ", ".join(items[:-1]) + f", {conjunction} " + items[-1]


def format_units(amount: int, decimals: int | None) -> str:
    """``amount`` base units in whole units (exact, no exponent), or base units if unknown."""
    if decimals is None:
        return f"{amount} base units of"
    whole = Decimal(amount).scaleb(-decimals)
    text = format(whole, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def swap_outputs_bound(permission: GrantedPermission, account: str) -> bool:
    """Whether a permission carries the implicit ``eq account`` rule of a swap's output."""
    return any(
        r.implicit and r.op is RuleOp.EQ and r.values == (account,) for r in permission.rules
    )


def consent(
    scope: Scope, *, app_name: str, catalog: Catalog, app_url: str | None = None
) -> Consent:
    """The consent text of ``scope``; ``app_name``/``app_url`` only ever appear in the label.

    Its sentences, in this order: what the app may call (and where a swap's output goes), the
    limits the wallet contract enforces (and whether native coin can leave), the limits only
    SessionWard enforces, then what it can never do (call the wallet, approve unlimited)."""
    sentences = [
        *_action_sentences(scope, catalog),
        *_onchain_sentences(scope, catalog),
        *_offchain_sentences(scope.envelope),
        *_never_sentences(scope),
    ]
    label = "App (its own name, not verified by SessionWard): " + quoted_label(
        app_name, APP_NAME_MAX
    )
    if app_url:
        label += " at " + quoted_label(app_url, APP_URL_MAX)
    return Consent(label, tuple(sentences))


def _action_sentences(scope: Scope, catalog: Catalog) -> list[Sentence]:
    """What the app may call, on which targets, chain and until when; where swaps pay out."""
    permissions = scope.ordered_permissions()
    verbs: dict[str, list[str]] = {}
    for permission in permissions:
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
    until = datetime.fromtimestamp(scope.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    sentences = [
        Sentence(
            ACTIONS,
            f"This session lets the app call {_join(actions)} on {chain} (chain {scope.chain_id})"
            f" until {until}.",
        )
    ]
    if any(swap_outputs_bound(p, scope.account) for p in permissions):
        sentences.append(Sentence(SWAP_OUTPUT, "What a swap buys comes back to this wallet."))
    return sentences


def _onchain_sentences(scope: Scope, catalog: Catalog) -> list[Sentence]:
    """The limits the wallet contract enforces too; that native coin cannot leave, if so."""
    env = scope.envelope
    onchain: list[str] = []
    for token_limit in env.token_limits:
        known = catalog.contract(scope.chain_id, token_limit.token)
        name = known.symbol if known and known.symbol else short_address(token_limit.token)
        amount = format_units(token_limit.limit, known.decimals if known else None)
        per = _period(token_limit.period) if token_limit.period else "in total"
        onchain.append(f"at most {amount} {name} out {per}")
    value_limit = env.value_limit
    if value_limit is not None and value_limit.limit > 0:
        per = _period(value_limit.period) if value_limit.period else "in total"
        onchain.append(f"at most {format_units(value_limit.limit, 18)} native coin out {per}")
    if env.max_uses is not None:
        onchain.append(f"at most {env.max_uses} executions")
    if env.max_fee_wei is not None:
        # Charged in the validation of the user operations it sends itself (docs/contracts.md).
        onchain.append(f"at most {format_units(env.max_fee_wei, 18)} native coin in fees")
    sentences = []
    if onchain:
        sentences.append(
            Sentence(
                ONCHAIN_LIMITS,
                f"The wallet contract and SessionWard both enforce: {_join(onchain)}.",
            )
        )
    if value_limit is None or value_limit.limit == 0:
        but = ", only pay fees within that budget" if env.max_fee_wei is not None else ""
        sentences.append(Sentence(NO_NATIVE, f"It cannot send the native coin{but}."))
    return sentences


def _offchain_sentences(env: Envelope) -> list[Sentence]:
    """The limits only SessionWard enforces (at live prices, per interval, on fees)."""
    offchain: list[str] = []
    if env.max_value_usd is not None:
        offchain.append(f"more than {format_usd(env.max_value_usd)} USD in total at live prices")
    if env.rate_limit is not None:
        rate = env.rate_limit
        offchain.append(f"more than {rate.count} executions {_period(rate.interval)}")
    if env.max_fee_wei is not None:
        offchain.append(f"more than {env.max_fee_wei} wei of fees")
    if not offchain:
        return []
    return [Sentence(OFFCHAIN_LIMITS, f"SessionWard also refuses to sign {_join(offchain)}.")]


def _never_sentences(scope: Scope) -> list[Sentence]:
    """What no session can do: call the wallet itself, approve unlimited spending."""
    approves = any(
        p.action_class in APPROVAL_CLASSES or is_approval_like(p.signature)
        for p in scope.ordered_permissions()
    )
    return [
        Sentence(
            NO_SELF_CALLS,
            "It cannot call the wallet itself, so it cannot change owners or install modules.",
        ),
        Sentence(
            APPROVALS,
            "It cannot approve unlimited spending." if approves else "It cannot approve spending.",
        ),
    ]


def summarize(scope: Scope, *, app_name: str, catalog: Catalog, app_url: str | None = None) -> str:
    """The rendered consent text (:func:`consent`): the app's label line, then the sentences."""
    return consent(scope, app_name=app_name, catalog=catalog, app_url=app_url).render()
