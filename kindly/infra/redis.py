"""The Redis client every process shares: the job queues, the event stream, the counters."""

from __future__ import annotations

from kindly.errors import ServiceUnavailable
from kindly.infra.config import Settings


def redis_connection(settings: Settings):
    """A Redis client, checked once, or ServiceUnavailable in one line."""
    from redis import Redis  # imported here: processes without Redis never load it
    from redis.exceptions import RedisError

    assert settings.redis_url
    client = Redis.from_url(settings.redis_url, socket_connect_timeout=5, health_check_interval=30)
    try:
        client.ping()
    except RedisError as exc:
        raise ServiceUnavailable(
            f"Redis unreachable at {_host(settings.redis_url)}: {exc}"
        ) from None
    return client


def _host(url: str) -> str:
    """The URL without its password: host, port and database."""
    return url.rsplit("@", 1)[-1]
