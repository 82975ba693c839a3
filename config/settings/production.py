"""Production: PostgreSQL, Redis, a real mail provider. Refuses unsafe settings."""

from django.core.exceptions import ImproperlyConfigured

from .base import *
from .base import (
    ALLOWED_HOSTS,
    BILLING_GATEWAY,
    DEBUG,
    DEFAULT_SECRET_KEY,
    REDIS_URL,
    SECRET_KEY,
    STRIPE_SECRET_KEY,
    STRIPE_WEBHOOK_SECRET,
    env,
)

# Backends that print or keep mail instead of delivering it (links would leak to logs).
NON_DELIVERING_MAIL_BACKENDS = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
}
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
email_backend = env.str("EMAIL_BACKEND", default="")
if email_backend in ("", *NON_DELIVERING_MAIL_BACKENDS):
    problems.append("EMAIL_BACKEND must be a real mail provider (an anymail backend or SMTP)")
if not env.str("PORTAL_BASE_URL", default="").startswith("https://"):
    problems.append("PORTAL_BASE_URL must be the portal's https:// address (used in mailed links)")
if BILLING_GATEWAY == "stripe":
    if not STRIPE_SECRET_KEY:
        problems.append("STRIPE_SECRET_KEY must be set when BILLING_GATEWAY is stripe")
    if not STRIPE_WEBHOOK_SECRET:
        problems.append(
            "STRIPE_WEBHOOK_SECRET must be set when BILLING_GATEWAY is stripe "
            "(payments are confirmed by its signed webhooks)"
        )
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
# HSTS for a year, for every subdomain too. Preload (on by default) lets the domain be
# submitted to the browsers' preload list, after which they reach it and its subdomains by
# HTTPS only, even on a first visit: SECURE_HSTS_PRELOAD=false keeps it off that list.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https"
