"""The console's admin site: its home is the day's work (console.selectors.dashboard),
with every model listed below it; a refunds report; dj-stripe's models for superusers
only, in a group of their own at the end."""

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from core.calendar import vendor_tz

STRIPE_APP = "djstripe"
STRIPE_GROUP = "Stripe (dj-stripe)"


class ConsoleSite(admin.AdminSite):
    site_title = "Staff console"
    index_title = "Today's work"
    index_template = "admin/console/dashboard.html"

    @property
    def site_header(self):
        return f"{settings.PORTAL_NAME} staff console"

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        stripe = [app for app in apps if app["app_label"] == STRIPE_APP]
        apps = [app for app in apps if app["app_label"] != STRIPE_APP]
        if request.user.is_superuser:
            # dj-stripe's mirror of Stripe's objects: for superusers, after the portal's own.
            for app in stripe:
                app["name"] = STRIPE_GROUP
            apps += stripe
        return apps

    def app_index(self, request, app_label, extra_context=None):
        if app_label == STRIPE_APP and not request.user.is_superuser:
            raise Http404("No such application.")
        return super().app_index(request, app_label, extra_context)

    def index(self, request, extra_context=None):
        from .selectors import dashboard

        tz = vendor_tz()
        sections = dashboard(user=request.user, now=timezone.now(), tz=tz)
        return super().index(
            request,
            {
                "sections": sections,
                "vendor_timezone": str(tz),
                "may_see_report": request.user.has_perm("refunds.view_refundrequest"),
                **(extra_context or {}),
            },
        )

    def get_urls(self):
        return [
            path("reports/refunds/", self.admin_view(self.refunds_report), name="refunds_report"),
            *super().get_urls(),
        ]

    def refunds_report(self, request):
        from .selectors import refunds_report

        if not request.user.has_perm("refunds.view_refundrequest"):
            raise PermissionDenied
        tz = vendor_tz()
        context = {
            **self.each_context(request),
            "title": "Refunds report",
            "subtitle": None,
            # The charts' data (json_script), and the month rows of the table beside them.
            "report": (report := refunds_report(tz=tz)),
            "rows": report.pop("rows"),
            "vendor_timezone": str(tz),
        }
        return TemplateResponse(request, "admin/console/refunds_report.html", context)
