"""An account at scale: 200 subscriptions, 2,000 paid orders with their payments, add-ons,
licences, credit packs and usage. Shared by the query-count tests and bench/billing_page.py."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from billing.models import (
    Licence,
    Order,
    OrderLine,
    Payment,
    Price,
    Product,
    Subscription,
    UsageRecord,
)

SUBSCRIPTIONS, PAYMENTS = 200, 2000


def _price(code, kind, amount, interval, scheme="flat", units=None):
    product = Product.objects.create(code=code, name=code.title(), kind=kind, units=units)
    return Price.objects.create(
        product=product, currency="USD", amount=Decimal(amount), scheme=scheme, interval=interval
    )


def catalogue():
    return {
        "plan": _price("pro", "subscription", "29", "month", scheme="per_seat"),
        "feature": _price("feature", "premium_feature", "15", "month"),
        "credits": _price("credits", "credit_pack", "100", "one_off", units=1000),
        "plugin": _price("plugin", "plugin", "49", "one_off"),
        "sms": _price("sms", "usage", "0.04", "month"),
    }


def grow(account, prices, *, subscriptions: int, payments: int) -> None:
    today = timezone.localdate()
    start = today.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    Subscription.objects.bulk_create(
        Subscription(
            account=account,
            price=prices["feature"] if i % 2 else prices["plan"],
            quantity=1,
            current_period_start=start,
            current_period_end=end,
            status="active" if i % 2 else "cancelled",
        )
        for i in range(subscriptions)
    )
    now = timezone.now()
    base = Order.objects.count()
    orders = Order.objects.bulk_create(
        Order(
            account=account,
            number=f"ORD-Q-{base + i:06d}",
            currency="USD",
            status="paid",
            total=Decimal("100"),
            created_at=now - timedelta(minutes=i),
            paid_at=now,
        )
        for i in range(payments)
    )
    kinds = ["credits", "plugin", "plan"]
    lines = OrderLine.objects.bulk_create(
        OrderLine(
            order=order,
            product=prices[kinds[i % 3]].product,
            price=prices[kinds[i % 3]],
            kind=prices[kinds[i % 3]].product.kind,
            description="item",
            quantity=1,
            amount=Decimal("100"),
            units=1000 if i % 3 == 0 else None,
            units_used=10 if i % 3 == 0 else 0,
        )
        for i, order in enumerate(orders)
    )
    Payment.objects.bulk_create(
        Payment(
            account=account,
            order=order,
            gateway="manual",
            amount=Decimal("100"),
            currency="USD",
            status="succeeded",
            idempotency_key=f"q-{order.pk}",
            reference=f"BANK-{order.pk}",
            succeeded_at=now,
        )
        for order in orders
    )
    Licence.objects.bulk_create(
        Licence(account=account, product=line.product, line=line, users=1)
        for line in lines[1::3][:50]
    )
    UsageRecord.objects.bulk_create(
        UsageRecord(
            account=account,
            product=prices["sms"].product,
            quantity=3,
            used_on=today,
            reference=f"u-{base}-{i}",
        )
        for i in range(100)
    )
