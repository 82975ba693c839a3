"""gunicorn's settings for the portal in production: `gunicorn -c gunicorn.conf.py config.wsgi`.

The environment sets the main values (below); gunicorn's command-line options and
GUNICORN_CMD_ARGS win over this file. A sync worker serves one request at a time, and a
body sent slowly holds it until the body has arrived: put a proxy that buffers request
bodies (nginx does by default) in front. The portal itself answers a body declared larger
than REQUEST_BODY_MAX_BYTES with 413 without reading it.
"""

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}").split(",")
workers = _int("WEB_CONCURRENCY", 2 * multiprocessing.cpu_count() + 1)
# A worker silent for longer is killed and replaced: a stuck request cannot hold it for good.
timeout = _int("GUNICORN_TIMEOUT", 30)
# On SIGTERM or a reload, requests under way get this long to finish.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Idle keep-alive connections (threaded workers only; a sync worker closes after each answer).
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Request line and headers: longer or more are refused with 400 before Django sees them.
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
# Django is imported once, before the workers fork; config/wsgi.py then freezes it out of
# the garbage collector, so the workers share those pages.
preload_app = True
# The workers' heartbeat files: in memory, not on a disk that can stall (gunicorn's advice).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
accesslog = "-"
