#!/usr/bin/env python
"""The Billing overview and every billing sub-page served by gunicorn, at 1x and at 10x.

    .venv/bin/python bench/billing_page.py [--requests 200] [--workers 2]

Builds two accounts in one throwaway database (SQLite in a file, or the PostgreSQL of
DATABASE_URL), ANALYZEs it, then serves it with gunicorn (bench/_serve.py:
config.settings.bench, preload_app): the 1x account has 200 subscriptions and 2,000 paid
orders with their payments and invoices, add-ons, licences, credit packs and usage
(tests/billing/scale.py); the 10x account ten times that. Each page is requested
`--requests` times for both accounts, beside the bare view /bench/bare/.

Issue 16's targets: each page's p95 at 1x at most 100 ms, and its p95 at 10x at most
1.3 times its p95 at 1x (what a page costs follows what it shows, not the account's size).
Also printed: each page's p50 and query count, and RSS and private memory per worker.
"""

import argparse
import sys

from _common import analyze, database_label, django_setup, report, throwaway_database

django_setup("config.settings.bench")

from _serve import Served, login_cookie  # noqa: E402

BENCH = "billing_page"
PAGES = [
    ("overview", "settings_billing"),
    ("plan & seats", "billing_plan"),
    ("add-ons", "billing_addons"),
    ("invoices", "billing_invoices"),
    ("credits", "billing_credits"),
    ("refunds", "billing_refunds"),
    ("order", "billing_order"),
]


def build(name: str, scale: int, prices):
    from tests.billing.scale import PAYMENTS, SUBSCRIPTIONS, grow, invoice_paid_orders
    from tests.factories import AccountFactory, owner_of

    account = AccountFactory(name=name, seats_paid=10)
    grow(account, prices, subscriptions=SUBSCRIPTIONS * scale, payments=PAYMENTS * scale)
    invoice_paid_orders(account)
    return account, owner_of(account)


def paths(account) -> dict[str, str]:
    from django.urls import reverse

    from billing.models import Order

    newest = Order.objects.filter(account=account).order_by("-created_at", "-id").first()
    return {
        label: reverse(name, args=[newest.pk] if name == "billing_order" else [])
        for label, name in PAGES
    }


def query_count(path: str, user) -> int:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(user)
    client.get(path)  # settle the session
    with CaptureQueriesContext(connection) as queries:
        answer = client.get(path, secure=True)
    if answer.status_code != 200:
        raise RuntimeError(f"GET {path} answered {answer.status_code}")
    return len(queries)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from django.db.models import Count

    from billing.models import Order, Payment, Subscription
    from tests.billing.scale import PAYMENTS, catalogue

    with throwaway_database(file=True):
        prices = catalogue()
        small, small_owner = build("Bench Corp", 1, prices)
        large, large_owner = build("Bench Corp Tenfold", 10, prices)
        analyze()
        for account, scale in ((small, 1), (large, 10)):
            orders = Order.objects.filter(account=account).count()
            payments = Payment.objects.filter(account=account).count()
            if orders != PAYMENTS * scale or payments != PAYMENTS * scale:
                print(f"{account.name}: {orders} orders, {payments} payments", file=sys.stderr)
                return 1
            subs = Subscription.objects.filter(account=account).aggregate(n=Count("id"))["n"]
            print(f"{scale:>2}x: {subs:,} subscriptions, {orders:,} orders and payments")
        print(f"database: {database_label()}; {args.workers} gunicorn sync workers")

        urls = {1: paths(small), 10: paths(large)}
        queries = {
            (label, scale): query_count(urls[scale][label], owner)
            for scale, owner in ((1, small_owner), (10, large_owner))
            for label, _ in PAGES
        }
        cookies = {1: login_cookie(small_owner), 10: login_cookie(large_owner)}
        with Served(workers=args.workers) as server:
            bare = server.measure("/bench/bare/", requests=args.requests)
            timings = {
                (label, scale): server.measure(
                    urls[scale][label], cookies[scale], requests=args.requests
                )
                for label, _ in PAGES
                for scale in (1, 10)
            }
            memory = server.memory()

        print(f"bare view: p50 {bare.p50:.1f} ms, p95 {bare.p95:.1f} ms")
        print(f"{'page':14} {'p50 1x':>8} {'p95 1x':>8} {'p50 10x':>8} {'p95 10x':>8}  queries")
        for label, _ in PAGES:
            one, ten = timings[(label, 1)], timings[(label, 10)]
            print(
                f"{label:14} {one.p50:8.1f} {one.p95:8.1f} {ten.p50:8.1f} {ten.p95:8.1f}  "
                f"{queries[(label, 1)]} / {queries[(label, 10)]}"
            )
        baseline = f"bare view p95 {bare.p95:.1f} ms"
        for label, _ in PAGES:
            one, ten = timings[(label, 1)], timings[(label, 10)]
            report(
                BENCH,
                f"{label} p95 at 1x",
                one.p95,
                "ms",
                target="<= 100 ms",
                ok=one.p95 <= 100,
                baseline=baseline,
            )
            ratio = ten.p95 / one.p95
            report(
                BENCH,
                f"{label} p95 at 10x / at 1x",
                ratio,
                "x",
                target="<= 1.3x",
                ok=ratio <= 1.3,
                baseline=f"p95 {ten.p95:.1f} ms at 10x",
            )
        for row in memory:
            print(
                f"worker {row['pid']}: RSS {row['rss']:.0f} MB, PSS {row['pss']:.0f} MB, "
                f"private {row['private']:.0f} MB, shared {row['shared']:.0f} MB"
            )
        report(BENCH, "RSS per worker", max(r["rss"] for r in memory), "MB")
        report(BENCH, "private memory per worker", max(r["private"] for r in memory), "MB")
        if any(queries[(label, 1)] != queries[(label, 10)] for label, _ in PAGES):
            print("a page's query count grows with the account", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
