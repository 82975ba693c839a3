#!/usr/bin/env python
"""The refund deadline sweep's work over 200,000 open refund requests, 1,000 of them due.

    [DATABASE_URL=postgres://...] .venv/bin/python bench/deadline_sweep.py [--rows N] [--due N]

Builds the rows in a throwaway test database (PostgreSQL: one INSERT ... SELECT
generate_series; SQLite: bulk_create, 100,000 rows there), one account and one
order shared by every row, runs ANALYZE, then times refunds.services.refund_deadlines_sweep:

- the first run, which reads the due requests, sends their reminders, records their
  breaches and stores when each next has something to do (sweep_at);
- a rerun with nothing new, which must make one query (the index range scan of
  refund_open_sweep_at on PostgreSQL, whose plan it prints) and lock nothing.

Each row's sweep_at is what migration refunds 0007 gives a request made before it
(its next deadline less 5 days: the old sweep's reach), so the first run takes exactly the
rows the old sweep took. The issue's figure is about 1,000 due ("a rerun with nothing new:
1,001 queries for 1,000 due"); the rerun reads an index range, so its cost does not depend
on the open rows: `--rows 1000000` shows it at the old bench's size (building them takes
about two minutes on PostgreSQL, over the default run's budget).
"""

import argparse
import logging
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal

from _common import analyze, django_setup, report, throwaway_database

django_setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

logging.disable(logging.WARNING)  # the eager mail tasks log a line each

INDEX = "refund_open_sweep_at"
REACH = timedelta(days=5)  # the old sweep's reach, which migration 0007 starts sweep_at from
DUE_STATES = ["received", "acknowledged", "in_review", "decided", "paying"]
ALL_STATES = ["received", "acknowledged", "in_review", "needs_info", "decided", "paying"]


def _shared_rows(now):
    from billing.models import Order
    from tests.factories import AccountFactory

    account = AccountFactory(name="Bench Corp", timezone="America/New_York")
    order = Order.objects.create(
        account=account,
        number="ORD-BENCH-1",
        currency="USD",
        status=Order.Status.PAID,
        total=Decimal("149.00"),
        paid_at=now,
    )
    return account, order


def build_postgresql(rows: int, due: int, now) -> None:
    """`rows` open requests; every (rows // due)-th one is due (its next deadline from three
    days late to four days ahead), the others a week to a year away."""
    from refunds.models import RefundRequest

    account, order = _shared_rows(now)
    every = rows // due
    table = RefundRequest._meta.db_table
    due_states = "ARRAY['received','acknowledged','in_review','decided','paying']"
    all_states = "ARRAY['received','acknowledged','in_review','needs_info','decided','paying']"
    # %(name)s are parameters; %% is SQL's modulo.
    sql = f"""
        WITH g AS (
            SELECT i,
                   CASE WHEN i %% %(every)s = 0
                        THEN ({due_states})[1 + (i / %(every)s) %% 5]
                        ELSE ({all_states})[1 + i %% 6] END AS state,
                   CASE WHEN i %% %(every)s = 0
                        THEN %(now)s + make_interval(mins => ((i / %(every)s) * 10 - 4300)::int)
                        ELSE %(now)s + make_interval(
                            days => (6 + i %% 360)::int, mins => (i %% 1440)::int
                        ) END AS due_at
            FROM generate_series(1, %(rows)s) AS i
        )
        INSERT INTO {table} (
            number, account_id, order_id, channel, preset, state, outcome, reason, text,
            full_order, payout_method, currency, approved_total, received_at,
            ack_due_at, decide_due_at, payout_due_at, next_deadline, sweep_at, reminded,
            breached, created_at
        )
        SELECT 'RB-' || lpad(i::text, 9, '0'), %(account)s, %(order)s, 'web', 'acelle',
               state, '', 'no_longer_needed', '', false, 'original', 'USD', 0,
               %(now)s - interval '1 day', due_at, due_at + interval '3 days',
               CASE WHEN state IN ('decided', 'paying') THEN due_at END,
               CASE WHEN state <> 'needs_info' THEN due_at END,
               CASE WHEN state <> 'needs_info' THEN due_at - interval '5 days' END,
               '[]'::jsonb, '[]'::jsonb, %(now)s - interval '1 day'
        FROM g
    """  # noqa: S608  (the table name is the model's; every value is a parameter)
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {"rows": rows, "every": every, "now": now, "account": account.pk, "order": order.pk},
        )


def build_python(rows: int, due: int, now) -> None:
    """The same rows through bulk_create (SQLite)."""
    from refunds.models import RefundRequest

    account, order = _shared_rows(now)
    every = rows // due

    def row(i):
        if i % every == 0:
            state = DUE_STATES[(i // every) % 5]
            due_at = now + timedelta(minutes=(i // every) * 10 - 4300)
        else:
            state = ALL_STATES[i % 6]
            due_at = now + timedelta(days=6 + i % 360, minutes=i % 1440)
        deadline = None if state == "needs_info" else due_at
        return RefundRequest(
            number=f"RB-{i:09d}",
            account=account,
            order=order,
            channel="web",
            preset="acelle",
            state=state,
            reason="no_longer_needed",
            payout_method="original",
            currency="USD",
            received_at=now - timedelta(days=1),
            created_at=now - timedelta(days=1),
            ack_due_at=due_at,
            decide_due_at=due_at + timedelta(days=3),
            payout_due_at=due_at if state in ("decided", "paying") else None,
            next_deadline=deadline,
            sweep_at=deadline - REACH if deadline else None,
        )

    batch = []
    for i in range(1, rows + 1):
        batch.append(row(i))
        if len(batch) == 5_000:
            RefundRequest.objects.bulk_create(batch)
            batch = []
    RefundRequest.objects.bulk_create(batch)


class Counted:
    """The queries run inside it, and how many of them lock rows (no query log cap)."""

    def __enter__(self):
        self.queries = self.locks = 0
        self._wrapper = connection.execute_wrapper(self)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        self._wrapper.__exit__(*exc)

    def __call__(self, execute, sql, params, many, context):
        self.queries += 1
        self.locks += " FOR UPDATE" in sql or " FOR NO KEY UPDATE" in sql
        return execute(sql, params, many, context)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help="open requests (200,000; SQLite 100,000)")
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--reruns", type=int, default=20)
    args = parser.parse_args()

    from accounts.models import AuditEvent
    from refunds.models import RefundRequest
    from refunds.services import refund_deadlines_due, refund_deadlines_sweep

    wrong = []
    with throwaway_database():
        postgresql = connection.vendor == "postgresql"
        rows = args.rows or (200_000 if postgresql else 100_000)
        now = timezone.now().replace(microsecond=0)
        started = time.perf_counter()
        (build_postgresql if postgresql else build_python)(rows, args.due, now)
        analyze()
        built = time.perf_counter() - started
        open_rows = RefundRequest.objects.filter(state__in=RefundRequest.OPEN_STATES).count()
        due = refund_deadlines_due(now=now).count()
        print(f"database: {connection.vendor}")
        print(f"built {open_rows:,} open refund requests ({due:,} due) in {built:.1f} s")
        if due != args.due:
            wrong.append(f"{due:,} due, expected {args.due:,}")

        with Counted() as first_queries:
            started = time.perf_counter()
            counts = refund_deadlines_sweep(now=now)
            first = time.perf_counter() - started
        print(
            f"first run: {counts['reminded']:,} reminded, {counts['breached']:,} breached over "
            f"{due:,} due requests in {first * 1000:,.0f} ms, {first_queries.queries:,} "
            f"queries ({first_queries.locks:,} locking), the mails sent inline (eager Celery)"
        )
        breaches = AuditEvent.objects.filter(action="refund.deadline_breached").count()
        if breaches != counts["breached"]:
            wrong.append(f"{breaches} breach events for {counts['breached']} breaches")

        timings, queries, locks = [], [], 0
        for _ in range(args.reruns):
            with Counted() as rerun_queries:
                started = time.perf_counter()
                again = refund_deadlines_sweep(now=now)
                timings.append((time.perf_counter() - started) * 1000)
            queries.append(rerun_queries.queries)
            locks += rerun_queries.locks
            if again != {"reminded": 0, "breached": 0}:
                wrong.append(f"a rerun did more: {again}")
                break
        rerun = statistics.median(timings)
        print(
            f"rerun with nothing new over {args.reruns} runs: median {rerun:.2f} ms, "
            f"{max(queries)} queries, {locks} locking"
        )
        uses_index = None
        if postgresql:
            plan = refund_deadlines_due(now=now).values_list("pk", flat=True).explain(analyze=True)
            print("EXPLAIN ANALYZE of the rerun's query:")
            print("\n".join(f"    {line}" for line in plan.splitlines()))
            uses_index = any(
                f"{kind} {INDEX}" in plan
                for kind in ("Index Scan using", "Index Only Scan using", "Bitmap Index Scan on")
            )
            print(f"index scan on {INDEX}: {'yes' if uses_index else 'NO'}")

        report(
            "deadline_sweep",
            f"first run, {due:,} due of {open_rows:,}",
            first * 1000,
            "ms",
            baseline=f"{first_queries.queries:,} queries",
        )
        report(
            "deadline_sweep",
            "rerun with nothing new: queries",
            max(queries),
            "queries",
            target="1 (fixed)",
            ok=max(queries) == 1 and locks == 0 and uses_index is not False,
        )
        report(
            "deadline_sweep",
            f"rerun with nothing new, {open_rows:,} open",
            rerun,
            "ms",
            target="< 1000 ms",
            ok=rerun < 1000,
        )
    if wrong:
        sys.exit("wrong result: " + "; ".join(wrong))


if __name__ == "__main__":
    main()
