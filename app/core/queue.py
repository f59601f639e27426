"""The Redis connection shared by the API (to enqueue arq jobs) and the worker."""

from __future__ import annotations

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import ConnectionPool

QUEUE_NAME = "chiso:queue"


def redis_settings(redis_url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(redis_url)
    settings.conn_timeout = 2
    settings.conn_retries = 3
    return settings


def create_queue(redis_url: str) -> ArqRedis:
    """An arq client that connects lazily, so the API starts (and serves reads) without Redis."""
    pool = ConnectionPool.from_url(
        redis_url, socket_connect_timeout=1.0, socket_timeout=2.0, health_check_interval=15
    )
    return ArqRedis(pool, default_queue_name=QUEUE_NAME)
