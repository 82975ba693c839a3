#!/usr/bin/env python
"""Server time of the Billing page for an account with 200 subscriptions and 2,000 payments.

    .venv/bin/python bench/billing_page.py [--requests 200]

Builds the account in a throwaway test database (SQLite in memory, or the
PostgreSQL of DATABASE_URL), renders the page through Django's test client,
and prints the median and p95 time and the query count. Target: p95 < 150 ms.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402


def build():
    from billing.models import Order, OrderLine, Payment, Price, Product, Subscription
    from tests.factories import AccountFactory, owner_of

    account = AccountFactory(name="Bench Corp", seats_paid=10)
    product = Product.objects.create(code="pro", name="Professional", kind="subscription")
    price = Price.objects.create(
        product=product, currency="USD", amount=Decimal("29"), scheme="per_seat", interval="month"
    )
    start = date.today().replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    Subscription.objects.bulk_create(
        Subscription(
            account=account,
            price=price,
            quantity=10,
            current_period_start=start,
            current_period_end=end,
            status="cancelled" if i else "active",
        )
        for i in range(200)
    )
    now = timezone.now()
    orders = Order.objects.bulk_create(
        Order(
            account=account,
            number=f"ORD-B-{i:06d}",
            currency="USD",
            status="paid",
            total=Decimal("29"),
            created_at=now - timedelta(hours=i),
            paid_at=now,
        )
        for i in range(2000)
    )
    OrderLine.objects.bulk_create(
        OrderLine(
            order=o,
            product=product,
            price=price,
            kind="subscription",
            description="1 more seat",
            quantity=1,
            amount=Decimal("29"),
        )
        for o in orders
    )
    Payment.objects.bulk_create(
        Payment(
            account=account,
            order=o,
            gateway="manual",
            amount=Decimal("29"),
            currency="USD",
            status="succeeded",
            idempotency_key=f"bench-{o.pk}",
        )
        for o in orders
    )
    return owner_of(account)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        client = Client()
        client.force_login(build())
        url = reverse("settings_billing")
        for _ in range(10):  # warm caches and templates
            assert client.get(url).status_code == 200
        timings = []
        for _ in range(args.requests):
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        timings.sort()
        p95 = timings[int(len(timings) * 0.95) - 1]
        print(f"database: {connection.vendor}")
        print("account: 200 subscriptions, 2,000 orders with 2,000 payments")
        print(
            f"billing page over {args.requests} requests: median "
            f"{statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, "
            f"{len(queries.captured_queries)} queries (target: p95 < 150 ms)"
        )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
