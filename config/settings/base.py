"""Settings shared by every environment.

Every value comes from the environment (django-environ) with a safe default for
the embedded set-up: SQLite, a Celery broker on the filesystem, console mail.
"""

from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF
from django.conf import global_settings
from django.contrib.messages import constants as message_constants

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(environ.Env().str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
# Only used where no SECRET_KEY is given; production refuses to start with it.
DEFAULT_SECRET_KEY = "insecure-default-key-for-local-use-only"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default=DEFAULT_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "console.apps.ConsoleAdminConfig",  # django.contrib.admin with the console's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "anymail",
    "djstripe",
    "core",
    "accounts",
    "billing",
    "refunds",
    "support",
    "marketplace",
    "inbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    # Before anything that could read the body (sessions, CSRF, the views).
    "core.middleware.RequestBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.RequestContextMiddleware",
    "accounts.middleware.CurrentAccountMiddleware",
    "accounts.middleware.StaffMFAMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.current_account",
            ],
        },
    },
]

# Database: SQLite file by default, PostgreSQL (or any URL) from DATABASE_URL.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker) share the file: wait for locks, don't fail.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache: Redis when REDIS_URL is set (rate limits must be shared by every
# process); otherwise a file cache that the embedded processes share.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            # Redis down is no error: reads miss, writes are dropped, so rate limits and
            # throttles let everyone through (with a warning in the log) until it is back.
            # Short timeouts keep an unreachable Redis cheap; after an error the cache is
            # left alone for `pause_after_error` seconds.
            "BACKEND": "core.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="portal"),
            "OPTIONS": {
                "socket_connect_timeout": env.float("CACHE_TIMEOUT_SECONDS", default=0.5),
                "socket_timeout": env.float("CACHE_TIMEOUT_SECONDS", default=0.5),
                "pause_after_error": env.float("CACHE_PAUSE_AFTER_ERROR_SECONDS", default=5),
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# Sessions live in the database, never in the cache alone: with Redis down, everyone
# would be signed out (and sign-in would not hold).
SESSION_ENGINE = "django.contrib.sessions.backends.db"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"

# django-allauth: email is the login; verification is mandatory.
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.SignupCompanyForm"
ACCOUNT_ADAPTER = "accounts.adapters.PortalAccountAdapter"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Portal] "
ACCOUNT_PRESERVE_USERNAME_CASING = False
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env.str("MFA_TOTP_ISSUER", default="Vendor Portal")

# Mail: console by default; any anymail provider via EMAIL_BACKEND + ANYMAIL.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Vendor Portal <portal@example.com>")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
ANYMAIL = env.dict("ANYMAIL", default={})
# Anymail's webhooks (refund mail comes in at /anymail/<esp>/inbound/) require this
# "user:password" HTTP basic auth; without it the refund-mail receiver refuses every post.
if env.str("ANYMAIL_WEBHOOK_SECRET", default=""):
    ANYMAIL["WEBHOOK_SECRET"] = env.str("ANYMAIL_WEBHOOK_SECRET")
# The providers whose webhooks are mounted under /anymail/: only those configured, since an
# unconfigured provider's webhook answers every post with a server error.
ANYMAIL_WEBHOOK_ESPS = env.list("ANYMAIL_WEBHOOK_ESPS", default=["postmark"])
# Public base URL used in links inside emails sent by background jobs.
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000")

LANGUAGE_CODE = "en-us"
# Money and dates (accounts.formatting) when no account is in view: a CLDR locale.
PORTAL_LOCALE = env.str("PORTAL_LOCALE", default="en_US")
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "/media/"

MESSAGE_TAGS = {message_constants.ERROR: "error"}

# Content-Security-Policy on every response (django-csp): scripts and styles come from the
# portal's static files, or inline with the request's nonce (request.csp_nonce), never
# 'unsafe-inline'. A page that needs more adds it for itself (core.csp.allow): the
# payment-method page Stripe.js's origin, an app's page the developer it sends you to.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "frame-src": ["https://js.stripe.com", "https://hooks.stripe.com"],
        "connect-src": [SELF, "https://api.stripe.com"],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}

# REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an anonymous caller gets 401 with a Token challenge.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "accounts.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "accounts.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "accounts.pagination.Pagination",
    "PAGE_SIZE": 100,
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("API_USER_RATE", default="1000/hour"),
        # Unauthenticated: a self-hosted installation activating with its key.
        "licence_activation": env.str("LICENCE_ACTIVATION_RATE", default="30/hour"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Vendor Portal API",
    "DESCRIPTION": "Accounts, members, seats and the support contact. "
    "Authenticate with a session or with `Authorization: Token <key>` "
    "(create a key under Account Settings > Profile). A refusal answers "
    '`{"detail": "..."}`; refused input names each field: `{"field": ["message"]}`.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The `id` path converter (accounts.converters): a row's id, anything else answers 404.
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    },
    # Choice sets that share a field name (state, channel, status, kind, method) get a
    # name each instead of one made up from the serializer.
    "ENUM_NAME_OVERRIDES": {
        "AccountStatusEnum": "accounts.models.Account.Status",
        "SubscriptionStatusEnum": "billing.models.Subscription.Status",
        "OrderStatusEnum": "billing.models.Order.Status",
        "PaymentStatusEnum": "billing.models.Payment.Status",
        "LicenceStatusEnum": "billing.models.Licence.Status",
        "ProductKindEnum": "billing.models.Product.Kind",
        "LedgerEntryKindEnum": "billing.models.LedgerEntry.Kind",
        "LineRefundMethodEnum": "billing.models.LineRefund.Method",
        "InstallationStateEnum": "marketplace.models.Installation.State",
        "RefundRequestStateEnum": "refunds.models.RefundRequest.State",
        "RefundRequestChannelEnum": "refunds.models.RefundRequest.Channel",
        "RefundPayoutMethodEnum": "refunds.models.RefundPayout.Method",
        "RefundPayoutStatusEnum": "refunds.models.RefundPayout.Status",
        "IncidentStateEnum": "support.models.Incident.State",
        "IncidentChannelEnum": "support.models.Incident.Channel",
        "SupportRefusalKindEnum": "support.api.REFUSAL_KINDS",
    },
}

# Celery: Redis when REDIS_URL is set, otherwise kombu's filesystem transport,
# which needs no server. Tasks are JSON, acknowledged late and time limited. Services
# queue jobs through the outbox (core.outbox), so a broker that is down loses none.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_FOLDER = VAR_DIR / "broker"
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
# The longest wait between two tries of a failing job (autoretry's back-off cap, used by
# the tasks).
JOB_RETRY_BACKOFF_MAX = env.int("JOB_RETRY_BACKOFF_MAX", default=120)
# A job is acknowledged when it ends, not when it starts (acks_late): a worker killed in
# the middle of a job leaves it unacknowledged, and the broker hands it out again. A pool
# process that dies is noticed at once (reject_on_worker_lost); a worker that dies whole
# (kill -9, out of memory, its machine lost) only when the job has been out for Redis's
# visibility timeout, at Redis's next sweep of unacknowledged jobs (about every 100 s).
# The timeout must outlast the longest a job is out legitimately, its hard time limit
# plus the wait of a retry that a worker holds until it is due; shorter, a job still
# running or waiting would be run a second time. Longer waits (a webhook's back-off)
# go through the outbox's countdown, not broker ETAs.
if CELERY_BROKER_URL.startswith("filesystem://"):
    # No visibility timeout here: a job taken by a worker that is killed is lost, which
    # the embedded set-up accepts.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_FOLDER),
        "data_folder_out": str(CELERY_BROKER_FOLDER),
        "control_folder": str(CELERY_BROKER_FOLDER / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int(
            "CELERY_VISIBILITY_TIMEOUT",
            default=CELERY_TASK_TIME_LIMIT + JOB_RETRY_BACKOFF_MAX + 60,
        ),
        # A broker that is down refuses a publish within a second; the job waits in the
        # outbox, the request goes on.
        "socket_connect_timeout": 1,
        "socket_timeout": 5,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_REDIRECT_STDOUTS_LEVEL = "INFO"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "relay-outbox": {
        "task": "core.tasks.outbox_relay",
        "schedule": env.int("OUTBOX_RELAY_SECONDS", default=60),
    },
    "renew-subscriptions": {
        "task": "billing.tasks.subscriptions_renew_due",
        "schedule": env.int("RENEWAL_SWEEP_SECONDS", default=60 * 60),
    },
    "bill-usage": {
        "task": "billing.tasks.usage_bill_due",
        "schedule": env.int("USAGE_SWEEP_SECONDS", default=60 * 60),
    },
    "sweep-support-deadlines": {
        "task": "support.tasks.incident_deadlines_sweep",
        "schedule": env.int("SUPPORT_SWEEP_SECONDS", default=5 * 60),
    },
    "sweep-refund-deadlines": {
        "task": "refunds.tasks.refund_deadlines_sweep",
        "schedule": env.int("REFUND_SWEEP_SECONDS", default=15 * 60),
    },
    "billing-reminders": {
        "task": "billing.tasks.reminders_send_due",
        "schedule": env.int("REMINDER_SWEEP_SECONDS", default=60 * 60),
    },
    "retry-payments": {
        "task": "billing.tasks.payments_retry_due",
        "schedule": env.int("PAYMENT_RETRY_SWEEP_SECONDS", default=15 * 60),
    },
    "remind-trials": {
        "task": "marketplace.tasks.trials_remind",
        "schedule": env.int("TRIAL_SWEEP_SECONDS", default=60 * 60),
    },
    "release-earnings": {
        "task": "marketplace.tasks.earnings_release",
        "schedule": env.int("EARNINGS_SWEEP_SECONDS", default=60 * 60),
    },
    "expire-invitations": {
        "task": "accounts.tasks.invitations_expire",
        "schedule": env.int("INVITATION_SWEEP_SECONDS", default=15 * 60),
    },
}
# Mail from IMAP (imaps://user:password@host:993/INBOX, special characters
# percent-encoded), fetched every MAIL_FETCH_SECONDS when set: billing's mailbox (refund
# requests) and support's.
REFUND_MAIL_IMAP_URL = env.str("REFUND_MAIL_IMAP_URL", default="")
SUPPORT_MAIL_IMAP_URL = env.str("SUPPORT_MAIL_IMAP_URL", default="")
MAIL_FETCH_SECONDS = env.int(
    "MAIL_FETCH_SECONDS", default=env.int("REFUND_MAIL_FETCH_SECONDS", default=5 * 60)
)
for _mailbox, _url in (("refunds", REFUND_MAIL_IMAP_URL), ("support", SUPPORT_MAIL_IMAP_URL)):
    if _url:
        CELERY_BEAT_SCHEDULE[f"fetch-{_mailbox}-mail"] = {
            "task": "inbox.tasks.fetch_imap_task",
            "schedule": MAIL_FETCH_SECONDS,
            "args": (_mailbox,),
        }
CELERY_BEAT_SCHEDULE["purge-held-refund-files"] = {
    "task": "refunds.tasks.refund_held_files_purge",
    "schedule": 60 * 60,
}
CELERY_BEAT_SCHEDULE["process-stale-mail"] = {
    "task": "inbox.tasks.mail_process_stale",
    "schedule": env.int("MAIL_STALE_SWEEP_SECONDS", default=10 * 60),
}
# A mail acts for a customer only when its sender is proven (inbox/proof.py): by the
# Authentication-Results of a receiving server named here (its authserv-id, e.g.
# "mx.vendor.example"), with DMARC pass or aligned DKIM pass, or by a thread's reply
# token. Empty: only reply tokens (and the provider's verdict on the anymail path) prove.
MAIL_TRUSTED_AUTHSERV_IDS = env.list("MAIL_TRUSTED_AUTHSERV_IDS", default=[])

# Support (1CRM terms): one incident a year per two licensed users, at least one;
# extra incidents are billed at the catalogue's support_incident price (US$150).
SUPPORT_USERS_PER_INCIDENT = env.int("SUPPORT_USERS_PER_INCIDENT", default=2)
SUPPORT_MIN_INCIDENTS = env.int("SUPPORT_MIN_INCIDENTS", default=1)
SUPPORT_REOPEN_DAYS = env.int("SUPPORT_REOPEN_DAYS", default=14)
SUPPORT_EMAIL = env.str("SUPPORT_EMAIL", default="support@vendor.example")
SUPPORT_DOCS_URL = env.str("SUPPORT_DOCS_URL", default="https://docs.vendor.example/")
SUPPORT_LEADS = env.list("SUPPORT_LEADS", default=["support-leads@vendor.example"])
# Working hours (vendor time zone) and the service levels in business hours, per severity.
SUPPORT_HOURS = (9, 17)
SUPPORT_TARGETS = {
    "P1": {"first_response_hours": 1, "update_hours": 2},
    "P2": {"first_response_hours": 4, "update_hours": 8},
    "P3": {"first_response_hours": 8, "update_hours": 16},
    "P4": {"first_response_hours": 16, "update_hours": 40},
}

# Refunds: the active policy preset (onecloud | onecrm | acelle), and the vendor's
# country and time zone, whose business days the deadlines count.
REFUND_POLICY = env.str("REFUND_POLICY", default="acelle")
# Marketplace apps are refunded under the marketplace's own policy (onecloud §4).
# Payment recovery: a failed card charge is tried again this many days after each failure.
BILLING_PAYMENT_RETRY_DAYS = env.list("BILLING_PAYMENT_RETRY_DAYS", cast=int, default=[1, 3, 5])
MARKETPLACE_REFUND_POLICY = env.str("MARKETPLACE_REFUND_POLICY", default="onecloud")
MARKETPLACE_WEBHOOK_ATTEMPTS = env.int("MARKETPLACE_WEBHOOK_ATTEMPTS", default=6)
MARKETPLACE_WEBHOOK_TIMEOUT = env.float("MARKETPLACE_WEBHOOK_TIMEOUT", default=10.0)
# Calls to the developer API, per app.
MARKETPLACE_APP_API_RATE = env.str("MARKETPLACE_APP_API_RATE", default="20000/hour")
# Shown with orders awaiting a bank transfer (the manual gateway).
VENDOR_BANK_DETAILS = env.str(
    "VENDOR_BANK_DETAILS", default="Example Bank, IBAN XX00 0000 0000 0000 0000 00, BIC EXAMPXXX"
)
VENDOR_COUNTRY = env.str("VENDOR_COUNTRY", default="US")
# The seller on invoices and credit notes.
VENDOR_LEGAL_NAME = env.str("VENDOR_LEGAL_NAME", default="Vendor Software Inc.")
VENDOR_ADDRESS = env.list(
    "VENDOR_ADDRESS", default=["100 Market Street", "San Francisco, CA 94105", "United States"]
)
VENDOR_TAX_ID = env.str("VENDOR_TAX_ID", default="EIN 12-3456789")
VENDOR_SUBDIVISION = env.str("VENDOR_SUBDIVISION", default="") or None
VENDOR_TIMEZONE = env.str("VENDOR_TIMEZONE", default="America/New_York")
# Approve lines whose engine outcome is "refund" as soon as the request arrives.
REFUND_AUTO_APPROVE = env.bool("REFUND_AUTO_APPROVE", default=False)
# Evidence files: at most this many per request, each at most this size.
REFUND_EVIDENCE_MAX_FILES = env.int("REFUND_EVIDENCE_MAX_FILES", default=5)
REFUND_EVIDENCE_MAX_BYTES = env.int("REFUND_EVIDENCE_MAX_BYTES", default=5 * 1024 * 1024)
# The largest request body the portal reads; a larger one is refused with 413 before it is
# read (core.middleware). The default fits the largest upload, a refund request (or message)
# with all its evidence files at their largest, plus the form's other fields (which Django
# caps at DATA_UPLOAD_MAX_MEMORY_SIZE) and 1 MB for the multipart framing: 28.5 MB.
REQUEST_BODY_MAX_BYTES = env.int(
    "REQUEST_BODY_MAX_BYTES",
    default=REFUND_EVIDENCE_MAX_FILES * REFUND_EVIDENCE_MAX_BYTES
    + global_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    + 2**20,
)
# Who hears of a breached refund deadline.
REFUND_BILLING_LEADS = env.list("REFUND_BILLING_LEADS", default=["billing-leads@vendor.example"])

# Billing: "manual" (staff record outside payments) is the embedded default.
BILLING_GATEWAY = env.str("BILLING_GATEWAY", default="manual")
# Length of the free trial offered with an account's first plan.
BILLING_TRIAL_DAYS = env.int("BILLING_TRIAL_DAYS", default=14)
# Subscriptions per renewal job: the hourly run queues the due ones this many at a time,
# and each job renews its chunk in a few seconds, far inside the task time limits.
RENEWAL_CHUNK_SIZE = env.int("RENEWAL_CHUNK_SIZE", default=200)

# Stripe (BILLING_GATEWAY=stripe). Webhooks come to /stripe/webhook/, signed with
# STRIPE_WEBHOOK_SECRET (the endpoint's whsec_... from the Stripe dashboard).
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Another API server than Stripe's (localstripe in tests and demos); empty: Stripe's.
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
STRIPE_JS_URL = env.str("STRIPE_JS_URL", default="https://js.stripe.com/v3/")
STRIPE_LIVE_MODE = STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))
# dj-stripe: the Stripe customer belongs to the customer company, not to a user.
DJSTRIPE_SUBSCRIBER_MODEL = "accounts.Account"
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"

# Portal rules
INVITATION_TTL_DAYS = env.int("INVITATION_TTL_DAYS", default=7)
PORTAL_NAME = env.str("PORTAL_NAME", default="Vendor Portal")
# Where customers write about billing (shown on the Billing page until seats are sold online).
VENDOR_BILLING_EMAIL = env.str("VENDOR_BILLING_EMAIL", default="billing@vendor.example")
# How many proxies in front of the portal append to X-Forwarded-For (0: none).
# Audit rows and allauth's per-client rate limits take the client address from it.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # The Stripe SDK logs every API request at INFO.
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "stripe": {"level": "WARNING"},
        # WeasyPrint logs each step of every PDF at INFO.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
