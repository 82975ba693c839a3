"""/healthz: is the database, the cache and the Celery broker reachable?

The answer is public: it names the part that is down, never why (no driver, no
exception); the log says why. Each check has a short timeout of its own (the cache's
and the broker's socket timeouts, one broker connection attempt), so the answer comes
within about two seconds when Redis is unreachable."""

import logging
import uuid

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _cache():
    # A cache that is down reads as a miss (core.cache): the value does not come back.
    key = f"healthz:{uuid.uuid4().hex}"
    cache.set(key, "ok", 10)
    if cache.get(key) != "ok":
        raise RuntimeError("value written was not read back")
    cache.delete(key)


def _broker():
    from .celery import app, ensure_broker_folder

    ensure_broker_folder()
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=0)


CHECKS = {"database": _database, "cache": _cache, "broker": _broker}


@never_cache
def healthz(request):
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception:
            logger.warning("Health check: the %s is unavailable", name, exc_info=True)
            results[name] = "unavailable"
        else:
            results[name] = "ok"
    healthy = all(v == "ok" for v in results.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": results},
        status=200 if healthy else 503,
    )
