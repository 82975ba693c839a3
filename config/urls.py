from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path, register_converter
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from accounts.converters import IdConverter
from billing.webhooks import stripe_webhook

from .health import healthz

register_converter(IdConverter, "id")

admin.site.site_header = f"{settings.PORTAL_NAME} staff console"
admin.site.site_title = "Staff console"
# Staff sign in through allauth, so two-factor authentication applies to them.
admin.site.login = login_required(admin.site.login)

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
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api_schema"), name="api_redoc"),
    path("healthz", healthz, name="healthz"),
    # Stripe signs its webhooks with STRIPE_WEBHOOK_SECRET; dj-stripe's own endpoints
    # (one per endpoint created from the staff console) live beside it.
    path("stripe/webhook/", stripe_webhook, name="stripe_webhook"),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    path("anymail/", include("anymail.urls")),  # inbound refund mail (refunds.mail.webhook)
    path("", include("billing.urls")),
    path("", include("refunds.urls")),
    path("", include("support.urls")),
    path("", include("marketplace.urls")),
    path("", include("accounts.urls")),
]
