"""``sessionward`` run by the UserOperation crash tests: the same command line, with one step
of the UserOperation path (:data:`user_operation_fault_points.STEPS`) armed to end the process
as ``kill -9`` does when the service reaches it.

``SW_TEST_KILL_AT`` names the step. Only this test script reads it: the service itself has no
way to arm a fault from its configuration.
"""

from __future__ import annotations

import os
import sys

import user_operation_fault_points

from sessionward import cli
from sessionward.store import faults

if __name__ == "__main__":
    step = os.environ.get("SW_TEST_KILL_AT")
    if step:
        user_operation_fault_points.arm(step, faults.kill_process)
    sys.exit(cli.main(sys.argv[1:]))
