"""SessionWard: narrow, short-lived, revocable authority over smart wallets."""

__version__ = "0.1.0"
