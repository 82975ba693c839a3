#!/usr/bin/env python
"""The staff queues (refund requests, incidents, inbound mail) and the console's home, with
100,000 rows in each queue, served by gunicorn beside the bare view.

    .venv/bin/python bench/staff_queues.py [--rows 100000] [--accounts 5000] [--requests 200]
    .venv/bin/python bench/staff_queues.py --explain   # the slowest queries' plans instead

Issue 16's target: each queue's page p95 <= 100 ms with 100,000 rows (the default size on
PostgreSQL; SQLite builds 20,000 by default, --rows to change). The rows are spread over
--accounts accounts in realistic states: most requests and incidents finished long ago, a
few percent open with deadlines from last week to next week (some overdue, some due today,
some breached), payouts for decided requests (a few failed), mail in every status (a few
in triage, held or awaiting confirmation). One PostgreSQL COPY (an INSERT per batch on
SQLite) per table writes them, then VACUUM (ANALYZE), as autovacuum would after such a
load. `--explain` prints EXPLAIN (ANALYZE, BUFFERS) of every query over 1 ms instead.

Measured: each queue's default page, the filtered views the console's home links to
(?deadline=..., payout and mail status), the home itself and the bare view, `--requests`
GETs each as an Administrator (a staff user with two-factor authentication). Each page
must say how many rows match, and that number must be the database's (counted just before
and after it): a wrong count exits 1. About 4 minutes on PostgreSQL on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal

from _common import analyze, database_label, django_setup, report, throwaway_database

BENCH = "staff_queues"
TARGET_MS = 100.0
STAFF = 8  # staff who hold requests and incidents


def insert_rows(model, columns: list[str], rows) -> int:
    """Write `rows` (tuples in `columns`' order) into `model`'s table: COPY on PostgreSQL,
    batched INSERTs elsewhere. Values go through each field's own conversion."""
    from django.db import connection

    fields = [model._meta.get_field(name) for name in columns]
    names = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    count = 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(_prepared(row, connection))
                    count += 1
            return count
        sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(fields))})"  # noqa: S608
        batch = []
        for row in rows:
            batch.append(_prepared(row, connection))
            if len(batch) == 5000:
                cursor.executemany(sql, batch)
                count, batch = count + len(batch), []
        if batch:
            cursor.executemany(sql, batch)
            count += len(batch)
    return count


def _prepared(row, connection):
    """The row as the database takes it: JSON as its text; on SQLite, datetimes as Django
    stores them (naive UTC text)."""
    values = []
    for value in row:
        if isinstance(value, list | dict):
            value = json.dumps(value)
        elif isinstance(value, datetime) and connection.vendor != "postgresql":
            value = connection.ops.adapt_datetimefield_value(value)
        values.append(value)
    return values


def _spread(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def build(*, rows: int, accounts: int, now) -> dict:
    """The accounts (one paid order each), the staff, and `rows` refund requests (with
    their payouts), incidents and inbound mails. Returns what was built."""
    from django.contrib.auth.models import Group

    from accounts.models import Account, User
    from billing.models import Order
    from inbox.models import InboundMail
    from refunds.models import RefundPayout, RefundRequest
    from support.models import Incident

    rng = random.Random(16)
    made_accounts = Account.objects.bulk_create(
        [
            Account(name=f"Customer {i:05d} Ltd", timezone="America/New_York", seats_paid=5)
            for i in range(accounts)
        ],
        batch_size=2000,
    )
    orders = Order.objects.bulk_create(
        [
            Order(
                account=account,
                number=f"ORD-2025-{i:06d}",
                currency="USD",
                status=Order.Status.PAID,
                total=Decimal("149.00"),
                paid_at=now - timedelta(days=30),
            )
            for i, account in enumerate(made_accounts)
        ],
        batch_size=2000,
    )
    staff = User.objects.bulk_create(
        [
            User(email=f"staff{i}@vendor.example", full_name=f"Staff {i}", is_staff=True)
            for i in range(STAFF)
        ]
    )
    reviewers = Group.objects.get(name="Billing reviewer")
    agents = Group.objects.get(name="Support agent")
    for i, user in enumerate(staff):
        user.groups.add(reviewers if i % 2 else agents)
    span = timedelta(days=730)  # two years of history, oldest first

    def received(i):
        return now - span + span * (i / rows) - timedelta(minutes=rng.randrange(60))

    # --- refund requests and their payouts ---------------------------------------------
    open_from = int(rows * 0.92)  # the newest 8% are still open
    refund_states = {
        "received": 30,
        "acknowledged": 15,
        "in_review": 25,
        "needs_info": 10,
        "decided": 10,
        "paying": 10,
    }
    done_states = {"paid": 45, "credited": 25, "closed": 20, "withdrawn": 10}
    payouts = []

    def refund_rows():
        for i in range(rows):
            order = orders[rng.randrange(accounts)]
            state = _spread(rng, refund_states if i >= open_from else done_states)
            at = received(i)
            deadline = None
            if i >= open_from and state != "needs_info":
                # From five days late to ten days ahead.
                deadline = now + timedelta(minutes=rng.randrange(-5 * 1440, 10 * 1440))
            breached = []
            if rng.random() < 0.05:
                breached = [rng.choice(["acknowledge", "decide", "pay out"])]
            holder = None if state == "received" else staff[rng.randrange(STAFF)].pk
            outcome = ""
            if state in ("decided", "paying", "paid", "credited", "closed"):
                outcome = _spread(rng, {"approved": 6, "partly_approved": 2, "denied": 2})
            payout_method = "credit" if state == "credited" else "original"
            if outcome in ("approved", "partly_approved") and state != "closed":
                status = {"paid": "succeeded", "credited": "succeeded"}.get(state, "pending")
                if state == "paying" and rng.random() < 0.2:
                    status = "failed"
                payouts.append((i + 1, payout_method, status, at))
            yield (
                i + 1,
                f"RR-2025-{i + 1:06d}",
                order.account_id,
                order.pk,
                _spread(rng, {"web": 70, "email": 20, "api": 8, "staff": 2}),
                _spread(rng, {"acelle": 80, "onecrm": 15, "onecloud": 5}),
                state,
                outcome,
                "no_longer_needed",
                "We no longer use the add-on we bought; please refund it.",
                False,
                payout_method,
                "USD",
                Decimal("149.00") if outcome else Decimal(0),
                at,
                at + timedelta(days=2),
                at + timedelta(days=5),
                deadline,
                at if state == "needs_info" else None,
                [],
                breached,
                holder,
                at,
            )

    built = {
        "refund requests": insert_rows(
            RefundRequest,
            [
                "id",
                "number",
                "account",
                "order",
                "channel",
                "preset",
                "state",
                "outcome",
                "reason",
                "text",
                "full_order",
                "payout_method",
                "currency",
                "approved_total",
                "received_at",
                "ack_due_at",
                "decide_due_at",
                "next_deadline",
                "paused_at",
                "reminded",
                "breached",
                "holder",
                "created_at",
            ],
            refund_rows(),
        )
    }
    method = {"original": "manual", "credit": "credit"}
    built["refund payouts"] = insert_rows(
        RefundPayout,
        [
            "request",
            "method",
            "amount",
            "currency",
            "idempotency_key",
            "status",
            "reference",
            "error",
            "attempts",
            "allocation",
            "created_at",
        ],
        (
            (
                request,
                method[how],
                Decimal("149.00"),
                "USD",
                f"bench-payout-{request}",
                status,
                "",
                "Card closed" if status == "failed" else "",
                1,
                {},
                at,
            )
            for request, how, status, at in payouts
        ),
    )

    # --- incidents ------------------------------------------------------------------------
    active_from = int(rows * 0.94)  # the newest 6% are being worked on
    active_states = {"open": 35, "in_progress": 45, "waiting_on_customer": 20}
    finished_states = {"resolved": 30, "closed": 60, "declined": 10}

    def incident_rows():
        for i in range(rows):
            state = _spread(rng, active_states if i >= active_from else finished_states)
            at = received(i)
            deadline = None
            if state in ("open", "in_progress"):
                deadline = now + timedelta(minutes=rng.randrange(-3 * 1440, 5 * 1440))
            breached = []
            if rng.random() < 0.04:
                breached = [f"first response due {at.isoformat()}"]
            answered = None if state == "open" else at + timedelta(hours=3)
            yield (
                f"INC-2025-{i + 1:06d}",
                made_accounts[rng.randrange(accounts)].pk,
                _spread(rng, {"web": 60, "email": 35, "api": 5}),
                f"Reports page shows an error ({i % 97})",
                "The monthly report fails with an error since this morning.",
                _spread(rng, {"P1": 5, "P2": 20, "P3": 45, "P4": 30}),
                "standard" if state != "declined" else "developer",
                state,
                _spread(rng, {"quota": 85, "billed": 10, "free": 5}),
                date(at.year, 1, 1),
                5,
                None if state == "open" else staff[rng.randrange(STAFF)].pk,
                at,
                answered,
                at + timedelta(hours=8),
                deadline,
                breached,
                0,
            )

    built["incidents"] = insert_rows(
        Incident,
        [
            "number",
            "account",
            "channel",
            "subject",
            "description",
            "severity",
            "scope",
            "state",
            "billing",
            "support_year_start",
            "seats_at_open",
            "assignee",
            "opened_at",
            "first_response_at",
            "first_response_due_at",
            "next_deadline",
            "breached",
            "reopened",
        ],
        incident_rows(),
    )

    # --- inbound mail ---------------------------------------------------------------------
    body = ("Hello, this is about our order and the refund we asked for. " * 25).strip()
    mail_statuses = {
        "request": 30,
        "opened": 20,
        "reply": 30,
        "answered": 8,
        "auto": 5,
        "done": 2,
        "dismissed": 3,
        "triage": 1,
        "held": 0.5,
        "confirm": 0.5,
    }

    def mail_rows():
        for i in range(rows):
            status = _spread(rng, mail_statuses)
            mailbox = "refunds" if i % 2 else "support"
            at = received(i)
            yield (
                mailbox,
                f"<bench-{i}@mail.customer.example>",
                _spread(rng, {"imap": 50, "webhook": 45, "maildir": 4, "staff": 1}),
                f"mail/{mailbox}/{at:%Y/%m}/bench-{i}.eml",
                4200,
                f"someone{i % 20000}@customer{i % accounts}.example",
                f"Refund request — Order #ORD-2025-{i % accounts:06d}",
                status,
                ["No order number found"] if status == "triage" else [],
                {"body": body, "order_number": f"ORD-2025-{i % accounts:06d}"},
                "" if status in ("held", "confirm", "triage") else "dkim",
                "" if status in ("triage", "auto") else f"RR-2025-{i + 1:06d}",
                "",
                "",
                at,
            )

    built["inbound mails"] = insert_rows(
        InboundMail,
        [
            "mailbox",
            "message_id",
            "source",
            "raw",
            "size",
            "sender",
            "subject",
            "status",
            "reasons",
            "parsed",
            "proof",
            "thread",
            "answer_subject",
            "answer",
            "received_at",
        ],
        mail_rows(),
    )
    _reset_sequences([RefundRequest])
    vacuum([RefundRequest, RefundPayout, Incident, InboundMail])
    return built


def vacuum(models) -> None:
    """VACUUM (ANALYZE) on PostgreSQL: what autovacuum does to a table soon after a bulk
    load (its insert threshold), marking the pages all-visible, so that a count may read
    an index alone as it would on a live database."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(model._meta.db_table)}")


def _reset_sequences(models) -> None:
    from django.core.management.color import no_style
    from django.db import connection

    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(sql)


def console_user():
    """An Administrator (not a superuser: permissions are checked as for staff), with
    the two-factor authentication the console requires."""
    from allauth.mfa.models import Authenticator
    from django.contrib.auth.models import Group

    from accounts.models import User

    user = User.objects.create_user(email="bench.admin@vendor.example", is_staff=True)
    user.groups.add(Group.objects.get(name="Administrator"))
    Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "x"})
    return user


def pages() -> list[tuple[str, str, object]]:
    """(label, path, the queryset whose count the page must show, or a function giving it
    now) of every page measured."""
    from django.db.models import Exists, OuterRef
    from django.urls import reverse
    from django.utils import timezone

    from accounts.admin import deadline_q
    from core.calendar import vendor_tz
    from inbox.models import InboundMail
    from refunds.models import RefundPayout, RefundRequest
    from support.models import Incident

    tz = vendor_tz()
    refunds = reverse("admin:refunds_refundrequest_changelist")
    incidents = reverse("admin:support_incident_changelist")
    mails = reverse("admin:inbox_inboundmail_changelist")
    found = [("console home", reverse("admin:index"), None)]
    for label, url, model in (
        ("refunds", refunds, RefundRequest),
        ("incidents", incidents, Incident),
    ):
        found.append((f"{label} queue", url, model.objects.all()))
        for which in ("due_today", "overdue", "breached"):
            found.append(
                (
                    f"{label} ?deadline={which}",
                    f"{url}?deadline={which}",
                    # Counted at the time of asking, as the page counts.
                    lambda model=model, which=which: model.objects.filter(
                        deadline_q(which, now=timezone.now(), tz=tz)
                    ),
                )
            )
        if model is RefundRequest:
            for status in ("pending", "failed"):
                paid_out = RefundPayout.objects.filter(request=OuterRef("pk"), status=status)
                found.append(
                    (
                        f"refunds ?payouts__status__exact={status}",
                        f"{url}?payouts__status__exact={status}",
                        model.objects.filter(Exists(paid_out)),
                    )
                )
    found.append(("inbound mail queue", mails, InboundMail.objects.all()))
    for status in ("triage", "confirm", "held"):
        found.append(
            (
                f"inbound mail ?status__exact={status}",
                f"{mails}?status__exact={status}",
                InboundMail.objects.filter(status=status),
            )
        )
    return found


COUNT = re.compile(r"(\d[\d,]*) (?:refund requests?|incidents?|inbound mails?)\b")


def shown_count(body: bytes) -> int | None:
    """The number of matching rows the changelist states at its foot."""
    found = COUNT.findall(body.decode())
    return int(found[-1].replace(",", "")) if found else None


def explain(paths, user) -> None:
    """Each page rendered in this process, and EXPLAIN (ANALYZE) of its queries that take
    more than a millisecond (PostgreSQL)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(user)
    for label, path, _ in paths:
        client.get(path, secure=True)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path, secure=True)
        print(f"\n=== {label}: {path} -> {response.status_code}, {len(queries)} queries")
        for query in queries.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")  # the captured SQL itself
                plan = "\n".join(row[0] for row in cursor.fetchall())
            took = re.search(r"Execution Time: ([\d.]+) ms", plan)
            if took and float(took.group(1)) > 1.0:
                print(f"--- {took.group(1)} ms: {sql[:300]}")
                print("\n".join(f"    {line}" for line in plan.splitlines()))


def main() -> int:
    django_setup("config.settings.bench")
    from django.db import connection
    from django.utils import timezone

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="rows in each queue")
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=200, help="GETs of each page")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--explain", action="store_true", help="print query plans, no timing")
    args = parser.parse_args()
    postgres = connection.vendor == "postgresql"
    rows = args.rows or (100_000 if postgres else 20_000)

    from _serve import Served, login_cookie

    with throwaway_database(file=True):
        now = timezone.now()
        started = time.perf_counter()
        built = build(rows=rows, accounts=min(args.accounts, rows), now=now)
        analyze()
        took = time.perf_counter() - started
        print(f"database: {database_label()}")
        print(
            f"built in {took:.1f} s, then ANALYZE: "
            + ", ".join(f"{count:,} {what}" for what, count in built.items())
            + f" over {min(args.accounts, rows):,} accounts"
        )
        user = console_user()
        paths = pages()
        if args.explain:
            if not postgres:
                print("--explain reads PostgreSQL's plans: set DATABASE_URL.")
                return 0
            explain(paths, user)
            return 0
        cookie = login_cookie(user)
        wrong = []
        with Served(workers=args.workers) as server:
            bare = server.measure("/bench/bare/", requests=args.requests)
            print(f"bare view: p50 {bare.p50:.1f} ms, p95 {bare.p95:.1f} ms")
            for label, path, queryset in paths:
                timing = server.measure(path, cookie, requests=args.requests, warm=10)
                said = ""
                if queryset is not None:
                    # Counted just before and after the page: a deadline may pass between.
                    matching = queryset if callable(queryset) else lambda q=queryset: q
                    before = matching().count()
                    count = shown_count(server._get(path, cookie)[1])
                    after = matching().count()
                    said = f", shows {count:,} (database: {after:,})"
                    if count not in (before, after):
                        wrong.append(f"{label}: the page says {count}, the database {after}")
                print(f"{label}: p50 {timing.p50:.1f} ms, p95 {timing.p95:.1f} ms{said}")
                report(
                    BENCH,
                    f"{label} p95 at {rows:,} rows",
                    timing.p95,
                    "ms",
                    target=f"<= {TARGET_MS:.0f} ms",
                    ok=timing.p95 <= TARGET_MS,
                    baseline=f"bare view p95 {bare.p95:.1f} ms",
                )
            for worker in server.memory():
                print(
                    f"worker {worker['pid']}: RSS {worker['rss']:.0f} MB, "
                    f"private {worker['private']:.0f} MB"
                )
    for line in wrong:
        print("WRONG:", line)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
