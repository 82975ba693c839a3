#!/usr/bin/env python
"""Server time of the Billing page for an account with 200 subscriptions and 2,000 payments.

    .venv/bin/python bench/billing_page.py [--requests 200]

Builds the account in a throwaway test database (SQLite in memory, or the
PostgreSQL of DATABASE_URL), renders the page through Django's test client,
and prints the median and p95 time and the query count. Target: p95 < 150 ms.
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
from django.urls import reverse  # noqa: E402


def build():
    from tests.billing.scale import PAYMENTS, SUBSCRIPTIONS, catalogue, grow
    from tests.factories import AccountFactory, owner_of

    account = AccountFactory(name="Bench Corp", seats_paid=10)
    grow(account, catalogue(), subscriptions=SUBSCRIPTIONS, payments=PAYMENTS)
    return owner_of(account)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    # No setup_test_environment(): its template instrumentation copies every context for
    # the test client, a cost the server does not have.
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        client = Client()
        client.force_login(build())
        url = reverse("settings_billing")
        for _ in range(10):  # warm caches and templates
            assert client.get(url).status_code == 200
        gc.freeze()  # as config/wsgi.py does once the application is loaded
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
        print(
            "account: 200 subscriptions, 2,000 orders with 2,000 payments, add-ons, "
            "licences, credit packs and usage"
        )
        print(
            f"billing page over {args.requests} requests: median "
            f"{statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, "
            f"{len(queries.captured_queries)} queries (target: p95 < 150 ms)"
        )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
