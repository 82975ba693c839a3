import logging
from functools import wraps

from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.http import HttpResponseBadRequest
from django.urls import URLPattern, include, path, register_converter
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from accounts.converters import IdConverter
from billing.webhooks import stripe_webhook

from .health import healthz

register_converter(IdConverter, "id")

# What ReDoc needs beyond the portal's policy: the scrollbar stylesheet its bundle inserts as
# it loads, before Redoc.init can hand it the nonce (allowed by its hash, and the empty
# element's, which the browser checks first: a new drf-spectacular-sidecar may change it,
# and tests/e2e/test_content_security_policy.py then fails naming the new hash), the worker
# its search runs in, and the Redocly logo it shows.
REDOC_CSP = {
    "style-src": [
        "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
        "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
    ],
    "worker-src": ["'self'", "blob:"],
    "img-src": ["https://cdn.redoc.ly"],
}

handler500 = "config.errors.server_error"

logger = logging.getLogger(__name__)


def anymail_routes(esps) -> list:
    """anymail's webhook URLs of the named providers (postmark, mailgun...), each answering
    a body it cannot read with 400, not a server error."""
    from anymail import urls as anymail_urls

    wanted = tuple(f"{esp.strip().lower()}_" for esp in esps if esp.strip())
    return [
        URLPattern(route.pattern, _readable_or_400(route.callback), route.default_args, route.name)
        for route in anymail_urls.urlpatterns
        if route.name.startswith(wanted)
    ]


def _readable_or_400(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning("Unreadable %s webhook post: %r", request.path, exc)
            return HttpResponseBadRequest(
                "The webhook's body could not be read as this provider's format."
            )

    wrapped.csrf_exempt = True
    return wrapped


handler404 = "accounts.api.not_found"

urlpatterns = [
    path("admin/login/", RedirectView.as_view(pattern_name="account_login", query_string=True)),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("accounts.api_urls")),
    path("api/v1/", include("billing.api_urls")),
    path("api/v1/", include("refunds.api_urls")),
    path("api/v1/", include("support.api_urls")),
    path("api/v1/", include("marketplace.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    # drf-spectacular's pages with the CSP nonce on their inline style and script.
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api_schema", template_name="api/swagger_ui.html"),
        name="api_docs",
    ),
    path(
        "api/redoc/",
        csp_update(REDOC_CSP)(
            SpectacularRedocView.as_view(url_name="api_schema", template_name="api/redoc.html")
        ),
        name="api_redoc",
    ),
    path("healthz", healthz, name="healthz"),
    # Stripe signs its webhooks with STRIPE_WEBHOOK_SECRET; dj-stripe's own endpoints
    # (one per endpoint created from the staff console) live beside it.
    path("stripe/webhook/", stripe_webhook, name="stripe_webhook"),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    # Inbound mail (inbox.webhook), for the configured providers only.
    path("anymail/", include((anymail_routes(settings.ANYMAIL_WEBHOOK_ESPS), "anymail"))),
    path("", include("billing.urls")),
    path("", include("refunds.urls")),
    path("", include("support.urls")),
    path("", include("marketplace.urls")),
    path("", include("inbox.urls")),
    path("", include("accounts.urls")),
]
