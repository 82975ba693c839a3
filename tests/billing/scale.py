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
from billing.services.credit_balance import credit_balance_recount

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
    credit_balance_recount(account.pk)  # as the services keep it when packs are paid
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


def invoice_paid_orders(account) -> list:
    """An invoice (with its lines) for each of the account's paid orders that has none, as
    the payment's receipt would issue it; the invoices, oldest order first."""
    from billing.models import Invoice, InvoiceLine
    from billing.services.documents import buyer_snapshot, seller_snapshot

    seller, buyer, now = seller_snapshot(), buyer_snapshot(account), timezone.now()
    orders = list(
        Order.objects.filter(account=account, status="paid", invoice__isnull=True)
        .order_by("created_at", "id")
        .prefetch_related("lines")
    )
    base = Invoice.objects.count()
    invoices = Invoice.objects.bulk_create(
        Invoice(
            number=f"INV-2026-{base + n + 1:06d}",
            account=account,
            order=order,
            issued_at=order.paid_at or now,
            currency=order.currency,
            seller=seller,
            buyer=buyer,
            subtotal=order.total,
            total=order.total,
            credit_applied=order.credit_applied,
            amount_paid=order.total - order.credit_applied,
            payment_method="Bank transfer",
            paid_at=order.paid_at or now,
        )
        for n, order in enumerate(orders)
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            order_line=line,
            description=line.description,
            quantity=line.quantity,
            unit_price=line.amount,
            amount=line.amount,
            total=line.amount,
        )
        for invoice, order in zip(invoices, orders, strict=True)
        for line in order.lines.all()
    )
    return invoices
