"""``sessionward`` run by the crash tests: the same command line, with one fault point armed to
end the process as ``kill -9`` would when the code reaches it.

``SW_TEST_KILL_AT`` names the step (one of :data:`sessionward.store.faults.STEPS`). Only this
test script reads it: the service itself has no way to arm a fault from its configuration.
"""

from __future__ import annotations

import os
import sys

from sessionward import cli
from sessionward.store import faults

if __name__ == "__main__":
    step = os.environ.get("SW_TEST_KILL_AT")
    if step:
        faults.install(step, faults.kill_process)
    sys.exit(cli.main(sys.argv[1:]))
