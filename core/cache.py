"""A Redis cache that a Redis outage does not turn into server errors.

While Redis cannot be reached, reads miss, writes are dropped and `add` says it stored
the value: whatever counts in the cache (DRF's throttles, allauth's rate limits and its
locks) lets the request through. A warning is logged at most once a minute per process.
After an error, Redis is left alone for `pause_after_error` seconds (an OPTIONS key,
default 5), so that a Redis that times out costs one timeout per pause, not one per call.
"""

import logging
import threading
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
WARN_EVERY = 60.0

# Per server list, shared by the threads of a process (each thread has its own backend).
_outages: dict[str, "_Outage"] = {}
_outages_lock = threading.Lock()


class _Outage:
    def __init__(self):
        self.until = 0.0
        self.warned_at = float("-inf")

    def started(self, pause: float, exc: Exception) -> None:
        now = time.monotonic()
        self.until = now + pause
        if now - self.warned_at >= WARN_EVERY:
            self.warned_at = now
            logger.warning(
                "The cache (Redis) is unreachable: reads miss and writes are dropped, so "
                "rate limits and throttles are not enforced until it is back (%s)",
                exc,
            )


class ResilientRedisCache(RedisCache):
    def __init__(self, server, params):
        options = dict(params.get("OPTIONS") or {})
        self._pause = float(options.pop("pause_after_error", 5))
        super().__init__(server, {**params, "OPTIONS": options})
        key = ",".join(self._servers)
        with _outages_lock:
            self._outage = _outages.setdefault(key, _Outage())

    def _try(self, fallback, method, *args, **kwargs):
        if time.monotonic() < self._outage.until:
            return fallback
        try:
            return method(*args, **kwargs)
        except UNREACHABLE as exc:
            self._outage.started(self._pause, exc)
            return fallback

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        # True: a lock or a "seen once" mark taken while Redis is down must not refuse
        # (allauth would wait on its lock, then refuse every TOTP code).
        return self._try(True, super().add, key, value, timeout, version)

    def get(self, key, default=None, version=None):
        return self._try(default, super().get, key, default, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._try(None, super().set, key, value, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._try(False, super().touch, key, timeout, version)

    def delete(self, key, version=None):
        return self._try(False, super().delete, key, version)

    def get_many(self, keys, version=None):
        return self._try({}, super().get_many, keys, version)

    def has_key(self, key, version=None):
        return self._try(False, super().has_key, key, version)

    def incr(self, key, delta=1, version=None):
        missing = object()
        value = self._try(missing, super().incr, key, delta, version)
        if value is missing:
            raise ValueError(f"Key '{key}' not found.")  # what a miss means to incr
        return value

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._try(list(data), super().set_many, data, timeout, version)

    def delete_many(self, keys, version=None):
        return self._try(None, super().delete_many, keys, version)

    def clear(self):
        return self._try(False, super().clear)
