"""The throttles of guesses shared by every node on one Redis (``core.throttle.Throttle``).

Each key is a sorted set ``{prefix}:throttle:{name}:{key}`` of failures scored by Redis's
clock in milliseconds (``TIME``: one clock for every node), at most ``keep`` members, expiring
``window`` after its last failure. A check, a count, or a check-and-count is one Lua script.

While Redis cannot be reached (or refuses the script), each node counts in its own memory (a
:class:`~cloudhelp.core.throttle.FailureThrottle`): nothing is refused because Redis is away,
and the limits hold per node (N nodes allow N times the attempts) until Redis answers again.
Failures counted that way keep counting on their node until they leave the window.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from cloudhelp.core.throttle import FailureThrottle, Limits

log = logging.getLogger("cloudhelp.throttle")

# Redis cannot be reached (refused, reset, timed out) or refuses the command (out of memory, a
# read-only replica): count locally.
UNREACHABLE = (RedisError, OSError)
RETRY_SECONDS = 1.0  # after a failure, Redis is asked again no sooner than this
COMMAND_TIMEOUT_SECONDS = 0.5  # a sign-in waits at most this long for a Redis that hangs

# KEYS: the keys. ARGV: mode (wait, add, take), window in ms, keep, a member unique to this
# call, then each key's limit. Returns {wait in ms, then per key 1 when this failure reached
# its limit}. Failures older than the window are removed first.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mode, window, keep, member = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local wait, before, result = 0, {}, {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  local limit = tonumber(ARGV[4 + i])
  before[i] = count
  if count >= limit then
    local nth = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(nth[2]) + window - now)
  end
end
result[1] = wait
if mode == 'wait' or (mode == 'take' and wait > 0) then return result end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, member)
  redis.call('ZREMRANGEBYRANK', key, 0, -(keep + 1))
  redis.call('PEXPIRE', key, window)
  local limit = tonumber(ARGV[4 + i])
  result[i + 1] = (before[i] < limit and before[i] + 1 >= limit) and 1 or 0
end
return result
"""


def shared_redis(url: str, node_id: str) -> Redis:
    """The client for what nodes share besides the broker (throttles, the readiness probe):
    short timeouts, no retries of its own (callers fall back), named ``{node_id}:shared``."""
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=COMMAND_TIMEOUT_SECONDS,
        socket_connect_timeout=COMMAND_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
        client_name=f"{node_id}:shared",
    )


class RedisThrottle:
    """A ``Throttle`` whose counts every node shares (see the module's docstring)."""

    def __init__(
        self, redis: Redis, name: str, keep: int, window: float, prefix: str = "cloudhelp"
    ) -> None:
        self.redis = redis
        self.keep = keep
        self.window = window
        self.prefix = f"{prefix}:throttle:{name}:"
        self.local = FailureThrottle(keep, window)  # while Redis is away
        self._script = redis.register_script(_SCRIPT)
        self._members = itertools.count()
        self._token = os.urandom(4).hex()
        self._retry_at = 0.0  # monotonic; before it, Redis is not asked

    def key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    async def wait(self, limits: Limits) -> float:
        shared = await self._run("wait", limits)
        local = await self.local.wait(limits)
        return local if shared is None else max(shared[0], local)

    async def add(self, limits: Limits) -> list[bool]:
        shared = await self._run("add", limits)
        if shared is None:
            return await self.local.add(limits)
        return shared[1]

    async def take(self, limits: Limits) -> float:
        local = await self.local.wait(limits)
        if local > 0:
            return local
        shared = await self._run("take", limits)
        if shared is None:
            return await self.local.take(limits)
        return shared[0]

    async def clear(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        await self.local.clear(keys)
        if keys and time.monotonic() >= self._retry_at:
            try:
                await self.redis.delete(*(self.key(k) for k in keys))
            except UNREACHABLE as exc:
                self._unreachable(exc)

    async def _run(self, mode: str, limits: Limits) -> tuple[float, list[bool]] | None:
        """The script's answer (wait in seconds, limits reached), or None: count locally."""
        if not limits or time.monotonic() < self._retry_at:
            return None
        member = f"{self._token}:{next(self._members)}"
        args: list[Any] = [mode, max(1, round(self.window * 1000)), self.keep, member]
        try:
            reply = await self._script(
                keys=[self.key(k) for k, _ in limits], args=[*args, *(n for _, n in limits)]
            )
        except UNREACHABLE as exc:
            self._unreachable(exc)
            return None
        if self._retry_at:
            log.info("Redis reachable again: throttles shared again")
            self._retry_at = 0.0
        return int(reply[0]) / 1000, [bool(int(r)) for r in reply[1:]]

    def _unreachable(self, exc: BaseException) -> None:
        if not self._retry_at:
            log.warning("Redis unreachable (%s: %s): throttles count on this node only",
                        type(exc).__name__, exc)  # fmt: skip
        self._retry_at = time.monotonic() + RETRY_SECONDS


class RedisThrottles:
    """``core.throttle.Throttles`` on one Redis client."""

    def __init__(self, redis: Redis, prefix: str = "cloudhelp") -> None:
        self.redis = redis
        self.prefix = prefix

    def __call__(self, name: str, keep: int, window: float) -> RedisThrottle:
        return RedisThrottle(self.redis, name, keep, window, self.prefix)
