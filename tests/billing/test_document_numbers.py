"""Invoice numbers under 20 payments at once on PostgreSQL: no gap, no duplicate.
Skipped without PostgreSQL; CI runs it."""

import os
from decimal import Decimal

import pytest

from billing import services
from billing.models import Invoice, Price, Product
from tests.factories import AccountFactory, owner_of
from tests.races import assert_only_refusals, run_together

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL"
    ),
    pytest.mark.django_db(transaction=True),
]


def test_twenty_concurrent_payments_take_twenty_numbers_in_a_row(billing_staff):
    product = Product.objects.create(code="plugin", name="Plugin", kind="plugin")
    price = Price.objects.create(
        product=product, currency="USD", amount=Decimal("49"), interval="one_off"
    )
    orders = []
    for n in range(20):
        account = AccountFactory(name=f"Buyer {n}")
        orders.append(
            services.purchase_place(
                actor=owner_of(account), account=account, items=[{"price": price.pk}]
            )
        )

    def pay(order):
        return lambda: services.payment_record_manual(
            actor=billing_staff, order=order, reference=f"W-{order.pk}"
        )

    outcomes = run_together(*(pay(order) for order in orders))
    assert_only_refusals(outcomes)
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    year = numbers[0].split("-")[1]
    assert numbers == [f"INV-{year}-{n:06d}" for n in range(1, 21)]
