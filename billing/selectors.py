from dataclasses import dataclass
from decimal import Decimal

from accounts.models import Account

from .ledger import CreditLot, allocate_oldest_first
from .models import LedgerEntry
from .money import Money

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
    from .models import Subscription

    return (
        Subscription.objects.plans()
        .filter(account=account)
        .select_related("price__product", "pending_price__product")
        .order_by("-created_at")
        .first()
    )


def order_get(*, account: Account, order_id):
    from django.http import Http404

    from .models import Order

    order = Order.objects.filter(account=account, pk=order_id).first()
    if order is None:
        raise Http404("No such order.")
    return order


def order_list(*, account: Account, limit: int | None = PAGE_ROWS):
    from django.db.models import Prefetch

    from .models import Order, OrderLine, Payment

    orders = (
        Order.objects.filter(account=account)
        .prefetch_related(
            Prefetch("lines", queryset=OrderLine.objects.order_by("id")),
            Prefetch("payments", queryset=Payment.objects.order_by("-created_at", "-id")),
        )
        .order_by("-created_at", "-id")
    )
    return orders if limit is None else orders[:limit]


def plan_choices(*, subscription):
    """Plans the subscription can move to: same currency and interval, on sale."""
    from .models import Price, Product

    return (
        Price.objects.filter(
            is_active=True,
            product__is_active=True,
            product__kind=Product.Kind.SUBSCRIPTION,
            currency=subscription.price.currency,
            interval=subscription.price.interval,
            scheme=subscription.price.scheme,
        )
        .select_related("product")
        .order_by("amount", "product__name")
    )


def start_choices(*, account: Account):
    """Plans an account can start: monthly or yearly, in its currency, on sale."""
    from .models import Price, Product

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


def payment_list(*, account: Account, limit: int | None = PAGE_ROWS):
    """Payments, newest first, each with the order and lines it covered."""
    from django.db.models import Prefetch

    from .models import OrderLine, Payment

    payments = (
        Payment.objects.filter(account=account)
        .select_related("order")
        .prefetch_related(Prefetch("order__lines", queryset=OrderLine.objects.order_by("id")))
        .order_by("-created_at", "-id")
    )
    return payments if limit is None else payments[:limit]


def addon_list(*, account: Account):
    """Recurring add-ons (premium features, quota add-ons) and their periods."""
    from .models import Subscription

    return (
        Subscription.objects.addons()
        .filter(account=account)
        .exclude(status=Subscription.Status.CANCELLED)
        .select_related("price__product")
        .order_by("price__product__name", "-created_at")
    )


def quota_addons_active(*, account: Account):
    """One-off quota add-ons, active from the moment they were paid."""
    from .models import OrderLine, Product

    return (
        OrderLine.objects.filter(
            order__account=account,
            kind=Product.Kind.QUOTA_ADDON,
            activated_at__isnull=False,
            subscription__isnull=True,
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


def on_premise(*, account: Account, today) -> OnPremise | None:
    """Licences with their keys, and the support contract with today's renewal quote."""
    from accounts.errors import PortalError

    from . import licences as lic
    from .models import Licence

    rows = list(Licence.objects.filter(account=account).select_related("product", "line__order"))
    if not rows:
        return None
    licensed = sum(
        row.users_covered
        for row in rows
        if row.product.kind == "perpetual_license" and row.product.edition != "startup"
    )
    contract = lic.support_contract(account)
    renewal, refusal = None, ""
    if contract is not None and licensed:
        try:
            renewal = lic.support_renewal_quote(account=account, users=licensed, today=today)
        except PortalError as exc:
            refusal = exc.message
    return OnPremise(
        licences=[(row, lic.licence_key(row)) for row in rows],
        licensed=licensed,
        contract=contract,
        active=lic.support_is_active(contract, today),
        renewal=renewal,
        renewal_refusal=refusal,
    )
