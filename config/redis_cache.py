"""Django's Redis cache backend, holding one ``redis.Redis`` client per connection pool.

Django's backend builds a new ``redis.Redis`` for every cache call, and redis-py builds its
~170-entry response-callback table in every ``Redis.__init__`` (redis/redis-py#3624): profiled
on the webhook receiver, that was a fifth of the request's CPU, more than the Redis command
itself. A client is only a handle on the pool (each command checks a connection out of it), so
one client per pool behaves the same. Django keeps one cache backend per thread, so a client is
never shared between threads either.
"""

from typing import Any

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            client = self._clients[index] = self._client(connection_pool=self._pools[index])
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
