"""Answers shared by every worker and machine through Redis (REDIS_URL), in front of which each
worker keeps its own copies in memory.

A cache that cannot be reached is a miss, never an error: the answer is computed as without
Redis, and a line is logged.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("events_app.cache")


class SharedAnswers:
    def __init__(self, url: str, prefix: str) -> None:
        self.redis: Redis = Redis.from_url(url)
        self.prefix = prefix

    async def get(self, key: str) -> tuple[bytes, float] | None:
        """The answer stored for key and the seconds it has left, or None."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(self.prefix + key)
                pipe.pttl(self.prefix + key)
                body, left_ms = await pipe.execute()
        except RedisError as exc:
            log.warning("shared cache unavailable: %s", type(exc).__name__)
            return None
        if body is None or left_ms is None or left_ms <= 0:
            return None
        return bytes(body), left_ms / 1000

    async def put(self, key: str, body: bytes, ttl: float) -> None:
        try:
            await self.redis.set(self.prefix + key, body, px=max(1, int(ttl * 1000)))
        except RedisError as exc:
            log.warning("shared cache unavailable: %s", type(exc).__name__)

    async def close(self) -> None:
        await self.redis.aclose()
