"""The App Marketplace: third-party developers, their apps and plans, the accounts' installations,
usage reported by developers, webhooks to them, and what they earn (onecloud §4)."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import CURRENCIES, Account
from billing.models import AMOUNT, OrderLine, Product, Subscription


class Developer(models.Model):
    """A third-party publisher of apps."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    website = models.URLField(blank=True)
    support_email = models.EmailField()
    # Where customers ask for refunds of apps paid outside the portal (onecloud §4).
    refund_contact = models.CharField(max_length=300)
    # The developer's share of what customers pay for its apps (0.80 = 80%); the rest is
    # the vendor's fee.
    revenue_share = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.80"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(revenue_share__gte=0, revenue_share__lte=1),
                name="developer_share_between_0_and_1",
            )
        ]

    def __str__(self):
        return self.name


class App(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        PUBLISHED = "published", "Published"
        DELISTED = "delisted", "Delisted"

    class Category(models.TextChoices):
        AI = "ai", "AI and automation"
        COMMUNICATION = "communication", "Communication"
        ANALYTICS = "analytics", "Analytics and reporting"
        MARKETING = "marketing", "Marketing"
        SALES = "sales", "Sales"
        PRODUCTIVITY = "productivity", "Productivity"
        INTEGRATIONS = "integrations", "Integrations"

    developer = models.ForeignKey(Developer, on_delete=models.PROTECT, related_name="apps")
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    summary = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=20, choices=Category.choices)
    # The permissions the app asks for ("contacts:read", "deals:write").
    scopes = models.JSONField(default=list, blank=True)
    terms_url = models.URLField(blank=True)
    privacy_url = models.URLField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # Where the portal posts events, signed with webhook_secret (see marketplace.webhooks).
    webhook_url = models.URLField(blank=True)
    webhook_secret = models.CharField(max_length=80, blank=True)
    # The developer API's secret, stored as its SHA-256 only; `api_key_prefix` finds it.
    api_key_prefix = models.CharField(max_length=16, blank=True, db_index=True)
    api_key_hash = models.CharField(max_length=64, blank=True)
    search_text = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["status", "category", "name"])]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        self.search_text = " ".join(
            [self.name, self.summary, self.description, self.developer.name]
        ).lower()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = list({*kwargs["update_fields"], "search_text"})
        super().save(*args, **kwargs)


class Plan(models.Model):
    """One way to pay for an app. A paid plan sells a billing product of the app kind of
    its model, so its orders, payments and refunds are billing's."""

    class Model(models.TextChoices):
        FREE = "free", "Free"
        SUBSCRIPTION = "subscription", "Subscription"
        ONE_TIME = "one_time", "One-time (lifetime licence)"
        USAGE = "usage", "Usage-based"
        EXTERNAL = "external", "Paid to the developer"

    KIND = {
        Model.SUBSCRIPTION: Product.Kind.APP_SUBSCRIPTION,
        Model.ONE_TIME: Product.Kind.APP_ONE_TIME,
        Model.USAGE: Product.Kind.APP_USAGE,
        Model.EXTERNAL: Product.Kind.APP_EXTERNAL,
    }

    class Interval(models.TextChoices):
        NONE = "", "—"
        MONTH = "month", "Monthly"
        YEAR = "year", "Yearly"

    class Scheme(models.TextChoices):
        FLAT = "flat", "Flat"
        PER_SEAT = "per_seat", "Per seat"

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="plans")
    code = models.SlugField(max_length=60)
    name = models.CharField(max_length=120)
    pricing_model = models.CharField(max_length=12, choices=Model.choices)
    currency = models.CharField(max_length=3, choices=[(c, c) for c in CURRENCIES], default="USD")
    # subscription: the price per period (per seat if per_seat); one_time: the price;
    # usage: the price of one unit.
    amount = models.DecimalField(**AMOUNT, default=0)
    interval = models.CharField(max_length=5, choices=Interval.choices, blank=True, default="")
    scheme = models.CharField(max_length=10, choices=Scheme.choices, default=Scheme.FLAT)
    trial_days = models.PositiveSmallIntegerField(default=0)
    # The developer's own refund window for a first payment (replaces onecloud §4's 3 days).
    refund_days = models.PositiveSmallIntegerField(null=True, blank=True)
    unit_name = models.CharField(max_length=40, blank=True)  # "message", "action"
    default_cap = models.DecimalField(**AMOUNT, null=True, blank=True)  # usage: monthly cap
    external_url = models.URLField(blank=True)
    external_refund_contact = models.CharField(max_length=300, blank=True)
    requires_edition = models.CharField(
        max_length=20,
        choices=[
            ("", "—"),
            ("professional", "Professional or Enterprise"),
            ("enterprise", "Enterprise"),
        ],
        blank=True,
        default="",
    )
    # A billing product whose licence the plan needs (1CRM terms: the WordPress portal
    # works only with its own licence).
    requires_product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    product = models.OneToOneField(
        Product, null=True, blank=True, on_delete=models.PROTECT, related_name="app_plan"
    )
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["app", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["app", "code"], name="plan_code_unique_per_app"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="plan_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(pricing_model__in=["free", "external"], amount=0)
                | (~Q(pricing_model__in=["free", "external"]) & Q(amount__gt=0)),
                name="plan_paid_iff_priced",
            ),
            models.CheckConstraint(
                condition=Q(pricing_model="subscription", interval__in=["month", "year"])
                | (~Q(pricing_model="subscription") & Q(interval="")),
                name="plan_interval_only_for_subscriptions",
            ),
            models.CheckConstraint(
                condition=Q(trial_days=0) | Q(pricing_model="subscription"),
                name="plan_trial_only_for_subscriptions",
            ),
            models.CheckConstraint(
                condition=Q(pricing_model="external") | Q(external_url=""),
                name="plan_url_only_for_external",
            ),
        ]

    def __str__(self):
        return f"{self.app.name}: {self.name}"

    @property
    def kind(self) -> str | None:
        return self.KIND.get(self.pricing_model)

    @property
    def is_paid(self) -> bool:
        return self.pricing_model in (
            self.Model.SUBSCRIPTION,
            self.Model.ONE_TIME,
            self.Model.USAGE,
        )


class Installation(models.Model):
    """An app in an account: one per account and app."""

    class State(models.TextChoices):
        PENDING = "pending", "Awaiting payment"
        TRIALING = "trialing", "Trial"
        ACTIVE = "active", "Active"
        CANCELLED = "cancelled", "Cancelled"
        SUSPENDED = "suspended", "Suspended"
        UNINSTALLED = "uninstalled", "Uninstalled"

    # States in which the app may work for the account (its licence is good).
    LIVE_STATES = (State.TRIALING, State.ACTIVE)

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="installations")
    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="installations")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="installations")
    pending_plan = models.ForeignKey(
        Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(max_length=12, choices=State.choices)
    installed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scopes = models.JSONField(default=list, blank=True)  # what the account granted
    trial_end = models.DateField(null=True, blank=True)  # the first day no longer free
    # What billing holds for it: the app subscription, or the lifetime licence's line.
    subscription = models.OneToOneField(
        Subscription, null=True, blank=True, on_delete=models.PROTECT, related_name="installation"
    )
    licence_line = models.ForeignKey(
        OrderLine, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    order = models.ForeignKey(
        "billing.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Usage plans: the customer's monthly cap, and this month's use (kept by the service).
    usage_cap = models.DecimalField(**AMOUNT, null=True, blank=True)
    usage_month = models.DateField(null=True, blank=True)
    usage_units = models.PositiveBigIntegerField(default=0)
    usage_amount = models.DecimalField(**AMOUNT, default=0)
    cap_alerted = models.PositiveSmallIntegerField(default=0)  # 0, 80 or 100 (% mailed)
    trial_mails = models.PositiveSmallIntegerField(default=0)  # 0, 1 (3 days before), 2
    installed_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-installed_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["account", "app"], name="one_installation_per_app"),
            models.CheckConstraint(
                condition=Q(usage_cap__isnull=True) | Q(usage_cap__gte=0),
                name="installation_cap_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(usage_cap__isnull=True) | Q(usage_amount__lte=models.F("usage_cap")),
                name="installation_usage_within_cap",
            ),
        ]
        indexes = [
            # The trial mail sweep: trials with a mail still to send, by mails sent and end
            # (one range per mail: the first mail sent does not bring the trial back).
            models.Index(
                fields=["trial_mails", "trial_end"],
                name="installation_trial_mail_due",
                condition=Q(state="trialing", trial_mails__lt=2),
            ),
        ]

    def __str__(self):
        return f"{self.app.name} in {self.account}"

    @property
    def is_live(self) -> bool:
        return self.state in self.LIVE_STATES


class AppUsage(models.Model):
    """A usage report from the developer API. The Idempotency-Key makes it once: the same
    key twice for one installation is one record. The money is billing's UsageRecord."""

    installation = models.ForeignKey(Installation, on_delete=models.PROTECT, related_name="usage")
    idempotency_key = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField()
    amount = models.DecimalField(**AMOUNT)
    used_on = models.DateField()
    record = models.OneToOneField(
        "billing.UsageRecord", on_delete=models.PROTECT, related_name="app_usage"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["installation", "idempotency_key"], name="app_usage_key_once"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="app_usage_quantity_positive"),
        ]

    def __str__(self):
        return f"{self.quantity} on {self.used_on} ({self.idempotency_key})"


class WebhookDelivery(models.Model):
    """One event for one app's endpoint, and how its delivery went. Replayable."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    class Event(models.TextChoices):
        INSTALLED = "installation.created", "Installed"
        UNINSTALLED = "installation.uninstalled", "Uninstalled"
        CANCELLED = "installation.cancelled", "Cancelled"
        PLAN_CHANGED = "installation.plan_changed", "Plan changed"
        TRIAL_ENDING = "installation.trial_ending", "Trial ending"
        CANCEL_SCHEDULED = "installation.cancel_scheduled", "Cancelled, ends at period end"
        SUSPENDED = "installation.suspended", "Suspended (renewal unpaid)"
        ACTIVATED = "installation.activated", "Active again (paid)"
        CHARGED = "charge.succeeded", "Charge"
        REFUNDED = "charge.refunded", "Refund"

    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="deliveries")
    installation = models.ForeignKey(
        Installation, null=True, blank=True, on_delete=models.PROTECT, related_name="deliveries"
    )
    event_id = models.CharField(max_length=40, unique=True)
    event = models.CharField(max_length=40, choices=Event.choices)
    payload = models.JSONField()
    url = models.URLField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self):
        return f"{self.event} to {self.app} ({self.status})"


class Earning(models.Model):
    """The developer's share of a paid app line (gross, the vendor's fee, net), or the
    reversal of a share by a refund (negative). Held until the line's refund window has
    passed and no claim about it is open; then available; then paid in a payout."""

    class Status(models.TextChoices):
        HELD = "held", "Held (refund window open)"
        AVAILABLE = "available", "Available"
        PAID = "paid", "Paid out"

    developer = models.ForeignKey(Developer, on_delete=models.PROTECT, related_name="earnings")
    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="earnings")
    line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="+")
    # The refund it reverses (billing.LineRefund), for a reversal.
    refund = models.OneToOneField(
        "billing.LineRefund", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    currency = models.CharField(max_length=3, choices=[(c, c) for c in CURRENCIES])
    gross = models.DecimalField(**AMOUNT)
    fee = models.DecimalField(**AMOUNT)
    net = models.DecimalField(**AMOUNT)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.HELD)
    available_on = models.DateField()
    earned_on = models.DateField()
    payout = models.ForeignKey(
        "DeveloperPayout", null=True, blank=True, on_delete=models.PROTECT, related_name="earnings"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # One share per paid line; one reversal per refund.
            models.UniqueConstraint(
                fields=["line"], condition=Q(refund__isnull=True), name="earning_once_per_line"
            ),
            models.CheckConstraint(
                condition=Q(net=models.F("gross") - models.F("fee")),
                name="earning_net_is_gross_less_fee",
            ),
        ]
        indexes = [
            models.Index(fields=["developer", "status", "earned_on"]),
            # The release sweep: held shares by the day their window ends.
            models.Index(
                fields=["available_on"], name="earning_held_until", condition=Q(status="held")
            ),
        ]

    def __str__(self):
        return f"{self.developer}: {self.net} {self.currency} ({self.status})"


class DeveloperPayout(models.Model):
    """What staff paid a developer for one month's statement, with the bank reference."""

    developer = models.ForeignKey(Developer, on_delete=models.PROTECT, related_name="payouts")
    month = models.DateField()  # the statement's first day
    currency = models.CharField(max_length=3, choices=[(c, c) for c in CURRENCIES])
    amount = models.DecimalField(**AMOUNT)
    reference = models.CharField(max_length=120)
    paid_at = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-month", "developer"]
        constraints = [
            models.UniqueConstraint(
                fields=["developer", "month", "currency"], name="one_payout_per_statement"
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="developer_payout_not_negative"
            ),
        ]

    def __str__(self):
        return f"{self.developer} {self.month:%B %Y}: {self.amount} {self.currency}"
