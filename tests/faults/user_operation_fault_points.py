"""The step boundaries of a session call sent as an ERC-4337 UserOperation, where the crash
tests end the service (``kill -9`` in a ``sessionward serve`` process, or an exception that
abandons an in-process service).

The UserOperation path has no named fault points of its own in the service
(:mod:`sessionward.store.faults` names the steps of Execute's unit of work and of an outcome);
its boundaries are network round trips and single writes, so here a fault is armed by wrapping
the one method that crosses each boundary (a test double around the real method: the real
bundler, EntryPoint and database still do the work):

- ``userop.after_plan``: the plan is recorded (:meth:`UserOperationRecords.add` returned),
  before the unit of work that signs it;
- ``execute.after_sign``: the vault signed the userOpHash inside the unit, which never commits
  (:mod:`sessionward.store.faults`'s own point);
- ``userop.before_send``: the unit committed (the signature is stored), nothing was handed to
  the bundler yet (entering :meth:`BundlerClient.send`);
- ``userop.after_send``: ``eth_sendUserOperation`` answered (the bundler has the operation),
  before the submission is recorded;
- ``userop.after_receipt``: the operation is mined and its receipt read
  (:meth:`UserOperationPath.outcome` returned one), before the outcome is recorded;
- ``outcome.after_audit``: inside the outcome's unit of work, which never commits
  (:mod:`sessionward.store.faults`'s own point).

Only test code imports this module: the service has no way to arm a fault from its settings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

from sessionward.chain.bundler import BundlerClient
from sessionward.service.user_operations import UserOperationPath
from sessionward.store import faults
from sessionward.store.user_operations import UserOperationRecords

__all__ = ["STEPS", "arm", "disarm"]

STEPS: Final = (
    "userop.after_plan",
    "execute.after_sign",
    "userop.before_send",
    "userop.after_send",
    "userop.after_receipt",
    "outcome.after_audit",
)
"""The crash points, in the order a call passes them."""

Action = Callable[[str], None]

_ORIGINALS: Final[dict[tuple[type, str], Any]] = {}
_lock = threading.Lock()


def _countdown(step: str, action: Action, hit: int) -> Callable[[], None]:
    """Run ``action`` the ``hit``-th time the step is reached (1: the first), once."""
    left = [hit]

    def reached() -> None:
        with _lock:
            left[0] -= 1
            fire = left[0] == 0
        if fire:
            action(step)

    return reached


def _wrap(owner: type, name: str, make: Callable[[Any], Any]) -> None:
    key = (owner, name)
    original = _ORIGINALS.setdefault(key, getattr(owner, name))
    setattr(owner, name, make(original))


def arm(step: str, action: Action = faults._raise, *, hit: int = 1) -> None:
    """Run ``action`` (default: raise :class:`sessionward.store.faults.FaultInjected`) the
    ``hit``-th time the service reaches ``step``, one of :data:`STEPS`."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}")
    reached = _countdown(step, action, hit)
    if step in faults.STEPS:
        faults.install(step, lambda _step: reached())
    elif step == "userop.after_plan":

        def after_plan(original: Any) -> Any:
            def add(self: UserOperationRecords, **kw: Any) -> None:
                original(self, **kw)
                reached()

            return add

        _wrap(UserOperationRecords, "add", after_plan)
    elif step in ("userop.before_send", "userop.after_send"):
        before = step == "userop.before_send"

        def around_send(original: Any) -> Any:
            def send(self: BundlerClient, op: Any) -> str:
                if before:
                    reached()
                answer: str = original(self, op)
                if not before:
                    reached()
                return answer

            return send

        _wrap(BundlerClient, "send", around_send)
    else:  # userop.after_receipt

        def after_receipt(original: Any) -> Any:
            def outcome(self: UserOperationPath, user_op_hash: str) -> Any:
                receipt = original(self, user_op_hash)
                if receipt is not None:
                    reached()
                return receipt

            return outcome

        _wrap(UserOperationPath, "outcome", after_receipt)


def disarm() -> None:
    """Every step back to the service's own code."""
    faults.clear()
    for (owner, name), original in _ORIGINALS.items():
        setattr(owner, name, original)
