"""Staff console for the marketplace: developers, apps and their review, plans, installations,
usage, webhook deliveries, earnings and payouts. Every action goes through a service."""

from datetime import date, timedelta

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from accounts.admin import AuditedAdmin, ReadOnlyAdmin, money_column
from accounts.errors import PortalError

from . import selectors, services
from .models import (
    App,
    AppUsage,
    Developer,
    DeveloperPayout,
    Earning,
    Installation,
    Plan,
    WebhookDelivery,
)


def _run(admin_obj, request, label, func, rows):
    done = 0
    for row in rows:
        try:
            func(row)
            done += 1
        except PortalError as exc:
            admin_obj.message_user(request, f"{row}: {exc.message}", messages.ERROR)
    if done:
        admin_obj.message_user(request, f"{label}: {done} done.", messages.SUCCESS)


@admin.register(Developer)
class DeveloperAdmin(AuditedAdmin):
    list_display = ["name", "support_email", "revenue_share", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "support_email", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["statement"]

    @admin.display(description="Monthly statements (this month and the last two)")
    def statement(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        month = timezone.now().date().replace(day=1)
        lines = []
        for _ in range(3):
            rows = selectors.developer_statement(developer=obj, month=month)
            text = "; ".join(
                f"{r.currency}: gross {r.gross:.2f}, fee {r.fee:.2f}, net {r.net:.2f} "
                f"(held {r.held:.2f}, available {r.available:.2f}, paid {r.paid:.2f})"
                for r in rows
            )
            lines.append(f"{month:%B %Y}: {text or 'no earnings'}")
            month = (month - timedelta(days=1)).replace(day=1)
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))


class PlanInline(admin.TabularInline):
    model = Plan
    extra = 0
    fields = [
        "code",
        "name",
        "pricing_model",
        "currency",
        "amount",
        "interval",
        "scheme",
        "trial_days",
        "refund_days",
        "is_active",
    ]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(App)
class AppAdmin(AuditedAdmin):
    list_display = ["name", "developer", "category", "status", "published_at"]
    list_filter = ["status", "category", "developer"]
    search_fields = ["name", "summary", "slug", "developer__name"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["status", "published_at", "api_key_prefix", "webhook_secret"]
    exclude = ["api_key_hash"]
    inlines = [PlanInline]
    actions = [
        "submit",
        "publish",
        "send_back",
        "delist",
        "rotate_api_key",
        "rotate_webhook_secret",
    ]

    def _move(self, request, queryset, status, label):
        _run(
            self,
            request,
            label,
            lambda app: services.app_set_status(actor=request.user, app=app, status=status),
            queryset,
        )

    @admin.action(description="Submit for review")
    def submit(self, request, queryset):
        self._move(request, queryset, App.Status.IN_REVIEW, "Submitted")

    @admin.action(description="Publish (review passed)")
    def publish(self, request, queryset):
        self._move(request, queryset, App.Status.PUBLISHED, "Published")

    @admin.action(description="Send back to draft")
    def send_back(self, request, queryset):
        self._move(request, queryset, App.Status.DRAFT, "Sent back")

    @admin.action(description="Delist")
    def delist(self, request, queryset):
        self._move(request, queryset, App.Status.DELISTED, "Delisted")

    @admin.action(description="New developer API secret (shown once)")
    def rotate_api_key(self, request, queryset):
        for app in queryset:
            secret = services.app_api_key_rotate(actor=request.user, app=app)
            self.message_user(
                request,
                f"{app.name}: the new API secret is {secret} — copy it now, it is not shown again.",
                messages.WARNING,
            )

    @admin.action(description="New webhook signing secret")
    def rotate_webhook_secret(self, request, queryset):
        for app in queryset:
            services.app_webhook_secret_rotate(actor=request.user, app=app)
        self.message_user(
            request, "New webhook secrets are set; give them to the developers.", messages.SUCCESS
        )


@admin.register(Plan)
class PlanAdmin(AuditedAdmin):
    list_display = [
        "__str__",
        "pricing_model",
        money_column("amount", description="price"),
        "interval",
        "trial_days",
        "refund_days",
        "is_active",
    ]
    list_filter = ["pricing_model", "is_active", "app__developer"]
    search_fields = ["name", "code", "app__name"]
    readonly_fields = ["product"]

    def save_model(self, request, obj, form, change):
        try:
            super().save_model(request, obj, form, change)
            services.plan_product_sync(actor=request.user, plan=obj)
        except PortalError as exc:
            if obj.is_active and obj.is_paid and obj.product_id is None:
                Plan.objects.filter(pk=obj.pk).update(is_active=False)
            self.message_user(
                request,
                f"The plan is saved but not for sale (made inactive): {exc.message}",
                messages.ERROR,
            )


@admin.register(Installation)
class InstallationAdmin(ReadOnlyAdmin):
    list_display = ["app", "account", "plan", "state", "trial_end", "installed_at"]
    list_filter = ["state", "plan__pricing_model", "app"]
    search_fields = ["account__name", "app__name"]
    list_select_related = ["app", "account", "plan"]


@admin.register(AppUsage)
class AppUsageAdmin(ReadOnlyAdmin):
    list_display = [
        "installation",
        "quantity",
        money_column("amount", "installation__plan__currency"),
        "used_on",
        "idempotency_key",
        "created_at",
    ]
    list_filter = ["used_on"]
    search_fields = ["idempotency_key", "installation__account__name", "installation__app__name"]
    list_select_related = ["installation__app", "installation__account", "installation__plan"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "event",
        "app",
        "status",
        "attempts",
        "response_status",
        "created_at",
        "delivered_at",
    ]
    list_filter = ["status", "event", "app"]
    search_fields = ["event_id", "app__name", "url"]
    list_select_related = ["app"]
    actions = ["replay"]

    @admin.action(description="Send again")
    def replay(self, request, queryset):
        _run(
            self,
            request,
            "Queued again",
            lambda d: services.webhook_replay(actor=request.user, delivery=d),
            queryset,
        )


@admin.register(Earning)
class EarningAdmin(ReadOnlyAdmin):
    list_display = [
        "developer",
        "app",
        "line",
        "gross",
        "fee",
        "net",
        "currency",
        "status",
        "earned_on",
        "available_on",
        "payout",
    ]
    list_filter = ["status", "currency", "developer"]
    search_fields = ["developer__name", "app__name"]
    list_select_related = ["developer", "app", "line", "payout"]
    date_hierarchy = "earned_on"


class PayoutForm(forms.ModelForm):
    month = forms.DateField(help_text="Any day of the statement's month.", initial=date.today)

    class Meta:
        model = DeveloperPayout
        fields = ["developer", "month", "currency", "reference"]


@admin.register(DeveloperPayout)
class DeveloperPayoutAdmin(admin.ModelAdmin):
    form = PayoutForm
    list_display = [
        "developer",
        "month",
        "currency",
        "amount",
        "reference",
        "paid_at",
        "recorded_by",
    ]
    list_filter = ["developer", "currency"]
    search_fields = ["developer__name", "reference"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            payout = services.developer_payout_record(
                actor=request.user,
                developer=data["developer"],
                month=data["month"],
                currency=data["currency"],
                reference=data["reference"],
            )
        except PortalError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        obj.pk = payout.pk
        obj.amount = payout.amount
