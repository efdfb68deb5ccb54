"""Named fault points: a test-only hook between the writes of a multi-step operation.

Code that writes in several steps calls :func:`point` with a stable step name between each
pair of writes (``"outcome.after_status"``, ``"relay_job.after_save.signed"``, …). In
production no action is installed and a call costs one dictionary lookup on an empty dict.

A test (in process, or in a child process it starts through a wrapper script) installs an
action for a step with :func:`install`: raise an exception (the operation is interrupted as
a dropped connection or a full disk would interrupt it), or end the process at once with
``os._exit`` or ``SIGKILL`` (nothing is flushed, nothing is rolled back politely: the database
must recover on its own). Nothing here is configurable from settings or the environment: only
code that imports this module can arm a fault.

:data:`STEPS` lists every step name the code calls, so tests can iterate over all of them and
a typo in a test is caught (:func:`install` refuses an unknown name).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Final

__all__ = ["STEPS", "FaultInjected", "clear", "install", "kill_process", "point"]

STEPS: Final = frozenset(
    {
        # Execute (store/execution.py): between the writes of its one database transaction.
        "execute.after_reserve",
        "execute.after_sign",
        "execute.after_mark_pending",
        "execute.after_audit",
        "execute.after_decision",
        # The relayer's write-ahead record of a job (store/relay_jobs.py), around each save:
        # ``signed`` is saved before the bytes are sent, ``submitted`` after the node took them.
        "relay_job.before_save.signed",
        "relay_job.after_save.signed",
        "relay_job.before_save.submitted",
        "relay_job.after_save.submitted",
        "relay_job.before_save.executed",
        "relay_job.after_save.executed",
        "relay_job.before_save.failed",
        "relay_job.after_save.failed",
        # A relayed call's outcome (store/execution.py): between the writes of its one
        # database transaction, and after its commit.
        "outcome.after_status",
        "outcome.after_reservation",
        "outcome.after_audit",
        "outcome.after_decision",
        "outcome.after_commit",
    }
)
"""Every step the code calls :func:`point` with."""

Action = Callable[[str], None]

_actions: dict[str, Action] = {}
_lock = threading.Lock()


class FaultInjected(RuntimeError):
    """Raised by the default action of :func:`install` (an interrupted operation)."""


def _raise(step: str) -> None:
    raise FaultInjected(f"fault injected at {step}")


def kill_process(_step: str) -> None:
    """End this process as ``kill -9`` would: no cleanup, no flush, no rollback message."""
    os.kill(os.getpid(), signal.SIGKILL)


def point(step: str) -> None:
    """The named step is reached: run its installed action, if any (else nothing)."""
    if _actions:
        action = _actions.get(step)
        if action is not None:
            action(step)


def install(step: str, action: Action = _raise) -> None:
    """Arm ``step`` with ``action`` (default: raise :class:`FaultInjected`)."""
    if step not in STEPS:
        raise ValueError(f"unknown fault step {step!r}")
    with _lock:
        _actions[step] = action


def clear(step: str | None = None) -> None:
    """Disarm ``step``, or every step."""
    with _lock:
        if step is None:
            _actions.clear()
        else:
            _actions.pop(step, None)
