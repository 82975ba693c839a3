"""The benches' settings (bench/): production's behaviour (DEBUG off, cached templates,
database sessions, the Redis cache when REDIS_URL is set) on a throwaway database, served
by gunicorn on loopback without HTTPS, and mail kept in memory. Adds /bench/bare/, the
bare Django view each page figure is compared with (config/urls_bench.py)."""

from .base import *
from .base import LOGGING, env

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY", default="bench-secret-key-" + "x" * 32)
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "config.urls_bench"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The data is built through the services in the bench's own process; their jobs run there.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_TASK_EAGER_PROPAGATES = True
# Static files from the app folders (no collectstatic); pages link them, nothing fetches them.
WHITENOISE_USE_FINDERS = True
# dj-stripe's tables from the test suite's single migration (a minute saved per build).
MIGRATION_MODULES = {"djstripe": "tests.djstripe_migrations"}
# Warnings and errors only: a line per request would be part of what is measured.
LOGGING["root"]["level"] = env.str("LOG_LEVEL", default="WARNING")
