#!/usr/bin/env python
"""Invoice PDFs rendered per second by one process, and the Billing page with 2,000 invoices.

    .venv/bin/python bench/invoices.py [--pdfs 50] [--requests 100]

Builds the account in a throwaway test database (SQLite in memory, or the PostgreSQL of
DATABASE_URL): 200 subscriptions, 2,000 paid orders and payments, each order with its
invoice. Prints the PDFs per second (WeasyPrint), and the Billing page's median and p95
server time and queries, beside a bare view's. Target: the page's p95 under 150 ms.
"""

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402


def build():
    from django.utils import timezone

    from billing.models import Invoice, InvoiceLine, Order
    from billing.services.documents import buyer_snapshot, seller_snapshot
    from tests.billing.scale import PAYMENTS, SUBSCRIPTIONS, catalogue, grow
    from tests.factories import AccountFactory, owner_of

    account = AccountFactory(name="Bench Corp", seats_paid=10)
    grow(account, catalogue(), subscriptions=SUBSCRIPTIONS, payments=PAYMENTS)
    seller, buyer, now = seller_snapshot(), buyer_snapshot(account), timezone.now()
    orders = list(Order.objects.filter(account=account, status="paid").prefetch_related("lines"))
    invoices = Invoice.objects.bulk_create(
        [
            Invoice(
                number=f"INV-2026-{n + 1:06d}",
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
        ]
    )
    InvoiceLine.objects.bulk_create(
        [
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
        ]
    )
    return owner_of(account), invoices[0]


def timed(client, url, requests):
    for _ in range(10):
        assert client.get(url).status_code == 200
    gc.freeze()
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        assert client.get(url).status_code == 200
        timings.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.95) - 1], len(queries)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdfs", type=int, default=50)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        from billing.models import Invoice
        from billing.pdf import invoice_pdf

        owner, invoice = build()
        invoice_pdf(invoice)  # loads WeasyPrint and the fonts once
        started = time.perf_counter()
        for _ in range(args.pdfs):
            invoice_pdf(Invoice.objects.get(pk=invoice.pk))
        elapsed = time.perf_counter() - started
        print(f"database: {connection.vendor}; {Invoice.objects.count():,} invoices")
        print(
            f"invoice PDFs: {args.pdfs / elapsed:.1f} a second ({elapsed / args.pdfs * 1000:.0f} ms each)"
        )
        client = Client()
        client.force_login(owner)
        for label, url in (
            ("bare view (/healthz)", "/healthz"),
            ("billing page", "/settings/billing/"),
        ):
            median, p95, queries = timed(client, url, args.requests)
            print(f"{label:22} median {median:6.1f} ms   p95 {p95:6.1f} ms   {queries} queries")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
