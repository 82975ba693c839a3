"""core.cache: a Redis that cannot be reached reads as a miss, drops writes and lets
`add` through, with one warning, quickly, and is used again once it is back."""

import logging
import time

import pytest

from core.cache import ResilientRedisCache
from tests.redis_server import RedisServer, free_port, needs_redis_server


def cache_at(url, **options):
    return ResilientRedisCache(
        url,
        {
            "KEY_PREFIX": "test-cache",
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25, **options},
        },
    )


def test_a_cache_nothing_answers_misses_drops_and_lets_through(caplog):
    cache = cache_at(f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="core.cache"):
        assert cache.get("k", "default") == "default"
        assert cache.set("k", 1) is None
        assert cache.add("lock", 1) is True  # a lock or a "code used" mark is not refused
        assert cache.get_many(["a", "b"]) == {}
        assert cache.has_key("k") is False
        assert cache.delete("k") is False
        assert cache.touch("k") is False
        assert cache.set_many({"a": 1, "b": 2}) == ["a", "b"]  # the keys not stored
        assert cache.delete_many(["a"]) is None
        assert cache.get_or_set("g", lambda: "computed") == "computed"
        with pytest.raises(ValueError):
            cache.incr("counter")  # as for any key the cache does not have
    assert time.monotonic() - started < 1
    warnings = [r for r in caplog.records if r.name == "core.cache"]
    assert len(warnings) == 1  # once, not once per call
    assert "rate limits and throttles are not enforced" in warnings[0].getMessage()


@needs_redis_server
def test_redis_is_used_again_once_it_is_back(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    try:
        cache = cache_at(server.url(1), pause_after_error=0.5)
        cache.set("k", "before")
        assert cache.get("k") == "before"
        server.stop()
        assert cache.get("k") is None
        server.start()  # empty: nothing is saved to disk
        cache.set("k", "paused")  # within the pause after the error: not even tried
        assert cache.get("k") is None
        time.sleep(0.6)
        cache.set("k", "after")
        assert cache.get("k") == "after"
        assert cache.add("n", 1) is True
        assert cache.incr("n") == 2
    finally:
        server.stop()
