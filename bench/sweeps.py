#!/usr/bin/env python
"""Usage billing and every beat sweep with nothing to do, at 1,000 and at 100,000 rows.

    [DATABASE_URL=postgres://...] .venv/bin/python bench/sweeps.py [--sizes 1000,100000]

Builds, in a throwaway test database, N accounts and, for each sweep, N rows that are
not due or already handled: this month's usage (nothing to bill until the month ends in
the account's zone); refund requests and incidents with deadlines weeks away or whose
reminders and breaches are all recorded; monthly and far yearly subscriptions; failed
payments already retried or retried later; trials with their first mail sent and the
last day to come, or far from their end; held earnings not yet releasable and released
ones; invitations pending or expired; mails already processed, just received, or
awaiting a confirmation still valid; outbox messages sent or due later.

Then, after ANALYZE, it runs each sweep three times and prints its query count and median
time at each size. The issue's target (16): the same number of queries at 1,000 and at
100,000, the default on PostgreSQL and SQLite. `--sizes 1000,10000` is a quicker run.
A sweep that finds work here is a wrong result (exit 1).
"""

import argparse
import logging
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from _common import analyze, django_setup, report, throwaway_database

django_setup()

from django.db import connection, reset_queries  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

logging.disable(logging.WARNING)

# Wednesday 18 March 2026, 15:00 UTC: mid-month in every zone.
NOW = datetime(2026, 3, 18, 15, tzinfo=UTC)
TODAY = NOW.date()
ZONES = ("UTC", "America/New_York", "Asia/Tokyo")
BATCH = 5_000


def _sweeps():
    from accounts.services import invitations_expire
    from billing import services as billing
    from core import outbox
    from inbox.services import mail_process_stale
    from marketplace.services import earnings_release, trials_remind
    from refunds.services import refund_deadlines_sweep
    from support.services import incident_deadlines_sweep

    return [
        ("usage billing", lambda: billing.usage_bill_due(now=NOW)),
        ("refund deadline sweep", lambda: refund_deadlines_sweep(now=NOW)),
        ("incident deadline sweep", lambda: incident_deadlines_sweep(now=NOW)),
        ("billing reminders", lambda: billing.reminders_send_due(now=NOW)),
        ("payment retries", lambda: billing.payments_retry_due(now=NOW)),
        ("trial mails", lambda: trials_remind(now=NOW)),
        ("earnings release", lambda: earnings_release(now=NOW)),
        ("invitation expiry", lambda: invitations_expire(now=NOW)),
        ("stale mail and confirmation expiry", lambda: mail_process_stale(now=NOW)),
        ("outbox relay", outbox.relay),  # reads the clock itself
    ]


def _nothing(result) -> bool:
    if isinstance(result, dict):
        return not any(result.values())
    return not result


def _bulk(model, rows, templates: dict | None = None, variants: int = 2) -> list:
    """bulk_create `rows` (an iterable) in batches; returns the saved objects and notes
    the first `variants` in `templates` (row i is variant i % variants)."""
    saved, batch = [], []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            saved += model.objects.bulk_create(batch)
            batch = []
    saved += model.objects.bulk_create(batch)
    if templates is not None:
        templates[model] = [row.pk for row in saved[:variants]]
    return saved


def shared_rows():
    """What every population hangs from: one account, one order, one developer's app."""
    from billing.models import Order, Price, Product
    from marketplace.models import App, Developer, Plan
    from tests.factories import AccountFactory

    account = AccountFactory(name="Bench Corp", timezone="America/New_York")
    order = Order.objects.create(
        account=account,
        number="ORD-SWEEPS-1",
        currency="USD",
        status=Order.Status.PAID,
        total=Decimal("100.00"),
        paid_at=NOW - timedelta(days=20),
    )
    sms = Product.objects.create(code="sms", name="SMS", kind="usage")
    plan_product = Product.objects.create(code="pro", name="Pro", kind="subscription")
    app_product = Product.objects.create(code="app", name="App", kind="app_subscription")
    developer = Developer.objects.create(name="Bench Labs", slug="bench-labs")
    app = App.objects.create(
        developer=developer, slug="bench-app", name="Bench App", summary="x", category="other"
    )
    return {
        "account": account,
        "order": order,
        "sms": Price.objects.create(
            product=sms, currency="USD", amount=Decimal("0.04"), interval="month"
        ),
        "monthly": Price.objects.create(
            product=plan_product, currency="USD", amount=Decimal("31"), interval="month"
        ),
        "yearly": Price.objects.create(
            product=plan_product, currency="USD", amount=Decimal("310"), interval="year"
        ),
        "app_product": app_product,
        "app": app,
        "plan": Plan.objects.create(
            app=app,
            code="main",
            name="Main",
            pricing_model="subscription",
            interval="month",
            amount=Decimal("9"),
        ),
    }


def build(shared, stop: int) -> dict:
    """Rows 0..stop-1 of every population (none of them due), through bulk_create.
    Returns each model's first rows, one per variant: the templates `replicate` copies."""
    from accounts.models import Account, Invitation
    from billing.models import OrderLine, Payment, Subscription, UsageRecord
    from core.models import OutboxMessage
    from inbox.models import InboundMail
    from marketplace.models import Earning, Installation
    from refunds.models import RefundRequest
    from support.models import Incident

    span = range(0, stop)
    templates = {}
    accounts = _bulk(
        Account,
        (Account(name=f"Sweep {i}", timezone=ZONES[i % 3], currency="USD") for i in span),
        templates,
        3,
    )
    _bulk(
        UsageRecord,
        (
            UsageRecord(
                account=account,
                product=shared["sms"].product,
                price=shared["sms"],
                quantity=3,
                used_on=date(2026, 3, 2 + i % 16),  # this month in every zone
                reference=f"u{i}",
            )
            for i, account in zip(span, accounts, strict=True)
        ),
        templates,
    )
    _bulk(
        Subscription,
        (
            Subscription(
                account=account,
                price=shared["yearly"] if i % 2 else shared["monthly"],
                status="active",
                current_period_start=TODAY - timedelta(days=10),
                current_period_end=TODAY + timedelta(days=200 if i % 2 else 20),
            )
            for i, account in zip(span, accounts, strict=True)
        ),
        templates,
    )
    _bulk(
        Installation,
        (
            Installation(
                account=account,
                app=shared["app"],
                plan=shared["plan"],
                state="trialing",
                trial_mails=i % 2,
                trial_end=TODAY + timedelta(days=30 if i % 2 == 0 else 3),
            )
            for i, account in zip(span, accounts, strict=True)
        ),
        templates,
    )

    account, order = shared["account"], shared["order"]
    far, late = NOW + timedelta(days=30), NOW - timedelta(days=3)
    _bulk(
        RefundRequest,
        (
            RefundRequest(
                number=f"RS-{i:09d}",
                account=account,
                order=order,
                channel="web",
                preset="acelle",
                reason="no_longer_needed",
                payout_method="original",
                currency="USD",
                received_at=NOW - timedelta(days=8),
                created_at=NOW - timedelta(days=8),
                **(
                    # Its reminders and breaches all recorded.
                    {
                        "state": "received",
                        "ack_due_at": late,
                        "decide_due_at": late + timedelta(days=1),
                        "next_deadline": late,
                        "reminded": ["acknowledge", "decide"],
                        "breached": ["acknowledge", "decide"],
                        "sweep_at": None,
                    }
                    if i % 2
                    else {
                        "state": "acknowledged",
                        "ack_due_at": late,
                        "decide_due_at": far,
                        "next_deadline": far,
                        "sweep_at": far - timedelta(days=1),
                    }
                ),
            )
            for i in span
        ),
        templates,
    )
    _bulk(
        Incident,
        (
            Incident(
                number=f"IS-{i:09d}",
                account=account,
                channel="web",
                subject="Help",
                description="Please",
                severity="P3",
                support_year_start=date(2026, 1, 1),
                seats_at_open=2,
                state="open",
                opened_at=NOW - timedelta(days=1),
                **(
                    {
                        "first_response_due_at": late,
                        "next_deadline": late,
                        "breached": [f"first response due {late.isoformat()}"],
                        "sweep_at": None,
                    }
                    if i % 2
                    else {"first_response_due_at": far, "next_deadline": far, "sweep_at": far}
                ),
            )
            for i in span
        ),
        templates,
    )
    _bulk(
        Payment,
        (
            Payment(
                account=account,
                order=order,
                gateway="stripe",
                amount=Decimal("10.00"),
                currency="USD",
                status="failed",
                idempotency_key=f"sweeps-{i}",
                next_attempt_at=None if i % 2 else NOW + timedelta(days=2),
            )
            for i in span
        ),
        templates,
    )
    lines = _bulk(
        OrderLine,
        (
            OrderLine(
                order=order,
                product=shared["app_product"],
                kind="app_subscription",
                amount=Decimal("10.00"),
            )
            for _ in span
        ),
        templates,
        1,
    )
    _bulk(
        Earning,
        (
            Earning(
                developer=shared["app"].developer,
                app=shared["app"],
                line=line,
                currency="USD",
                gross=Decimal("10.00"),
                fee=Decimal("2.00"),
                net=Decimal("8.00"),
                earned_on=TODAY - timedelta(days=20),
                status="available" if i % 2 else "held",
                available_on=TODAY + timedelta(days=-5 if i % 2 else 3),
            )
            for i, line in zip(span, lines, strict=True)
        ),
        templates,
    )
    _bulk(
        Invitation,
        (
            Invitation(
                account=account,
                email=f"person{i}@example.com",
                nonce=f"nonce-{i}",
                status="expired" if i % 2 else "pending",
                expires_at=NOW + timedelta(days=-1 if i % 2 else 3),
            )
            for i in span
        ),
        templates,
    )
    statuses = (
        ("triage", NOW - timedelta(days=3)),  # processed long ago
        ("received", NOW - timedelta(seconds=30)),  # being processed now
        ("confirm", NOW - timedelta(hours=1)),  # its link still good
    )
    _bulk(
        InboundMail,
        (
            InboundMail(
                message_id=f"<sweeps-{i}@example.com>",
                raw=f"inbox/sweeps-{i}.eml",
                size=10,
                status=statuses[i % 3][0],
                received_at=statuses[i % 3][1],
            )
            for i in span
        ),
        templates,
        3,
    )
    clock = timezone.now()
    _bulk(
        OutboxMessage,
        (
            OutboxMessage(
                task="billing.tasks.send_receipt_email",
                created_at=clock,
                next_try_at=clock + timedelta(days=1) if i % 2 else clock,
                sent_at=None if i % 2 else clock,
            )
            for i in span
        ),
        templates,
    )
    return templates


def _series(start: int, stop: int) -> str:
    """The integers start..stop-1 as `s(i, ref)` (ref: none)."""
    if connection.vendor == "postgresql":
        return f"(SELECT i, NULL AS ref FROM generate_series({start}, {stop - 1}) AS g(i)) AS s"  # noqa: S608
    return f"""(WITH RECURSIVE g(i) AS (SELECT {start} UNION ALL SELECT i + 1 FROM g
        WHERE i + 1 < {stop}) SELECT i, NULL AS ref FROM g) AS s"""  # noqa: S608


def _rows_after(model, pk: int) -> str:
    """The model's rows after `pk` as `s(i, ref)`: one copy for each (ref: its pk)."""
    table = connection.ops.quote_name(model._meta.db_table)
    return f"(SELECT id AS i, id AS ref FROM {table} WHERE id > {int(pk)}) AS s"  # noqa: S608


def replicate(model, templates: list[int], driver: str, **overrides: str) -> None:
    """INSERT ... SELECT a copy of a template row for each row of `driver`: row i copies
    template i % len(templates), with `overrides` (column: SQL over s.i, s.ref) for what
    must differ (unique columns, the account or line it hangs from)."""
    qn = connection.ops.quote_name
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    values = [overrides.get(column, f"tpl.{qn(column)}") for column in columns]
    choose = " ".join(f"WHEN {v} THEN {pk}" for v, pk in enumerate(templates))
    # Names are the models' own, numbers are ints: nothing comes from outside.
    table = qn(model._meta.db_table)
    sql = f"""INSERT INTO {table} ({", ".join(qn(c) for c in columns)})
        SELECT {", ".join(values)} FROM {driver} JOIN {table} AS tpl
        ON tpl.id = CASE s.i % {len(templates)} {choose} END"""  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql)


def grow(templates: dict, start: int, stop: int) -> None:
    """Rows start..stop-1 of every population, copied in SQL from `build`'s templates:
    per account (usage, subscriptions, trials) over the new accounts, the rest over a
    series; each unique column made unique from the row's number."""
    from accounts.models import Account, Invitation
    from billing.models import OrderLine, Payment, Subscription, UsageRecord
    from core.models import OutboxMessage
    from inbox.models import InboundMail
    from marketplace.models import Earning, Installation
    from refunds.models import RefundRequest
    from support.models import Incident

    def text(prefix, suffix=""):
        tail = f" || '{suffix}'" if suffix else ""
        return f"'{prefix}' || CAST(s.i AS TEXT){tail}"

    series = _series(start, stop)
    last_account = Account.objects.order_by("-pk").values_list("pk", flat=True)[0]
    replicate(Account, templates[Account], series, name=text("Sweep "))
    new_accounts = _rows_after(Account, last_account)
    replicate(
        UsageRecord, templates[UsageRecord], new_accounts, account_id="s.ref", reference=text("u")
    )
    replicate(Subscription, templates[Subscription], new_accounts, account_id="s.ref")
    replicate(Installation, templates[Installation], new_accounts, account_id="s.ref")
    replicate(RefundRequest, templates[RefundRequest], series, number=text("RS-"))
    replicate(Incident, templates[Incident], series, number=text("IS-"))
    replicate(Payment, templates[Payment], series, idempotency_key=text("sweeps-"))
    last_line = OrderLine.objects.order_by("-pk").values_list("pk", flat=True)[0]
    replicate(OrderLine, templates[OrderLine], series)
    replicate(Earning, templates[Earning], _rows_after(OrderLine, last_line), line_id="s.ref")
    replicate(
        Invitation,
        templates[Invitation],
        series,
        email=text("person", "@example.com"),
        nonce=text("nonce-"),
    )
    replicate(
        InboundMail,
        templates[InboundMail],
        series,
        message_id=text("<sweeps-", "@example.com>"),
        raw=text("inbox/sweeps-", ".eml"),
    )
    replicate(OutboxMessage, templates[OutboxMessage], series, task_id=text("sweeps-"))


def measure(sweeps, runs: int = 3, *, plans: bool = False) -> dict:
    """Each sweep's query count and median time (ms); a sweep that did work is wrong.
    With `plans`, print how PostgreSQL reads the sweep's first SELECT (what is due)."""
    out = {}
    for name, run in sweeps:
        timings, counts = [], set()
        for _ in range(runs):
            reset_queries()
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                result = run()
                timings.append((time.perf_counter() - started) * 1000)
            counts.add(len(queries))
            if not _nothing(result):
                sys.exit(f"wrong result: {name} found work in an idle run ({result})")
        out[name] = (max(counts), statistics.median(timings))
        if plans:
            select = next(q["sql"] for q in queries if q["sql"].startswith("SELECT"))
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN {select}")
                plan = [row[0] for row in cursor.fetchall()]
            scans = [line.strip() for line in plan if "Scan" in line]
            print(f"  {name}: " + "; ".join(scans), flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000", help="two row counts, small,large")
    args = parser.parse_args()
    small, large = (int(n) for n in args.sizes.split(","))

    with throwaway_database():
        sweeps = _sweeps()
        shared = shared_rows()
        figures = {}
        for size in (small, large):
            started = time.perf_counter()
            if size == small:
                templates = build(shared, small)
            else:
                grow(templates, small, large)
            analyze()
            for model, pks in templates.items():
                made = model.objects.filter(pk__gte=pks[0]).count()
                if made != size:
                    sys.exit(f"wrong result: {made:,} {model.__name__} rows for {size:,}")
            print(
                f"{connection.vendor}: {size:,} rows per sweep built in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
            if size == large and connection.vendor == "postgresql":
                print("how PostgreSQL reads each sweep's 'what is due' at this size:")
            figures[size] = measure(
                sweeps, plans=size == large and connection.vendor == "postgresql"
            )
        for name, _ in sweeps:
            (q_small, t_small), (q_large, t_large) = figures[small][name], figures[large][name]
            report(
                "sweeps",
                f"idle {name} queries at {small:,} / {large:,}",
                q_large,
                "queries",
                target=f"the same as at {small:,} ({q_small})",
                ok=q_large == q_small,
                baseline=f"{q_small} at {small:,}",
            )
            report(
                "sweeps",
                f"idle {name} time at {large:,}",
                t_large,
                "ms",
                baseline=f"{t_small:.1f} ms at {small:,}",
            )


if __name__ == "__main__":
    main()
