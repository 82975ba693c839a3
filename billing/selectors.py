from dataclasses import dataclass
from decimal import Decimal

from accounts.models import Account

from .ledger import CreditLot, allocate_oldest_first
from .models import LedgerEntry
from .money import Money


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
        Subscription.objects.filter(account=account)
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


def order_list(*, account: Account, limit: int | None = 50):
    from django.db.models import Prefetch

    from .models import Order, OrderLine

    orders = (
        Order.objects.filter(account=account)
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("id")))
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
