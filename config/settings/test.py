"""Settings for the test suite: SQLite in memory unless DATABASE_URL is set."""

import os
from urllib.parse import urlsplit, urlunsplit

from .base import *
from .base import CACHES, REDIS_URL, env

DEBUG = False
SECRET_KEY = "test-secret-key"  # noqa: S105
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ALLOWED_HOSTS = ["*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"

if REDIS_URL:
    # A database of its own, away from the broker's, and a prefix per run: between
    # tests the suite deletes only its own keys (tests/conftest.py).
    CACHES["default"]["LOCATION"] = urlunsplit(
        urlsplit(REDIS_URL)._replace(path="/" + env.str("TEST_CACHE_REDIS_DB", default="15"))
    )
    CACHES["default"]["KEY_PREFIX"] = f"test-{os.getpid()}"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Tasks run in-process; a real worker is exercised by the integration tests.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_TASK_EAGER_PROPAGATES = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
# Static files come from the app folders; no collectstatic in tests.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
# dj-stripe's own migrations take most of a minute to apply (0002 alone has 515
# operations); the test database takes its tables from one migration of the same
# schema instead. After upgrading dj-stripe, regenerate it (tests/test_config.py
# checks it is current):
#   rm tests/djstripe_migrations/0001_initial.py
#   DJANGO_SETTINGS_MODULE=config.settings.test .venv/bin/python manage.py makemigrations djstripe
MIGRATION_MODULES = {"djstripe": "tests.djstripe_migrations"}
