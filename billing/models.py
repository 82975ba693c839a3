"""Billing tables: the catalogue and the account's credit ledger so far."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import CURRENCIES, Account

from .money import Money

AMOUNT = {"max_digits": 14, "decimal_places": 4}


class Product(models.Model):
    """Something the vendor sells. Its kind decides its refund rules (policy-cases/README.md)."""

    class Kind(models.TextChoices):
        SUBSCRIPTION = "subscription", "Subscription (SaaS plan)"
        PREMIUM_FEATURE = "premium_feature", "Premium feature subscription"
        USAGE = "usage", "Usage-based charge"
        CREDIT_PACK = "credit_pack", "Credit pack"
        QUOTA_ADDON = "quota_addon", "Quota add-on (storage, API)"
        PERPETUAL_LICENSE = "perpetual_license", "Perpetual licence (self-hosted)"
        PLUGIN = "plugin", "Standalone plugin"
        SERVICE = "service", "Service (development, migration, training, install)"
        SUPPORT_CONTRACT = "support_contract", "Support contract"
        SUPPORT_INCIDENT = "support_incident", "Extra support incident"
        # Sold for third-party developers on the App Marketplace (onecloud §4).
        APP_SUBSCRIPTION = "app_subscription", "Marketplace app subscription"
        APP_ONE_TIME = "app_one_time", "Marketplace app, one-time or lifetime licence"
        APP_USAGE = "app_usage", "Marketplace app billed per use"
        APP_EXTERNAL = "app_external", "Marketplace app paid outside the portal"

    RECURRING_KINDS = frozenset(
        {Kind.SUBSCRIPTION, Kind.PREMIUM_FEATURE, Kind.SUPPORT_CONTRACT, Kind.APP_SUBSCRIPTION}
    )
    PER_USE_KINDS = frozenset({Kind.USAGE, Kind.APP_USAGE})
    APP_KINDS = frozenset(
        {Kind.APP_SUBSCRIPTION, Kind.APP_ONE_TIME, Kind.APP_USAGE, Kind.APP_EXTERNAL}
    )
    LICENSED_KINDS = frozenset({Kind.PERPETUAL_LICENSE, Kind.PLUGIN, Kind.APP_ONE_TIME})

    class Edition(models.TextChoices):
        NONE = "", "—"
        STARTUP = "startup", "Startup (free, self-hosted download)"
        PROFESSIONAL = "professional", "Professional"
        ENTERPRISE = "enterprise", "Enterprise"

    class Deployment(models.TextChoices):
        ANY = "any", "Cloud or on-premise"
        CLOUD = "cloud", "Cloud"
        ON_PREMISE = "on_premise", "On-premise"

    code = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    edition = models.CharField(max_length=20, choices=Edition.choices, blank=True, default="")
    deployment = models.CharField(max_length=20, choices=Deployment.choices, default="any")
    # Credit packs carry their unit count (100,000 sending credits...).
    units = models.PositiveIntegerField(null=True, blank=True)
    # What it needs to work (1CRM terms: the Customer Connection Portal for WordPress works
    # only with Professional or Enterprise): an edition at least this one, and a licence of
    # another product. Buying, activating and the entitlements follow them.
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
    requires_product = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="required_by"
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "name"]
        constraints = [
            models.CheckConstraint(
                # units IS NOT NULL explicitly: a CHECK whose result is unknown passes.
                condition=(
                    Q(kind="credit_pack", units__isnull=False, units__gt=0)
                    | (~Q(kind="credit_pack") & Q(units__isnull=True))
                ),
                name="product_units_only_for_credit_packs",
            ),
            models.CheckConstraint(
                condition=Q(edition="") | Q(kind__in=["subscription", "perpetual_license"]),
                name="product_edition_only_for_plans_and_licences",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def is_recurring(self) -> bool:
        return self.kind in self.RECURRING_KINDS


class Price(models.Model):
    """What a product costs in one currency: flat or per seat, monthly, yearly or once."""

    class Scheme(models.TextChoices):
        FLAT = "flat", "Flat"
        PER_SEAT = "per_seat", "Per seat"

    class Interval(models.TextChoices):
        MONTH = "month", "Monthly"
        YEAR = "year", "Yearly"
        ONE_OFF = "one_off", "One-off"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="prices")
    currency = models.CharField(max_length=3, choices=[(c, c) for c in CURRENCIES])
    amount = models.DecimalField(**AMOUNT)
    scheme = models.CharField(max_length=10, choices=Scheme.choices, default=Scheme.FLAT)
    interval = models.CharField(max_length=10, choices=Interval.choices)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["product", "currency", "interval"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="price_amount_not_negative"),
            models.UniqueConstraint(
                fields=["product", "currency", "interval", "scheme"],
                condition=Q(is_active=True),
                name="price_one_active_per_terms",
            ),
        ]

    def __str__(self):
        per = " per seat" if self.scheme == self.Scheme.PER_SEAT else ""
        every = {"month": " a month", "year": " a year", "one_off": ""}[self.interval]
        return f"{self.product.name}: {self.amount:.2f} {self.currency}{per}{every}"


class AppendOnlyError(Exception):
    pass


class LedgerEntry(models.Model):
    """One line of the account's credit ledger, in one currency. Never changed.

    `balance_after` is the running balance: the database refuses a negative one,
    and a unique (account, currency, sequence) makes two concurrent appends on
    the same balance impossible (the second one fails and is retried or refused).
    """

    class Kind(models.TextChoices):
        SEAT_CREDIT = "seat_credit", "Credit for seats removed"
        REFUND_CREDIT = "refund_credit", "Refund paid as account credit"
        ADJUSTMENT = "adjustment", "Adjustment by staff"
        ORDER_CANCELLED = "order_cancelled", "Credit returned from a cancelled order"
        APPLIED = "applied", "Applied to a charge"
        DUPLICATE_PAYMENT = "duplicate_payment", "Order paid twice: the second payment as credit"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="ledger_entries")
    currency = models.CharField(max_length=3, choices=[(c, c) for c in CURRENCIES])
    sequence = models.PositiveIntegerField()
    amount = models.DecimalField(**AMOUNT)
    balance_after = models.DecimalField(**AMOUNT)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    description = models.CharField(max_length=300)
    reference = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["account_id", "currency", "sequence"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "currency", "sequence"], name="ledger_sequence_unique"
            ),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="ledger_balance_not_negative"
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
        ]

    def __str__(self):
        return f"{self.account} {self.currency} #{self.sequence}: {self.amount:+}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("Ledger entries are never changed; post a correcting entry.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Ledger entries are never deleted; post a correcting entry.")


class SubscriptionQuerySet(models.QuerySet):
    def plans(self):
        """The account's SaaS plan (its seats paid and its licence screen follow it)."""
        return self.filter(price__product__kind=Product.Kind.SUBSCRIPTION)

    def addons(self):
        """Recurring add-ons bought from the catalogue: premium features, quota add-ons."""
        return self.exclude(
            price__product__kind__in=[Product.Kind.SUBSCRIPTION, Product.Kind.SUPPORT_CONTRACT]
        )

    def support_contracts(self):
        return self.filter(price__product__kind=Product.Kind.SUPPORT_CONTRACT)


class Subscription(models.Model):
    """A recurring product for an account. A per-seat plan's quantity is its seats paid.

    Periods are local dates of the account's time zone (policy windows are counted
    in them): the period runs from `current_period_start` up to, not including,
    `current_period_end`.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting first payment"
        TRIALING = "trialing", "Trial"
        ACTIVE = "active", "Active"
        LAPSED = "lapsed", "Lapsed (renewal not paid)"
        CANCELLED = "cancelled", "Cancelled"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="subscriptions")
    price = models.ForeignKey(Price, on_delete=models.PROTECT, related_name="subscriptions")
    quantity = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    current_period_start = models.DateField()
    current_period_end = models.DateField()
    trial_end = models.DateField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    # A downgrade waits for the next cycle (acelle §6).
    pending_price = models.ForeignKey(
        Price, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(current_period_end__gt=models.F("current_period_start")),
                name="subscription_period_not_empty",
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="subscription_quantity_min"),
        ]
        indexes = [
            # An account's subscriptions of a kind (its plan, its support contract: a few
            # prices), newest first, without reading its thousand add-ons.
            models.Index(
                fields=["account", "price", "-created_at"], name="subscription_account_price"
            ),
            # An account's next renewal day and what renews on it (selectors.next_charge),
            # read from the index alone, however many add-ons renew that day.
            models.Index(
                fields=["account", "current_period_end"],
                name="subscription_account_renewal",
                condition=Q(status__in=["active", "trialing"], cancel_at_period_end=False),
                include=["price", "pending_price", "quantity"],
            ),
            # The reminder sweep's windows (services/reminders.py) over live periods.
            models.Index(
                fields=["current_period_end"],
                name="subscription_live_period_end",
                condition=Q(status__in=["active", "trialing"], cancel_at_period_end=False),
            ),
        ]

    def __str__(self):
        return f"{self.price.product.name}, {self.quantity} seats, for {self.account}"

    @property
    def last_day(self):
        """The period's last day (the end date is the first day of the next)."""
        return self.current_period_end - timedelta(days=1)

    @property
    def seats_changeable(self) -> bool:
        return self.price.scheme == Price.Scheme.PER_SEAT and self.status in (
            self.Status.ACTIVE,
            self.Status.TRIALING,
        )


class Order(models.Model):
    """What an account buys at one moment: one or more lines, paid in one payment."""

    class Status(models.TextChoices):
        AWAITING_PAYMENT = "awaiting_payment", "Awaiting payment"
        PAID = "paid", "Paid"
        CANCELLED = "cancelled", "Cancelled"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="orders")
    number = models.CharField(max_length=20, unique=True)
    currency = models.CharField(max_length=3, choices=[(c, c) for c in CURRENCIES])
    status = models.CharField(max_length=20, choices=Status.choices)
    total = models.DecimalField(**AMOUNT)
    credit_applied = models.DecimalField(**AMOUNT, default=0)
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        # The account's orders newest first (the Billing pages' lists and their counts).
        indexes = [
            models.Index(
                fields=["account", "-created_at", "-id"],
                include=["status"],
                name="order_account_by_date",
            ),
            # Unpaid orders, oldest first (the overview; they block other changes).
            models.Index(
                fields=["account", "created_at", "id"],
                condition=Q(status="awaiting_payment"),
                name="order_account_unpaid",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative"),
            models.CheckConstraint(
                condition=Q(credit_applied__gte=0, credit_applied__lte=models.F("total")),
                name="order_credit_within_total",
            ),
        ]

    def __str__(self):
        return self.number

    @property
    def amount_due(self):
        return self.total - self.credit_applied

    @property
    def refunded(self):
        """What came back on the order's lines (from its prefetched lines, if any)."""
        return sum((line.refunded for line in self.lines.all()), 0)

    @property
    def next_attempt_at(self):
        """When the next automatic charge is made (from its prefetched payments)."""
        return max(
            (p.next_attempt_at for p in self.payments.all() if p.next_attempt_at), default=None
        )

    @property
    def refundable(self) -> bool:
        """Paid, with something still to ask back on one of its lines."""
        return self.status == self.Status.PAID and any(
            line.amount > 0 and line.refundable_left > 0 for line in self.lines.all()
        )


class OrderLine(models.Model):
    """One item of an order, with the facts the refund rules need."""

    class Delivery(models.TextChoices):
        NONE = "", "—"
        KEY_SENT = "key_sent", "Key sent"
        DOWNLOADED = "downloaded", "Downloaded or activated"
        ACCEPTED = "accepted", "Service delivered and accepted"

    class Effect(models.TextChoices):
        NONE = "", "—"
        ADD_SEATS = "add_seats", "Adds seats to the plan"
        RENEW = "renew", "Renews the plan for the line's period"
        CHANGE_PLAN = "change_plan", "Moves the plan to the line's price (upgrade)"
        START = "start", "Starts the plan for the line's period"
        LICENCE = "licence", "Issues a licence key for the line's users"
        CREDITS = "credits", "Adds the line's units to the credits left"
        ACTIVATE = "activate", "Activated the moment it is paid"
        USAGE = "usage", "Charges usage recorded in the line's period"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    effect = models.CharField(max_length=20, choices=Effect.choices, blank=True, default="")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    price = models.ForeignKey(
        Price, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.PROTECT, related_name="lines"
    )
    kind = models.CharField(max_length=20, choices=Product.Kind.choices)
    description = models.CharField(max_length=300)
    quantity = models.PositiveIntegerField(default=1)
    amount = models.DecimalField(**AMOUNT)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    first_purchase = models.BooleanField(default=True)
    # The developer's own refund window the line was sold under (onecloud §4: "unless
    # otherwise specified by the third-party developer"); kept as it was that day.
    refund_days = models.PositiveSmallIntegerField(null=True, blank=True)
    units = models.PositiveIntegerField(null=True, blank=True)
    units_used = models.PositiveIntegerField(default=0)
    activated_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivery = models.CharField(max_length=20, choices=Delivery.choices, blank=True, default="")
    # The tax charged on it, part of `amount` (what was paid): computed from the buyer's
    # billing country when ordered (billing.tax), kept as it was.
    tax_name = models.CharField(max_length=60, blank=True)
    tax_rate = models.DecimalField(max_digits=6, decimal_places=3, default=0)
    tax_amount = models.DecimalField(**AMOUNT, default=0)
    # What came back on it so far (to the card or as credit): the sum of its refunds
    # (LineRefund), never more than was paid for it.
    refunded = models.DecimalField(**AMOUNT, default=0)
    # A credit pack's unused units that a refund took back: they can no longer be used.
    units_refunded = models.PositiveIntegerField(default=0)
    # When a processed refund took back what it delivered (a quota add-on deactivated, a
    # key revoked, an add-on ended, a pack emptied).
    taken_back_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["order", "id"]
        indexes = [
            # Active one-off quota add-ons (Add-ons & apps), newest first.
            models.Index(
                fields=["-activated_at"],
                condition=Q(
                    kind="quota_addon",
                    activated_at__isnull=False,
                    subscription__isnull=True,
                    taken_back_at__isnull=True,
                ),
                name="orderline_quota_addons_active",
            )
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="line_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(units__isnull=True) | Q(units_used__lte=models.F("units")),
                name="line_units_used_within_units",
            ),
            models.CheckConstraint(
                condition=Q(refunded__gte=0, refunded__lte=models.F("amount")),
                name="line_refunded_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(tax_amount__gte=0, tax_amount__lte=models.F("amount")),
                name="line_tax_within_amount",
            ),
            models.CheckConstraint(
                condition=(
                    # units IS NOT NULL explicitly: a CHECK whose result is unknown passes.
                    Q(units__isnull=True, units_refunded=0)
                    | Q(
                        units__isnull=False,
                        units_used__lte=models.F("units") - models.F("units_refunded"),
                    )
                ),
                name="line_units_refunded_within_unused",
            ),
        ]

    def __str__(self):
        return self.description

    @property
    def refundable_left(self):
        """What can still come back on this line."""
        return self.amount - self.refunded

    @property
    def units_left(self) -> int | None:
        if self.units is None:
            return None
        return self.units - self.units_used - self.units_refunded


class Payment(models.Model):
    """Money asked of or received from a gateway for an order. The key is stored before the call."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        # Money taken for an order another payment had already paid: held as credit.
        DUPLICATE = "duplicate", "Paid twice: held as credit"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="payments")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    gateway = models.CharField(max_length=20)
    amount = models.DecimalField(**AMOUNT)
    currency = models.CharField(max_length=3, choices=[(c, c) for c in CURRENCIES])
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    idempotency_key = models.CharField(max_length=80, unique=True)
    reference = models.CharField(max_length=120, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    # Refunded back through the gateway so far: never more than the amount.
    refunded = models.DecimalField(**AMOUNT, default=0)
    # A failed charge's automatic retry (payment recovery: BILLING_PAYMENT_RETRY_DAYS);
    # cleared once the retry is made.
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["account", "-created_at", "-id"],
                include=["order", "status"],
                name="payment_account_by_date",
            ),
            # The retry sweep: failed payments whose next try is due.
            models.Index(
                fields=["next_attempt_at"],
                name="payment_retry_due",
                condition=Q(status="failed", next_attempt_at__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded__gte=0, refunded__lte=models.F("amount")),
                name="payment_refunded_within_amount",
            ),
            # One succeeded payment per order: money for an order is taken once.
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(status="succeeded"),
                name="payment_one_success_per_order",
            ),
        ]

    def __str__(self):
        return f"{self.gateway} {self.amount} {self.currency} ({self.status})"


class LineRefund(models.Model):
    """Money that came back on an order line, once it moved: to the original payment or as
    account credit. Written by billing.services.refund_record only, never changed.

    The line's `refunded` and the payment's `refunded` are the sums of these rows, and
    the database refuses either above what was paid. `key` makes a record once per
    payout and line: a replayed gateway notification records nothing twice.
    """

    class Method(models.TextChoices):
        ORIGINAL = "original", "Back to the original payment"
        CREDIT = "credit", "As account credit"

    line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="refunds")
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="line_refunds"
    )
    method = models.CharField(max_length=10, choices=Method.choices)
    amount = models.DecimalField(**AMOUNT)
    currency = models.CharField(max_length=3, choices=[(c, c) for c in CURRENCIES])
    reference = models.CharField(max_length=100)  # what the customer reads: RR-2026-000001
    key = models.CharField(max_length=120)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="line_refund_positive"),
            models.UniqueConstraint(fields=["key", "line"], name="line_refund_once_per_key"),
            models.CheckConstraint(
                condition=Q(method="original", payment__isnull=False)
                | Q(method="credit", payment__isnull=True),
                name="line_refund_payment_iff_original",
            ),
        ]

    def __str__(self):
        return f"{self.reference}: {self.amount} {self.currency} on {self.line}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("A refund record is never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("A refund record is never deleted.")

    def describe(self, tz=None) -> str:
        """What the customer reads: "Refunded 100.00 USD on 2 December 2026, RR-…"."""
        day = timezone.localtime(self.created_at, tz).date()
        how = " as account credit" if self.method == self.Method.CREDIT else ""
        return (
            f"Refunded {Money(self.amount, self.currency)}{how} on {day.day} {day:%B %Y}, "
            f"{self.reference}"
        )


class Licence(models.Model):
    """A licence key for users of self-hosted software (a perpetual licence or a plugin).

    The key is derived from the id under SECRET_KEY (billing.selectors.licence_key),
    never stored. Renouncing users (1CRM terms: renewing support for fewer users)
    lowers the users the key covers; a revoked key covers none.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REVOKED = "revoked", "Revoked"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="licences")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="licences")
    line = models.OneToOneField(OrderLine, on_delete=models.PROTECT, related_name="licence")
    users = models.PositiveIntegerField()
    renounced = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    issued_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["issued_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(renounced__lte=models.F("users")), name="licence_renounced_within_users"
            ),
        ]

    def __str__(self):
        return f"{self.product.name}: {self.users_covered} user(s) for {self.account}"

    @property
    def users_covered(self) -> int:
        return 0 if self.status == self.Status.REVOKED else self.users - self.renounced


class UsageRecord(models.Model):
    """Metered use (messages, calls, AI requests) on a day, charged with its month.

    `reference` makes a report idempotent: the same reference twice is one record.
    """

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="usage_records")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="usage_records")
    quantity = models.PositiveIntegerField()
    used_on = models.DateField()  # the account's local date
    reference = models.CharField(max_length=100)
    recorded_at = models.DateTimeField(default=timezone.now)
    # The price in force when it was used: a later price change bills only later use.
    price = models.ForeignKey(
        Price, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    line = models.ForeignKey(
        OrderLine, null=True, blank=True, on_delete=models.PROTECT, related_name="usage_records"
    )

    class Meta:
        ordering = ["used_on", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "reference"], name="usage_reference_unique_per_account"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="usage_quantity_positive"),
        ]
        indexes = [
            models.Index(fields=["account", "line", "used_on"]),
            # The hourly usage run's "what is due": unbilled usage before a day.
            models.Index(
                fields=["used_on", "account"],
                name="usage_unbilled_by_day",
                condition=Q(line__isnull=True),
            ),
        ]

    def __str__(self):
        return f"{self.quantity} x {self.product.name} on {self.used_on}"


class CreditUse(models.Model):
    """Units taken from the account's credit packs, oldest pack first; one per reference."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="credit_uses")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    units = models.PositiveIntegerField()
    reference = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "reference"], name="credit_use_reference_unique_per_account"
            ),
            models.CheckConstraint(condition=Q(units__gt=0), name="credit_use_units_positive"),
        ]

    def __str__(self):
        return f"{self.units} {self.product.name} units ({self.reference})"


class CreditPackBalance(models.Model):
    """The account's credit packs of one product, summed: units bought (in paid orders),
    used and taken back by refunds. Kept by billing.services.credit_balance whenever a
    pack's units change, so that pages read it instead of summing every pack; it always
    equals the sum over the paid packs' lines (credit_balance_recount)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    units = models.PositiveBigIntegerField(default=0)
    used = models.PositiveBigIntegerField(default=0)
    refunded = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["account", "product"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "product"], name="credit_pack_balance_once_per_product"
            ),
            models.CheckConstraint(
                condition=Q(used__lte=models.F("units") - models.F("refunded")),
                name="credit_pack_balance_within_units",
            ),
        ]

    def __str__(self):
        return f"{self.account_id}: {self.units - self.used - self.refunded} {self.product_id} left"


class BillingDetails(models.Model):
    """Who the account is on its invoices: legal name, address, tax ID, who gets billing mail."""

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, related_name="billing_details"
    )
    legal_name = models.CharField(max_length=200, blank=True)
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    region = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, blank=True)  # ISO 3166-1 alpha-2
    tax_id = models.CharField(max_length=40, blank=True)  # compact, validated for the country
    # Where receipts and credit notes go besides the owners and billing admins.
    billing_emails = models.JSONField(default=list, blank=True)
    po_reference = models.CharField(max_length=60, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "billing details"

    def __str__(self):
        return self.legal_name or str(self.account)

    def snapshot(self) -> dict:
        """The buyer as an invoice keeps them, the day it is issued."""
        return {
            "name": self.legal_name or self.account.name,
            "address": [
                line
                for line in (
                    self.address_line1,
                    self.address_line2,
                    " ".join(p for p in (self.postal_code, self.city) if p),
                    self.region,
                    self.country,
                )
                if line
            ],
            "tax_id": self.tax_id,
            "po_reference": self.po_reference,
        }


class DocumentSequence(models.Model):
    """The last number of a series in a year. Taken under a row lock in the transaction
    that issues the document: a rollback gives the number back, so the series has no gap."""

    series = models.CharField(max_length=4)  # INV, CN
    year = models.PositiveSmallIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["series", "year"], name="document_sequence_once")
        ]

    def __str__(self):
        return f"{self.series}-{self.year}: {self.last}"


class ImmutableDocument(models.Model):
    """An issued document never changes: corrections are credit notes."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("An issued document is never changed; issue a credit note.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("An issued document is never deleted.")


class Invoice(ImmutableDocument):
    """The invoice of a paid order, with the seller and the buyer as they were that day."""

    number = models.CharField(max_length=20, unique=True)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="invoices")
    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="invoice")
    issued_at = models.DateTimeField()
    currency = models.CharField(max_length=3, choices=[(c, c) for c in CURRENCIES])
    seller = models.JSONField()
    buyer = models.JSONField()
    subtotal = models.DecimalField(**AMOUNT)
    tax_total = models.DecimalField(**AMOUNT, default=0)
    total = models.DecimalField(**AMOUNT)
    credit_applied = models.DecimalField(**AMOUNT, default=0)
    amount_paid = models.DecimalField(**AMOUNT)  # by the payment (card, transfer)
    payment_method = models.CharField(max_length=60, blank=True)
    payment_reference = models.CharField(max_length=120, blank=True)
    paid_at = models.DateTimeField()

    class Meta:
        ordering = ["-issued_at", "-id"]
        indexes = [
            models.Index(
                fields=["account", "-issued_at", "-id"],
                include=["order"],
                name="invoice_account_by_date",
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(total=models.F("credit_applied") + models.F("amount_paid")),
                name="invoice_paid_by_credit_and_payment",
            ),
            models.CheckConstraint(
                condition=Q(total=models.F("subtotal") + models.F("tax_total")),
                name="invoice_total_is_subtotal_and_tax",
            ),
        ]

    def __str__(self):
        return self.number


class InvoiceLine(ImmutableDocument):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    order_line = models.OneToOneField(
        OrderLine, on_delete=models.PROTECT, related_name="invoice_line"
    )
    description = models.CharField(max_length=300)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)  # the last day, inclusive
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(**AMOUNT)
    amount = models.DecimalField(**AMOUNT)  # before tax
    tax_name = models.CharField(max_length=40, blank=True)
    tax_rate = models.DecimalField(max_digits=6, decimal_places=3, default=0)  # per cent
    tax_amount = models.DecimalField(**AMOUNT, default=0)
    total = models.DecimalField(**AMOUNT)

    class Meta:
        ordering = ["invoice", "id"]

    def __str__(self):
        return self.description


class CreditNote(ImmutableDocument):
    """Money given back on an invoiced order: to the card, or to the account's balance
    (split as Stripe splits one). `key` makes it once per refund or credit."""

    number = models.CharField(max_length=20, unique=True)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="credit_notes")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    issued_at = models.DateTimeField()
    currency = models.CharField(max_length=3, choices=[(c, c) for c in CURRENCIES])
    seller = models.JSONField()
    buyer = models.JSONField()
    reason = models.CharField(max_length=200)
    reference = models.CharField(max_length=100)  # RR-2026-000001, a seat change...
    key = models.CharField(max_length=120, unique=True)
    subtotal = models.DecimalField(**AMOUNT)
    tax_total = models.DecimalField(**AMOUNT, default=0)
    total = models.DecimalField(**AMOUNT)
    refunded_to_card = models.DecimalField(**AMOUNT, default=0)
    credited_to_balance = models.DecimalField(**AMOUNT, default=0)

    class Meta:
        ordering = ["-issued_at", "-id"]
        indexes = [models.Index(fields=["account", "-issued_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(total__gt=0), name="credit_note_positive"),
            models.CheckConstraint(
                condition=Q(total=models.F("refunded_to_card") + models.F("credited_to_balance")),
                name="credit_note_split_adds_up",
            ),
        ]

    def __str__(self):
        return self.number


class CreditNoteLine(ImmutableDocument):
    credit_note = models.ForeignKey(CreditNote, on_delete=models.PROTECT, related_name="lines")
    invoice_line = models.ForeignKey(
        InvoiceLine, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    description = models.CharField(max_length=300)
    amount = models.DecimalField(**AMOUNT)  # before tax
    tax_amount = models.DecimalField(**AMOUNT, default=0)
    total = models.DecimalField(**AMOUNT)

    class Meta:
        ordering = ["credit_note", "id"]

    def __str__(self):
        return self.description


class MailReminder(models.Model):
    """A reminder mail sent (or being sent): its unique key makes each one once, however
    often the job runs."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=30)
    key = models.CharField(max_length=120, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.key


class TaxRate(models.Model):
    """A tax the buyer's country (and region, where it has them) charges, from a date."""

    country = models.CharField(max_length=2)  # ISO 3166-1 alpha-2
    region = models.CharField(max_length=10, blank=True)  # "" for the whole country
    name = models.CharField(max_length=40)  # VAT, GST, Sales tax
    rate = models.DecimalField(max_digits=6, decimal_places=3)  # per cent
    valid_from = models.DateField()

    class Meta:
        ordering = ["country", "region", "-valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["country", "region", "valid_from"], name="tax_rate_once_per_start"
            ),
            models.CheckConstraint(
                condition=Q(rate__gte=0, rate__lte=100), name="tax_rate_between_0_and_100"
            ),
        ]

    def __str__(self):
        where = f"{self.country}-{self.region}" if self.region else self.country
        return f"{self.name} {self.rate}% in {where} from {self.valid_from}"
