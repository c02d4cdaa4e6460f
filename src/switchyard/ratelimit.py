"""Rate limits per key: requests and tokens per minute, overall and per model.

Fixed one-minute windows. A request is admitted only if every limit that applies to it
has room: requests under their cap (and then counted) and tokens used this minute under
theirs (tokens are counted when a generation settles, so one long request can overshoot a
token limit once; the next is refused). A refusal is a 429 with ``Retry-After`` and the
``X-RateLimit-Limit / -Remaining / -Reset`` headers (reset in epoch milliseconds, as
OpenRouter sends it), naming the limit that was hit.

With Redis configured the counters are shared by every replica, so a limit holds
globally; without it, or while Redis is unavailable, each process counts for itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from switchyard.errors import RateLimited
from switchyard.settings import RateLimitConfig
from switchyard.shared.redis import REDIS_ERRORS, SharedRedis

WINDOW_MS = 60_000

# KEYS: counters; ARGV: window_ms, then per counter: limit, kind (r = requests, t = tokens).
# Returns {0, index, count, pttl} for the first full counter, else {1}: admitted, and every
# request counter has been incremented.
ADMIT = """
local window = tonumber(ARGV[1])
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i])
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used >= limit then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then ttl = window end
    return {0, i, used, ttl}
  end
end
for i = 1, #KEYS do
  if ARGV[2 * i + 1] == 'r' then
    redis.call('INCR', KEYS[i])
    if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], window) end
  end
end
return {1}
"""


@dataclass(frozen=True, slots=True)
class _Counter:
    name: str  # what the 429 message calls it
    key: str  # window-independent identity
    limit: int
    kind: str  # "r" or "t"


class RateLimiter:
    def __init__(self, config: RateLimitConfig, shared: SharedRedis | None = None) -> None:
        self._config = config
        self._shared = shared
        self._admit = shared.client.register_script(ADMIT) if shared else None
        self._local: dict[str, tuple[int, int]] = {}  # counter -> (window, count)
        self._tasks: set[asyncio.Task[None]] = set()
        self.enabled = bool(config.requests_per_minute or config.tokens_per_minute or config.models)

    def _counters(self, key_hash: str, models: Iterable[str]) -> list[_Counter]:
        config = self._config
        scopes: list[tuple[str, str, int | None, int | None]] = [
            ("", key_hash, config.requests_per_minute, config.tokens_per_minute)
        ]
        for model in dict.fromkeys(models):
            limit = config.models.get(model)
            if limit is not None:
                scope = (f" to {model}", f"{key_hash}:{model}")
                scopes.append((*scope, limit.requests_per_minute, limit.tokens_per_minute))
        found: list[_Counter] = []
        for suffix, identity, requests, tokens in scopes:
            if requests:
                found.append(
                    _Counter(f"requests per minute{suffix}", f"r:{identity}", requests, "r")
                )
            if tokens:
                found.append(_Counter(f"tokens per minute{suffix}", f"t:{identity}", tokens, "t"))
        return found

    @staticmethod
    def _window(now_ms: int) -> int:
        return now_ms // WINDOW_MS

    def _redis_key(self, counter: str, window: int) -> str:
        assert self._shared is not None
        return self._shared.key("rl", counter, str(window))

    async def admit(self, key_hash: str, models: Iterable[str]) -> None:
        """Count one request against the key's limits, or raise 429."""
        if not self.enabled:
            return
        counters = self._counters(key_hash, models)
        if not counters:
            return
        now_ms = int(time.time() * 1000)
        window = self._window(now_ms)
        if self._shared is not None and self._shared.usable():
            try:
                assert self._admit is not None
                args: list[Any] = [WINDOW_MS]
                for counter in counters:
                    args += [counter.limit, counter.kind]
                result = await self._admit(
                    keys=[self._redis_key(c.key, window) for c in counters], args=args
                )
                self._shared.succeeded()
            except REDIS_ERRORS as exc:
                self._shared.failed(exc)
            else:
                if int(result[0]) == 1:
                    return
                hit = counters[int(result[1]) - 1]
                raise _refusal(hit, int(result[2]), now_ms + int(result[3]), now_ms)
        self._admit_locally(counters, window, now_ms)

    def _admit_locally(self, counters: list[_Counter], window: int, now_ms: int) -> None:
        for counter in counters:
            used = self._used_locally(counter.key, window)
            if used >= counter.limit:
                raise _refusal(counter, used, (window + 1) * WINDOW_MS, now_ms)
        for counter in counters:
            if counter.kind == "r":
                self._local[counter.key] = (window, self._used_locally(counter.key, window) + 1)

    def _used_locally(self, counter: str, window: int) -> int:
        found = self._local.get(counter)
        return found[1] if found is not None and found[0] == window else 0

    def count_tokens(self, key_hash: str, models: Iterable[str], tokens: int) -> None:
        """Tokens of a settled generation, in the window where it ended."""
        if not self.enabled or tokens <= 0:
            return
        counters = [c for c in self._counters(key_hash, models) if c.kind == "t"]
        if not counters:
            return
        window = self._window(int(time.time() * 1000))
        for counter in counters:
            self._local[counter.key] = (window, self._used_locally(counter.key, window) + tokens)
        if self._shared is not None and self._shared.usable():
            keys = [self._redis_key(c.key, window) for c in counters]
            task = asyncio.get_running_loop().create_task(self._count_shared(keys, tokens))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _count_shared(self, keys: list[str], tokens: int) -> None:
        assert self._shared is not None
        try:
            async with self._shared.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.incrby(key, tokens)
                    pipe.pexpire(key, WINDOW_MS, nx=True)
                await pipe.execute()
            self._shared.succeeded()
        except REDIS_ERRORS as exc:
            self._shared.failed(exc)


def _refusal(counter: _Counter, used: int, reset_ms: int, now_ms: int) -> RateLimited:
    return RateLimited(
        f"Rate limit exceeded: {counter.limit} {counter.name} for this key",
        retry_after=max(0.0, (reset_ms - now_ms) / 1000),
        metadata={"limit": counter.name},
        headers={
            "X-RateLimit-Limit": str(counter.limit),
            "X-RateLimit-Remaining": str(max(0, counter.limit - used)),
            "X-RateLimit-Reset": str(reset_ms),
        },
    )
