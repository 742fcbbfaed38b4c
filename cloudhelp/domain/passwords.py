"""Password hashing (argon2id via argon2-cffi), always in a worker thread.

One argon2id hash or verification costs ~0.15 s of CPU and 64 MiB: on the event loop it would
stall every call's signaling, so the coroutines here run it in a small pool of threads (argon2
releases the GIL while it works). Call them before opening a write transaction, never inside
one: on SQLite ``Database.write()`` holds a lock every other writer waits for.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from cloudhelp.core import workers

# Two at a time: enough for the 2-core machines this runs on; more would only queue in the CPU.
HASH_THREADS = 2
# Each hash runs its lanes on threads of its own (parallelism 4): on two cores a few sign-ins at
# once would take the CPU from the event loop that relays every call. The pool's threads (and
# the lane threads they start, which inherit it) run at the lowest priority
# (``workers.yield_cpu``, nice 19), so the loop is served first. (Loop lag p99 under 20
# sign-ins a second with 200 calls relaying, benchmarks/loop_probe.py: 33 ms at nice 10, 26 ms
# at nice 19; SCHED_IDLE gave 21 ms but starved sign-ins on a busy machine.)
T = TypeVar("T")


# The test command (scripts/test.sh) sets CLOUDHELP_INSECURE_TEST_PASSWORD_HASHES=1: new hashes
# (and the dummy hash) then use argon2-cffi's CHEAPEST profile — still argon2id, made and checked
# by the same code, but at no cost: the suite made ~490 hashes and checks, ~80 s of CPU at
# ~0.17 s each. A hash keeps its parameters, so a database made this way is weak for good: never
# set it in service (``serve`` says so on stderr when it is set).
INSECURE_TEST_HASHES = os.environ.get("CLOUDHELP_INSECURE_TEST_PASSWORD_HASHES") == "1"
_hasher = (
    PasswordHasher.from_parameters(profiles.CHEAPEST) if INSECURE_TEST_HASHES else PasswordHasher()
)
_pool = ThreadPoolExecutor(
    max_workers=HASH_THREADS, thread_name_prefix="argon2", initializer=workers.yield_cpu
)


def _hash(password: str) -> str:
    return _hasher.hash(password)


def _verify(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        # Unknown user or no password set: check against the dummy hash all the same, so the
        # answer takes as long as a real check and timing does not tell which it was.
        _verify(dummy_hash(), password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password nobody knows, computed on first use (not at import, which
    would cost every ``cloudhelp`` command ~0.15 s)."""
    return _hasher.hash(secrets.token_urlsafe(16))


async def _in_pool(work: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(_pool, work)


async def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` to store, computed in a worker thread."""
    return await _in_pool(functools.partial(_hash, password))


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches the stored hash, checked in a worker thread; False with no
    hash (after checking against the dummy hash, so it takes as long) or a broken one."""
    return await _in_pool(functools.partial(_verify, password_hash, password))
