"""Production: PostgreSQL, Redis, a real mail provider. Refuses unsafe settings."""

from django.core.exceptions import ImproperlyConfigured

from .base import *
from .base import ALLOWED_HOSTS, DEBUG, DEFAULT_SECRET_KEY, REDIS_URL, SECRET_KEY, env

problems = []
if DEBUG:
    problems.append("DEBUG must be off in production")
if not SECRET_KEY or SECRET_KEY == DEFAULT_SECRET_KEY or len(SECRET_KEY) < 32:
    problems.append("SECRET_KEY must be set to a secret of at least 32 characters")
if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
    problems.append("ALLOWED_HOSTS must name the portal's host names")
if not env.str("DATABASE_URL", default=""):
    problems.append("DATABASE_URL must point at PostgreSQL")
if not REDIS_URL:
    problems.append("REDIS_URL must point at Redis (cache, rate limits and the Celery broker)")
if problems:
    raise ImproperlyConfigured("Refusing to start: " + "; ".join(problems) + ".")

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 30)
SECURE_CONTENT_TYPE_NOSNIFF = True
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https"
