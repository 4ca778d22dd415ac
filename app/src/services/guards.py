"""Redis-backed guards that must hold across every replica of the service.

* `ThreadLock`: one run at a time per thread. A second run on a busy thread is refused at once
  (HTTP 409) rather than queued: queued runs would hold HTTP connections and workers for an
  unbounded time, and a client can retry after `Retry-After` seconds. The lock expires on its own
  (run timeout + margin) so a crashed replica cannot block a thread forever, and it is released
  only by its owner (redis-py's token-checked Lua release).
* `RateLimiter`: at most N runs per client per 60 s window, the window starting at the client's
  first run (no burst at a wall-clock minute boundary). A run refused for a reason that is not
  the client's doing (409 busy thread, 503 dependency down) is given back.

Every key starts with `REDIS_KEY_PREFIX` (default empty): a pull-request environment shares its
base's Redis through an ACL user limited to `<prefix>*`, so its keys must all carry the prefix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from src.config.logging import get_logger

log = get_logger(__name__)

LOCK_MARGIN_SECONDS = 30.0
RATE_WINDOW_SECONDS = 60
#: Decrement a live window's counter (DECR keeps the key's expiry); never creates a window.
_REFUND_SCRIPT = """
if tonumber(redis.call('get', KEYS[1]) or '0') > 0 then return redis.call('decr', KEYS[1]) end
return 0
"""


class ThreadBusyError(Exception):
    """Another run holds this thread's lock."""


def thread_lock_key(thread_id: str, prefix: str = "") -> str:
    """Redis key of a thread's run lock (documented so operators can inspect it)."""
    return f"{prefix}agent:thread-lock:{thread_id}"


class ThreadLock:
    """Per-thread mutual exclusion held in Redis for the duration of a run."""

    def __init__(self, redis: Redis, run_timeout_seconds: float, key_prefix: str = "") -> None:
        self._redis = redis
        self._ttl = run_timeout_seconds + LOCK_MARGIN_SECONDS
        self._prefix = key_prefix

    @asynccontextmanager
    async def hold(self, thread_id: str) -> AsyncIterator[None]:
        """Hold the thread's lock or raise ThreadBusyError without waiting."""
        key = thread_lock_key(thread_id, self._prefix)
        lock = self._redis.lock(key, timeout=self._ttl, blocking=False)
        if not await lock.acquire():
            raise ThreadBusyError(thread_id)
        try:
            yield
        finally:
            try:
                await lock.release()
            except RedisError as exc:
                # Expired (run outlived its TTL), or Redis went away mid-run: the run's result is
                # already persisted, so report it to the client and let the TTL clean up.
                log.warning(
                    "thread_lock_release_failed", thread_id=thread_id, error=type(exc).__name__
                )


def rate_limit_key(client_id: str, prefix: str = "") -> str:
    """Redis key of a client's run counter."""
    return f"{prefix}agent:ratelimit:{client_id}"


@dataclass(frozen=True)
class RateDecision:
    """Whether a request may proceed, and when the client may retry if not."""

    allowed: bool
    remaining: int
    retry_after_seconds: int


class RateLimiter:
    """Fixed window per client, counted atomically in Redis (shared by all replicas)."""

    def __init__(self, redis: Redis, limit_per_minute: int, key_prefix: str = "") -> None:
        self._redis = redis
        self._limit = limit_per_minute
        self._prefix = key_prefix
        self._refund = redis.register_script(_REFUND_SCRIPT)

    @property
    def enabled(self) -> bool:
        """A limit of 0 disables rate limiting."""
        return self._limit > 0

    async def hit(self, client_id: str) -> RateDecision:
        """Count one request for `client_id` and decide."""
        if not self.enabled:
            return RateDecision(True, 0, 0)
        key = rate_limit_key(client_id, self._prefix)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=RATE_WINDOW_SECONDS, nx=True)
            pipe.incr(key)
            pipe.ttl(key)
            _, count, ttl = await pipe.execute()
        if int(count) > self._limit:
            return RateDecision(False, 0, max(int(ttl), 1))
        return RateDecision(True, self._limit - int(count), 0)

    async def refund(self, client_id: str) -> None:
        """Give back one counted run; best effort (Redis may be the reason the run failed)."""
        if not self.enabled:
            return
        try:
            await self._refund(keys=[rate_limit_key(client_id, self._prefix)])
        except RedisError as exc:
            log.warning("rate_limit_refund_failed", error=type(exc).__name__)
