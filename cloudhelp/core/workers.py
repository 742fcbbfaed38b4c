"""CPU-bound pure-Python work (Excel workbooks, PDFs) in a worker process, at low priority.

In a thread, such work holds the GIL for most of its run (openpyxl builds a 60-day workbook in
~0.4 s, fpdf2 a notice in ~0.1 s): each time the event loop comes back from a socket call or
from waiting for events, it waits for the GIL, up to the switch interval (5 ms), so every call's
signaling slows while an export is made. A process of its own has its own GIL.

The pool's processes start on first use (``forkserver``: a small clean process forks them,
not the server with its threads and sockets) and run at the lowest priority (``yield_cpu``):
the loop that relays every call is served first. The function and its arguments must pickle
(a module-level function, plain data).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

PROCESSES = 1  # exports and PDFs are occasional; one at a time leaves a core to the loop
LOW_NICE = 19

_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def yield_cpu() -> None:
    """Give the calling thread (Linux: a thread is a task with a nice value of its own) the
    lowest priority, nice 19; threads it starts inherit it. Not SCHED_IDLE: that policy runs
    only on a CPU nothing else wants, so on a busy machine (PostgreSQL beside the server, or
    the test suite's other workers) sign-ins and exports waited tens of seconds."""
    with contextlib.suppress(AttributeError, OSError):  # no per-thread priority here
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOW_NICE)


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(
                max_workers=PROCESSES,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=yield_cpu,
            )
        return _pool


async def in_process(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``work(*args, **kwargs)`` in a worker process; its result, or the exception it raised.
    A worker that died (killed, out of memory) is replaced for the next call."""
    global _pool
    executor = _executor()
    try:
        # Submitted from a thread: the first submit starts the processes (~60 ms under load),
        # which would stall the loop.
        done = await asyncio.to_thread(executor.submit, functools.partial(work, *args, **kwargs))
        return await asyncio.wrap_future(done)
    except BrokenProcessPool:
        with _pool_lock:
            if _pool is executor:
                _pool = None
        executor.shutdown(wait=False, cancel_futures=True)
        raise


def shutdown() -> None:
    """Stop the worker processes (at server stop; a later call starts new ones)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
