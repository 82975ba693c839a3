"""Billing's reads: what pages, endpoints, jobs and the apps built on billing show or
check, each query shaped for its caller. No writes here: those are billing.services."""

import hashlib
import hmac
from collections import Counter
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    Min,
    Prefetch,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from accounts import selectors as account_selectors
from accounts.converters import parse_id
from accounts.errors import PortalError
from accounts.models import Account

from .ledger import CreditLot, allocate_oldest_first
from .models import (
    BillingDetails,
    CreditNote,
    CreditPackBalance,
    Invoice,
    LedgerEntry,
    Licence,
    LineRefund,
    Order,
    OrderLine,
    Payment,
    Price,
    Product,
    Subscription,
    UsageRecord,
)
from .money import Money
from .periods import SupportRenewal, support_renewal_period
from .quotes import tax_words
from .tax import tax_preview

# Orders and payments the Billing page lists, newest first; the API pages through all.
PAGE_ROWS = 25


@dataclass(frozen=True)
class LedgerView:
    balance: Money
    entries: list  # newest first, for the page
    lots: list[CreditLot]  # credits with what was taken from each, oldest first


def ledger_balance(*, account: Account, currency: str) -> Money:
    last = (
        LedgerEntry.objects.filter(account=account, currency=currency)
        .order_by("-sequence")
        .values_list("balance_after", flat=True)
        .first()
    )
    return Money(last if last is not None else Decimal(0), currency)


def ledger_view(*, account: Account, currency: str) -> LedgerView:
    entries = list(
        LedgerEntry.objects.filter(account=account, currency=currency).order_by("sequence")
    )
    balance = entries[-1].balance_after if entries else Decimal(0)
    return LedgerView(
        balance=Money(balance, currency),
        entries=entries[::-1],
        lots=allocate_oldest_first(entries),
    )


def subscription_current(*, account: Account):
    """The account's live plan (the per-seat subscription whose quantity is its seats)."""

    return (
        Subscription.objects.plans()
        .filter(account=account)
        .select_related("price__product", "pending_price__product")
        .order_by("-created_at")
        .first()
    )


def order_get(*, account: Account, order_id):
    order = Order.objects.filter(account=account, pk=order_id).first()
    if order is None:
        raise Http404("No such order.")
    return order


def _lines_with_refunds():
    return OrderLine.objects.order_by("id").prefetch_related(
        Prefetch("refunds", queryset=LineRefund.objects.order_by("created_at", "id"))
    )


def order_list(*, account: Account, limit: int | None = PAGE_ROWS, payments: bool = True):
    """Orders, newest first, with their lines and what came back on each, and (for the
    page's payment state) their payments."""
    orders = (
        Order.objects.filter(account=account)
        .prefetch_related(Prefetch("lines", queryset=_lines_with_refunds()))
        .order_by("-created_at", "-id")
    )
    if payments:
        orders = orders.prefetch_related(
            Prefetch("payments", queryset=Payment.objects.order_by("-created_at", "-id"))
        )
    return orders if limit is None else orders[:limit]


def plan_choices(*, subscription):
    """Plans the subscription can move to: same currency and interval, on sale; and
    the current plan, so that the selector shows it."""

    return (
        Price.objects.filter(
            Q(
                is_active=True,
                product__is_active=True,
                product__kind=Product.Kind.SUBSCRIPTION,
                currency=subscription.price.currency,
                interval=subscription.price.interval,
                scheme=subscription.price.scheme,
            )
            | Q(pk=subscription.price_id)
        )
        .select_related("product")
        .order_by("amount", "product__name")
    )


def start_choices(*, account: Account):
    """Plans an account can start: monthly or yearly, in its currency, on sale."""

    return (
        Price.objects.filter(
            is_active=True,
            product__is_active=True,
            product__kind=Product.Kind.SUBSCRIPTION,
            currency=account.currency,
            interval__in=[Price.Interval.MONTH, Price.Interval.YEAR],
        )
        .select_related("product")
        .order_by("interval", "amount", "product__name")
    )


def payment_list(*, account: Account, limit: int | None = PAGE_ROWS, refunds: bool = False):
    """Payments, newest first, each with the order and lines it covered (and, with
    `refunds`, what came back on each line)."""
    lines = _lines_with_refunds() if refunds else OrderLine.objects.order_by("id")
    payments = (
        Payment.objects.filter(account=account)
        .select_related("order")
        .prefetch_related(Prefetch("order__lines", queryset=lines))
        .order_by("-created_at", "-id")
    )
    return payments if limit is None else payments[:limit]


def addon_list(*, account: Account):
    """Recurring add-ons (premium features, quota add-ons) and their periods; marketplace
    apps are listed apart (app_subscription_list)."""

    return (
        Subscription.objects.addons()
        .filter(account=account)
        .exclude(status=Subscription.Status.CANCELLED)
        .exclude(price__product__kind__in=Product.APP_KINDS)
        .select_related("price__product")
        .order_by("price__product__name", "-created_at")
    )


def app_subscription_list(*, account: Account):
    """The marketplace apps the account subscribes to through billing."""
    return (
        Subscription.objects.filter(account=account, price__product__kind__in=Product.APP_KINDS)
        .exclude(status=Subscription.Status.CANCELLED)
        .select_related("price__product")
        .order_by("price__product__name", "-created_at")
    )


def order_unpaid_list(*, account: Account):
    """Orders that wait for a payment, oldest first: they block other changes."""
    return Order.objects.filter(account=account, status=Order.Status.AWAITING_PAYMENT).order_by(
        "created_at", "id"
    )


@dataclass(frozen=True)
class NextCharge:
    on: date  # the day the renewals are charged
    total: Money  # tax included, before any credit
    what: list[str]  # the products renewed that day, each once, with its count if > 1
    renewals: int  # how many subscriptions renew that day


def next_charge(*, account: Account, today: date) -> NextCharge | None:
    """The next renewal day of the account's live subscriptions and what it charges."""
    live = Subscription.objects.filter(
        account=account,
        status__in=[Subscription.Status.ACTIVE, Subscription.Status.TRIALING],
        cancel_at_period_end=False,
        current_period_end__gte=today,
    ).exclude(price__product__kind=Product.Kind.APP_EXTERNAL)
    first = (
        live.select_related("price", "pending_price").order_by("current_period_end", "id").first()
    )
    if first is None:
        return None
    on = first.current_period_end
    currency = (first.pending_price or first.price).currency
    # Every subscription renewing that day is summed, in groups of one product, price
    # and quantity (an account with a thousand add-ons renews them all on one day).
    due = (
        live.filter(current_period_end=on)
        .annotate(
            renew_amount=Coalesce("pending_price__amount", "price__amount"),
            renew_scheme=Coalesce("pending_price__scheme", "price__scheme"),
            renew_currency=Coalesce("pending_price__currency", "price__currency"),
            renew_name=Coalesce("pending_price__product__name", "price__product__name"),
        )
        .filter(renew_currency=currency)
        .values("renew_name", "renew_amount", "renew_scheme", "quantity")
        .annotate(renewals=Count("id"), first=Min("id"))
        .order_by("first")
    )
    names, charges = Counter(), Counter()
    for row in due:
        per = row["quantity"] if row["renew_scheme"] == Price.Scheme.PER_SEAT else 1
        charges[row["renew_amount"] * per] += row["renewals"]
        names[row["renew_name"]] += row["renewals"]
    net = Money.zero(currency)
    for charge, times in charges.items():  # each subscription's charge rounded, as billed
        net = net + Money(charge, currency).rounded() * times
    _, total, _ = tax_preview(account, net, on)
    return NextCharge(
        on=on,
        total=total,
        what=[
            name if times == 1 else f"{name} \N{MULTIPLICATION SIGN} {times:,}"
            for name, times in names.items()
        ],
        renewals=sum(names.values()),
    )


def line_refunds(*, line_ids) -> dict[int, list[LineRefund]]:
    """What came back on each line, oldest first."""
    found: dict[int, list[LineRefund]] = {}
    for row in LineRefund.objects.filter(line_id__in=list(line_ids)).order_by("created_at", "pk"):
        found.setdefault(row.line_id, []).append(row)
    return found


def quota_addons_active(*, account: Account):
    """One-off quota add-ons, active from the moment they were paid until a refund takes
    them back."""
    return (
        OrderLine.objects.filter(
            order__account=account,
            kind=Product.Kind.QUOTA_ADDON,
            activated_at__isnull=False,
            subscription__isnull=True,
            taken_back_at__isnull=True,
        )
        .select_related("order")
        .order_by("-activated_at")
    )


@dataclass(frozen=True)
class OnPremise:
    licences: list  # (licence, key)
    licensed: int
    contract: object  # Subscription | None
    active: bool
    renewal: object  # SupportRenewalQuote | None
    renewal_refusal: str  # why no renewal can be quoted today

    @property
    def is_on_premise(self) -> bool:
        """Perpetual licences or a support contract: a self-hosted system. Plugin keys
        alone (a cloud account's) are not."""
        return self.contract is not None or any(
            licence.product.kind == Product.Kind.PERPETUAL_LICENSE for licence, _ in self.licences
        )


def on_premise(*, account: Account, today) -> OnPremise | None:
    """Licences with their keys, and the support contract with today's renewal quote."""
    rows = list(Licence.objects.filter(account=account).select_related("product", "line__order"))
    if not rows:
        return None
    licensed = sum(
        row.users_covered
        for row in rows
        if row.product.kind == "perpetual_license" and row.product.edition != "startup"
    )
    contract = support_contract(account)
    renewal, refusal = None, ""
    if contract is not None and licensed:
        try:
            renewal = support_renewal_quote(account=account, users=licensed, today=today)
        except PortalError as exc:
            refusal = exc.message
    return OnPremise(
        licences=[(row, licence_key(row)) for row in rows],
        licensed=licensed,
        contract=contract,
        active=support_is_active(contract, today),
        renewal=renewal,
        renewal_refusal=refusal,
    )


def account_today(account: Account, now=None) -> date:
    """Today in the account's zone: windows and periods are counted in its local dates."""
    return timezone.localtime(now or timezone.now(), account.tzinfo).date()


def seats_paid_owned_by_plan(account: Account) -> str | None:
    """Registered with accounts: staff do not set seats paid by hand once a plan owns them."""

    if licensed_users(account) is not None:
        return "Seats paid follow the account's licences: buy or renounce licensed users."
    if (
        Subscription.objects.plans()
        .filter(account=account)
        .exclude(status=Subscription.Status.CANCELLED)
        .exists()
    ):
        return "Seats paid follow the account's plan: change the seats on its subscription."
    return None


def plan_keeps_licence_screen(account: Account) -> str | None:
    """Registered with accounts: no active account without a live plan once it had one."""
    newest = Subscription.objects.plans().filter(account=account).order_by("-created_at").first()
    if newest is not None and newest.status in (
        Subscription.Status.LAPSED,
        Subscription.Status.CANCELLED,
    ):
        return (
            f"The account's plan is {newest.get_status_display().lower()}: it stays on the "
            "licence screen until a plan is paid (our terms of service)."
        )
    return None


def order_open_for(subscription: Subscription) -> Order | None:
    return (
        Order.objects.filter(status=Order.Status.AWAITING_PAYMENT, lines__subscription=subscription)
        .order_by("pk")
        .first()
    )


def subscription_live(account: Account) -> Subscription | None:
    return (
        Subscription.objects.plans()
        .filter(account=account)
        .exclude(status=Subscription.Status.CANCELLED)
        .first()
    )


def trial_available(account: Account) -> bool:
    """A trial is for an account's first plan only."""
    return not Subscription.objects.plans().filter(account=account).exists()


PURCHASABLE_KINDS = (
    Product.Kind.PREMIUM_FEATURE,
    Product.Kind.QUOTA_ADDON,
    Product.Kind.CREDIT_PACK,
    Product.Kind.PERPETUAL_LICENSE,
    Product.Kind.PLUGIN,
    Product.Kind.SERVICE,
)


def catalogue(*, account: Account):
    """What the account can buy on the Billing page, in its currency and for how it runs:
    a cloud account is not offered on-premise items, nor an on-premise one cloud items."""
    prices = (
        Price.objects.filter(
            is_active=True,
            product__is_active=True,
            product__kind__in=PURCHASABLE_KINDS,
            currency=account.currency,
        )
        .select_related("product")
        .order_by("product__kind", "product__name", "interval")
    )
    if licensed_users(account) is not None:
        return prices.exclude(product__deployment=Product.Deployment.CLOUD)
    if (
        Subscription.objects.plans()
        .filter(account=account)
        .exclude(status=Subscription.Status.CANCELLED)
        .exists()
    ):
        return prices.exclude(product__deployment=Product.Deployment.ON_PREMISE)
    return prices


@dataclass(frozen=True)
class CreditBalance:
    product: Product
    units: int
    used: int
    refunded: int = 0  # unused units taken back by refunds

    @property
    def left(self) -> int:
        return self.units - self.used - self.refunded


def credit_packs_paid(account: Account):
    return OrderLine.objects.filter(
        order__account=account,
        order__status=Order.Status.PAID,
        kind=Product.Kind.CREDIT_PACK,
        units__isnull=False,
    )


def credits_left(*, account: Account) -> list[CreditBalance]:
    """Per pack product: the balance billing's services keep (CreditPackBalance), one row
    each, not a sum over every pack bought."""
    rows = (
        CreditPackBalance.objects.filter(account=account)
        .select_related("product")
        .order_by("product_id")
    )
    return [
        CreditBalance(product=row.product, units=row.units, used=row.used, refunded=row.refunded)
        for row in rows
    ]


def usage_price(account: Account, product: Product) -> Price | None:
    return (
        Price.objects.filter(
            product=product,
            product__kind__in=Product.PER_USE_KINDS,
            currency=account.currency,
            is_active=True,
        )
        .order_by("pk")
        .first()
    )


@dataclass(frozen=True)
class UsageSummary:
    product: Product
    price: Price | None
    quantity: int  # this month so far
    unbilled_before: int  # earlier months not yet charged

    @property
    def estimate(self) -> Money | None:
        if self.price is None:
            return None
        return (Money(self.price.amount, self.price.currency) * self.quantity).rounded()


def usage_summary(*, account: Account, today: date) -> list[UsageSummary]:
    first = today.replace(day=1)
    rows = (
        UsageRecord.objects.filter(account=account)
        .filter(used_on__gte=first)
        .values("product")
        .annotate(total=Sum("quantity"))
    )
    earlier = dict(
        UsageRecord.objects.filter(account=account, line__isnull=True, used_on__lt=first)
        .values("product")
        .annotate(total=Sum("quantity"))
        .values_list("product", "total")
    )
    current = {row["product"]: row["total"] for row in rows}
    ids = set(current) | set(earlier)
    products = Product.objects.in_bulk(ids)
    prices = {
        price.product_id: price
        for price in Price.objects.filter(
            product_id__in=ids, currency=account.currency, is_active=True
        )
    }
    return [
        UsageSummary(
            product=products[pk],
            price=prices.get(pk),
            quantity=current.get(pk, 0),
            unbilled_before=earlier.get(pk, 0),
        )
        for pk in sorted(ids)
    ]


def support_incident_price_row(account: Account) -> Price | None:
    """The catalogue's price of an extra support incident in the account's currency."""
    return (
        Price.objects.filter(
            is_active=True,
            product__is_active=True,
            product__kind=Product.Kind.SUPPORT_INCIDENT,
            currency=account.currency,
        )
        .select_related("product")
        .order_by("pk")
        .first()
    )


def support_incident_price(account: Account) -> Money | None:
    price = support_incident_price_row(account)
    return Money(price.amount, price.currency).rounded() if price else None


def licence_key_digest(pk: int) -> str:
    mac = hmac.new(
        settings.SECRET_KEY.encode(), f"licence:{pk}".encode(), hashlib.sha256
    ).hexdigest()
    return mac[:24].upper()


def licence_key(licence: Licence) -> str:
    """The key a self-hosted system activates with; derived, never stored."""
    digest = licence_key_digest(licence.pk)
    groups = "-".join(digest[i : i + 6] for i in range(0, 24, 6))
    return f"LIC-{licence.pk:06d}-{groups}"


def licence_from_key(key: str) -> Licence | None:
    parts = (key or "").strip().upper().split("-")
    pk = parse_id(parts[1]) if len(parts) == 6 and len(parts[1]) <= 12 else None
    if parts[0] != "LIC" or pk is None:
        return None
    if not hmac.compare_digest("".join(parts[2:]), licence_key_digest(pk)):
        return None
    return Licence.objects.select_related("account", "product", "line").filter(pk=pk).first()


def licensed_users(account: Account) -> int | None:
    """Users the account's perpetual licences cover; None for an account without any."""
    # The free Startup Edition has no support (1CRM terms): it is not counted here.
    rows = Licence.objects.filter(
        account=account, product__kind=Product.Kind.PERPETUAL_LICENSE
    ).exclude(product__edition=Product.Edition.STARTUP)
    if not rows.exists():
        return None
    covered = rows.filter(status=Licence.Status.ACTIVE).aggregate(
        total=Sum(F("users") - F("renounced"))
    )["total"]
    return covered or 0


def support_contract(account: Account) -> Subscription | None:
    """The account's support contract for its licences: the newest one."""

    # A contract that never started (its first order cancelled) does not count, and a
    # running one wins over one that ended. The account's few contracts are read first
    # (index subscription_account_price), then whether they started: one EXISTS over
    # the order lines let PostgreSQL scan every account's lines for a 'start'.
    contracts = list(
        Subscription.objects.support_contracts()
        .filter(account=account)
        .exclude(status=Subscription.Status.PENDING)
        .annotate(
            rank=Case(
                When(status=Subscription.Status.ACTIVE, then=Value(0)),
                When(status=Subscription.Status.LAPSED, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
        )
        .select_related("price__product")
        .order_by("rank", "-created_at", "-id")
    )
    if not contracts:
        return None
    started = set(
        OrderLine.objects.filter(
            subscription__in=contracts,
            effect=OrderLine.Effect.START,
            order__paid_at__isnull=False,
        ).values_list("subscription_id", flat=True)
    )
    return next((contract for contract in contracts if contract.pk in started), None)


def support_is_active(contract: Subscription | None, today: date) -> bool:
    return (
        contract is not None
        and contract.status == Subscription.Status.ACTIVE
        and contract.current_period_start <= today < contract.current_period_end
    )


def support_seat_refusal(account: Account) -> str | None:
    """Registered with accounts: no seat is given on-premise without active support."""
    if licensed_users(account) is None:
        return None

    contract = support_contract(account)
    if support_is_active(contract, account_today(account)):
        return None
    since = f" since {contract.current_period_end:%d %B %Y}" if contract else ""
    return (
        f"{account.name}'s support contract is not active{since}: renew it under Account "
        "Settings > Billing before adding or activating users (our terms of service, on-premise licences)."
    )


def support_price(currency: str) -> Price | None:
    """The per-user yearly support price the catalogue sells in a currency."""
    return (
        Price.objects.filter(
            is_active=True,
            product__is_active=True,
            product__kind=Product.Kind.SUPPORT_CONTRACT,
            currency=currency,
            interval=Price.Interval.YEAR,
            scheme=Price.Scheme.PER_SEAT,
        )
        .select_related("product")
        .order_by("amount", "pk")
        .first()
    )


# Renewing ahead of the expiry is offered in its last days only, so that one
# contract is not paid years ahead by a double click.
EARLY_RENEWAL_DAYS = 90


@dataclass(frozen=True)
class SupportRenewalQuote:
    contract: Subscription
    users: int
    licensed: int
    period: SupportRenewal
    amount: Money
    tax: Money | None = None  # on `amount`, from the billing country (billing.tax)
    tax_name: str = ""

    @property
    def renounced(self) -> int:
        return max(self.licensed - self.users, 0)

    def explain(self) -> str:
        months = self.period.months_billed
        text = (
            f"Support for {self.users} user(s) from {self.period.start:%d %B %Y} to "
            f"{self.period.end:%d %B %Y} ({months} months): {self.amount}."
            + tax_words(self.amount, self.tax, self.tax_name)
        )
        if self.period.arrears_days:
            text += (
                f" A renewal after the expiry runs from the expiry date, at most 12 months "
                f"back, to 12 months after the end of this month (our terms of service): it covers "
                f"{self.period.arrears_days} days before today."
            )
        if self.renounced:
            text += (
                f" Renewing for {self.users} of your {self.licensed} licensed users means "
                f"renouncing {self.renounced} user licence(s) for good (our terms of service)."
            )
        return text


def support_renewal_quote(*, account: Account, users: int, today: date) -> SupportRenewalQuote:
    contract = support_contract(account)
    licensed = licensed_users(account)
    if contract is None or licensed is None:
        raise PortalError(f"{account.name} has no on-premise support contract.", field="users")
    if not isinstance(users, int) or isinstance(users, bool) or users < 1:
        raise PortalError("Give a whole number of users, at least 1.", field="users")
    if users > licensed:
        raise PortalError(
            f"Support covers licensed users: {licensed} are licensed. Buy more user "
            "licences to cover more.",
            field="users",
        )
    if users < licensed:
        usage = account_selectors.seat_usage(account=account, now=timezone.now())
        if users < usage.used:
            raise PortalError(
                f"{usage.describe()}: renew for at least {usage.used} users, or take seats "
                "from members first.",
                field="users",
            )
    if contract.status == Subscription.Status.ACTIVE:
        days_left = (contract.current_period_end - today).days
        if days_left > EARLY_RENEWAL_DAYS:
            raise PortalError(
                f"Support runs until {contract.last_day:%d %B %Y}; it can be renewed in its "
                f"last {EARLY_RENEWAL_DAYS} days.",
                field="users",
            )
    period = support_renewal_period(expired_on=contract.current_period_end, renewed_on=today)
    price = contract.price
    # Billed by the month: a year's price per user, times the months covered, over 12.
    amount = (
        Money(price.amount, price.currency) * users * period.months_billed / Decimal(12)
    ).rounded()
    tax, _, name = tax_preview(account, amount, today)
    return SupportRenewalQuote(
        contract=contract,
        users=users,
        licensed=licensed,
        period=period,
        amount=amount,
        tax=tax if name else None,
        tax_name=name,
    )


# --- Entitlements: what an account may use, and what a product needs (1CRM terms) --------

EDITION_RANK = {"": 0, "startup": 0, "professional": 1, "enterprise": 2}
EDITION_NEEDS = {
    "professional": "1CRM Professional or Enterprise Edition",
    "enterprise": "1CRM Enterprise Edition",
}


def _refunded_subscriptions(without_lines):
    """The subscriptions whose own period (start or renewal) is among `without_lines`."""
    return OrderLine.objects.filter(
        pk__in=list(without_lines),
        effect__in=[OrderLine.Effect.START, OrderLine.Effect.RENEW],
        subscription__isnull=False,
    ).values("subscription_id")


def account_edition(account: Account, *, without_lines=()) -> str:
    """The edition the account runs now: its cloud plan's (trial, active or lapsed), else
    the best of its active on-premise licences; "" for none. `without_lines`: as if the
    licences or plans those order lines paid for were refunded."""
    plan = (
        Subscription.objects.plans()
        .filter(
            account=account,
            status__in=[
                Subscription.Status.TRIALING,
                Subscription.Status.ACTIVE,
                Subscription.Status.LAPSED,
            ],
        )
        .exclude(pk__in=_refunded_subscriptions(without_lines))
        .select_related("price__product")
        .order_by("-created_at")
        .first()
    )
    if plan is not None:
        return plan.price.product.edition
    editions = (
        Licence.objects.filter(
            account=account,
            status=Licence.Status.ACTIVE,
            product__kind=Product.Kind.PERPETUAL_LICENSE,
        )
        .exclude(line_id__in=list(without_lines))
        .values_list("product__edition", flat=True)
    )
    return max(editions, key=EDITION_RANK.get, default="")


def holds_product(account: Account, product: Product, *, without_lines=()) -> bool:
    licences = Licence.objects.filter(
        account=account, product=product, status=Licence.Status.ACTIVE
    ).exclude(line_id__in=list(without_lines))
    plans = Subscription.objects.filter(
        account=account,
        price__product=product,
        status__in=[Subscription.Status.TRIALING, Subscription.Status.ACTIVE],
    ).exclude(pk__in=_refunded_subscriptions(without_lines))
    return licences.exists() or plans.exists()


def entitlement_refusal(
    account: Account, product: Product, *, edition: str | None = None, without_lines=()
) -> str | None:
    """Why `product` cannot work for the account (so cannot be bought or activated), or
    None. `edition` overrides the account's (a plan change's preview)."""
    need = product.requires_edition
    if need:
        have = account_edition(account, without_lines=without_lines) if edition is None else edition
        if EDITION_RANK.get(have, 0) < EDITION_RANK[need]:
            runs = dict(Product.Edition.choices).get(have) if have else None
            return (
                f"{product.name} works only with {EDITION_NEEDS[need]} (our terms of service); "
                + (f"{account.name} runs {runs}." if runs else f"{account.name} has neither.")
            )
    required = product.requires_product
    if required is not None and not holds_product(account, required, without_lines=without_lines):
        return f"{product.name} works only with a {required.name} licence, which {account.name} does not hold."
    return None


def entitled_products(account: Account) -> list[Product]:
    """Products the account holds a live licence of that have requirements: the ones an
    edition change or a refund could stop."""
    return list(
        Product.objects.filter(
            Q(requires_edition__gt="") | Q(requires_product__isnull=False),
            licences__account=account,
            licences__status=Licence.Status.ACTIVE,
        )
        .select_related("requires_product")
        .distinct()
    )


def entitlements_lost(
    account: Account, *, edition: str | None = None, without_lines=()
) -> list[str]:
    """What would stop working after a change (a plan to `edition`, a refund of the
    lines `without_lines`), in words for its preview."""
    lost = []
    refunded = set(
        Licence.objects.filter(line_id__in=list(without_lines)).values_list("product_id", flat=True)
    )
    for product in entitled_products(account):
        if product.pk in refunded:
            continue  # the refund takes this very licence back: it says so itself
        why = entitlement_refusal(account, product, edition=edition, without_lines=without_lines)
        if why:
            lost.append(f"{product.name} stops working: {why}")
    return lost


# --- Invoices and credit notes --------------------------------------------------------


def invoice_list(*, account: Account, limit: int | None = PAGE_ROWS):
    rows = (
        Invoice.objects.filter(account=account)
        .select_related("order")
        .order_by("-issued_at", "-pk")
    )
    return rows[:limit] if limit else rows


def credit_note_list(*, account: Account, limit: int | None = PAGE_ROWS):
    rows = (
        CreditNote.objects.filter(account=account)
        .select_related("invoice")
        .order_by("-issued_at", "-pk")
    )
    return rows[:limit] if limit else rows


def invoice_get(*, account: Account, number: str) -> Invoice:
    invoice = (
        Invoice.objects.filter(account=account, number=number)
        .select_related("order", "account")
        .prefetch_related("lines", "credit_notes")
        .first()
    )
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice


def credit_note_get(*, account: Account, number: str) -> CreditNote:
    note = (
        CreditNote.objects.filter(account=account, number=number)
        .select_related("invoice", "account")
        .prefetch_related("lines")
        .first()
    )
    if note is None:
        raise Http404("No such credit note.")
    return note


def billing_details_get(*, account: Account) -> BillingDetails:
    return BillingDetails.objects.filter(account=account).first() or BillingDetails(account=account)
