"""CPU-bound work in a worker process (cloudhelp.core.workers): its own process, below the
event loop's priority, and replaced when it dies."""

from __future__ import annotations

import os
from concurrent.futures.process import BrokenProcessPool

import pytest

from cloudhelp.core import workers


async def test_work_runs_in_a_process_of_its_own_that_yields_the_cpu() -> None:
    pid = await workers.in_process(os.getpid)
    assert pid != os.getpid()
    assert await workers.in_process(os.getpriority, os.PRIO_PROCESS, 0) == workers.LOW_NICE
    assert os.getpriority(os.PRIO_PROCESS, 0) < workers.LOW_NICE  # the caller is left as it was
    with pytest.raises(ZeroDivisionError):  # the work's own error comes back as it is
        await workers.in_process(divmod, 1, 0)
    assert await workers.in_process(os.getpid) == pid  # the same process, kept
    workers.shutdown()


async def test_a_worker_that_dies_is_replaced_for_the_next_call() -> None:
    first = await workers.in_process(os.getpid)
    with pytest.raises(BrokenProcessPool):
        await workers.in_process(os._exit, 3)
    second = await workers.in_process(os.getpid)
    assert second not in (first, os.getpid())
    workers.shutdown()
