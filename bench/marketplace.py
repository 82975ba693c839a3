#!/usr/bin/env python
"""The marketplace listing with 500 apps, and usage ingested through the developer API.

    .venv/bin/python bench/marketplace.py [--requests 200] [--records 3000]

Builds the data in a throwaway test database (SQLite in memory, or the PostgreSQL of
DATABASE_URL), then prints:
- the listing page's and the listing API's median and p95 server time, their query
  counts, and a bare Django view's figures from the same run;
- usage records ingested per second by one process through the developer API: one
  record a request (POST .../installations/{id}/usage/ with its Idempotency-Key), and
  500 a request (POST .../usage/batch/, each record with its own key).
Targets: the listing within the page budget (p95 < 150 ms); at least 1,000 records/s.
"""

import argparse
import gc
import os
import statistics
import time

os.environ.setdefault("MARKETPLACE_APP_API_RATE", "100000000/hour")

from _common import analyze, django_setup, report

django_setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402


def build():
    from decimal import Decimal

    from marketplace import services
    from marketplace.models import App, Developer, Plan
    from tests.factories import AccountFactory, UserFactory, owner_of

    staff = UserFactory(is_staff=True, is_superuser=True)
    developer = Developer.objects.create(
        name="Bench Dev",
        slug="bench",
        support_email="d@bench.example",
        refund_contact="r@bench.example",
    )
    apps = App.objects.bulk_create(
        [
            App(
                developer=developer,
                slug=f"app-{n}",
                name=f"App {n:03d}",
                summary="An app for the bench",
                category=App.Category.values[n % len(App.Category.values)],
                status="published",
                search_text=f"app {n:03d} an app for the bench bench dev",
            )
            for n in range(499)
        ]
    )
    Plan.objects.bulk_create(
        [Plan(app=app, code="free", name="Free", pricing_model="free") for app in apps]
    )
    usage_app = App.objects.create(
        developer=developer,
        slug="meter",
        name="Meter",
        summary="Billed per action",
        category="ai",
        status="published",
    )
    plan = Plan.objects.create(
        app=usage_app,
        code="per-action",
        name="Per action",
        pricing_model="usage",
        amount=Decimal("0.01"),
    )
    services.plan_product_sync(actor=staff, plan=plan)
    account = AccountFactory(name="Bench Corp")
    owner = owner_of(account)
    inst = services.installation_install(
        actor=owner, account=account, app=usage_app, plan=plan
    ).installation
    secret = services.app_api_key_rotate(actor=staff, app=usage_app)
    return owner, inst, secret


def timed(client, path, requests):
    times = []
    for _ in range(10):
        client.get(path)
    gc.collect()
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
    with CaptureQueriesContext(connection) as queries:
        client.get(path)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], len(queries)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--records", type=int, default=3000)
    args = parser.parse_args()
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        owner, inst, secret = build()
        analyze()
        client = Client()
        client.force_login(owner)
        print(f"database: {connection.vendor}; 500 published apps")
        bare = None
        for label, path in (
            ("bare view (/healthz)", "/healthz"),
            ("listing page", "/marketplace/"),
            ("listing API (100 a page)", "/api/v1/marketplace/apps/"),
            ("an app's page", "/marketplace/apps/meter/"),
        ):
            median, p95, queries = timed(client, path, args.requests)
            print(f"{label:28} median {median:7.1f} ms   p95 {p95:7.1f} ms   {queries} queries")
            if bare is None:
                bare = f"/healthz p95 {p95:.1f} ms"
            else:
                report(
                    "marketplace",
                    f"{label} p95 (test client)",
                    p95,
                    "ms",
                    target="< 150 ms",
                    ok=p95 < 150,
                    baseline=bare,
                )
        api = Client(headers={"Authorization": f"Bearer {secret}"})
        url = f"/api/v1/developer/installations/{inst.pk}/usage/"
        start = time.perf_counter()
        for n in range(args.records):
            response = api.post(
                url,
                {"quantity": 1},
                content_type="application/json",
                headers={"Idempotency-Key": f"bench-{n}"},
            )
            assert response.status_code == 201, response.content
        elapsed = time.perf_counter() - start
        print(f"usage ingest, one record a request: {args.records / elapsed:,.0f} records/s")
        batch = f"/api/v1/developer/installations/{inst.pk}/usage/batch/"
        start = time.perf_counter()
        for first in range(0, args.records, 500):
            records = [
                {"idempotency_key": f"batch-{n}", "quantity": 1}
                for n in range(first, min(first + 500, args.records))
            ]
            response = api.post(batch, {"records": records}, content_type="application/json")
            assert response.status_code == 201, response.content
        elapsed = time.perf_counter() - start
        rate = args.records / elapsed
        report(
            "marketplace",
            "usage ingest, 500 records a request",
            rate,
            "records/s",
            target=">= 1,000/s",
            ok=rate >= 1000,
        )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
