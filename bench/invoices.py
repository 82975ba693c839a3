#!/usr/bin/env python
"""Invoice PDFs rendered per second by one process, for an account with 2,000 invoices.

    .venv/bin/python bench/invoices.py [--pdfs 50]

Builds the account in a throwaway test database (SQLite in memory, or the PostgreSQL of
DATABASE_URL): 200 subscriptions, 2,000 paid orders and payments, each order with its
invoice (tests/billing/scale.py), then ANALYZE. Prints the PDFs per second (WeasyPrint);
the issue gives this figure no target. The Billing pages that list these invoices are
measured under gunicorn by bench/billing_page.py.
"""

import argparse
import time

from _common import analyze, database_label, django_setup, report, throwaway_database

django_setup()


def build():
    from tests.billing.scale import PAYMENTS, SUBSCRIPTIONS, catalogue, grow, invoice_paid_orders
    from tests.factories import AccountFactory

    account = AccountFactory(name="Bench Corp", seats_paid=10)
    grow(account, catalogue(), subscriptions=SUBSCRIPTIONS, payments=PAYMENTS)
    return invoice_paid_orders(account)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdfs", type=int, default=50)
    args = parser.parse_args()
    with throwaway_database():
        from billing.models import Invoice
        from billing.pdf import invoice_pdf

        invoice = build()[0]
        analyze()
        invoice_pdf(invoice)  # loads WeasyPrint and the fonts once
        started = time.perf_counter()
        for _ in range(args.pdfs):
            invoice_pdf(Invoice.objects.get(pk=invoice.pk))
        elapsed = time.perf_counter() - started
        print(f"database: {database_label()}; {Invoice.objects.count():,} invoices")
        print(f"invoice PDFs: {elapsed / args.pdfs * 1000:.0f} ms each")
        report("invoices", "invoice PDFs a second", args.pdfs / elapsed, "/s")


if __name__ == "__main__":
    main()
