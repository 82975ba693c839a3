#!/usr/bin/env python
"""The deadline sweep's query over 1,000,000 open refund requests, 1,000 of them due.

    DATABASE_URL=postgres://... .venv/bin/python bench/deadline_sweep.py [--rows 1000000]

Builds the rows in a throwaway test database on the PostgreSQL of DATABASE_URL (one
INSERT ... SELECT generate_series; one account and one order shared by every row),
runs ANALYZE, then times refunds.services.refund_deadlines_due(now=...) evaluated to
its list of pks, and prints the median, the count found and the EXPLAIN plan, which
must use the partial index refund_open_next_deadline. Target: median < 1 s.
PostgreSQL only: on SQLite it says so and exits.
"""

import argparse
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

INDEX = "refund_open_next_deadline"
TARGET_SECONDS = 1.0


def build(rows: int, due: int, now) -> None:
    """`rows` open requests; every (rows // due)-th one is due (its next deadline already
    passed or within the sweep's reach), the others a week to a year away."""
    from billing.models import Order
    from refunds.models import RefundRequest
    from refunds.services import REMINDER_REACH_DAYS
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
    every = rows // due
    table = RefundRequest._meta.db_table
    # Due rows: never in needs_info (whose clock is stopped: no next deadline).
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
                        -- from three days late to four days ahead: within the reach
                        THEN %(now)s + make_interval(mins => ((i / %(every)s) * 10 - 4300)::int)
                        -- from a day beyond the reach to a year away
                        ELSE %(now)s + make_interval(
                            days => (%(reach)s + 1 + i %% 360)::int, mins => (i %% 1440)::int
                        ) END AS due_at
            FROM generate_series(1, %(rows)s) AS i
        )
        INSERT INTO {table} (
            number, account_id, order_id, channel, preset, state, outcome, reason, text,
            full_order, payout_method, currency, approved_total, received_at,
            ack_due_at, decide_due_at, payout_due_at, next_deadline, reminded, breached,
            created_at
        )
        SELECT 'RB-' || lpad(i::text, 9, '0'), %(account)s, %(order)s, 'web', 'acelle',
               state, '', 'no_longer_needed', '', false, 'original', 'USD', 0,
               %(now)s - interval '1 day', due_at, due_at + interval '3 days',
               CASE WHEN state IN ('decided', 'paying') THEN due_at END,
               CASE WHEN state <> 'needs_info' THEN due_at END,
               '[]'::jsonb, '[]'::jsonb, %(now)s - interval '1 day'
        FROM g
    """  # noqa: S608  (the table name is the model's; every value is a parameter)
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "rows": rows,
                "every": every,
                "now": now,
                "reach": REMINDER_REACH_DAYS,
                "account": account.pk,
                "order": order.pk,
            },
        )
        cursor.execute(f"ANALYZE {table}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    if connection.vendor != "postgresql":
        sys.exit(
            "bench/deadline_sweep.py measures PostgreSQL's plan for the sweep (a partial "
            f"index range scan); the database here is {connection.vendor}. Run it with "
            "DATABASE_URL=postgres://USER@HOST:PORT/NAME (a throwaway test_NAME database is "
            "created and dropped)."
        )

    from refunds.services import refund_deadlines_due

    ok = False
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        now = timezone.now().replace(microsecond=0)
        started = time.perf_counter()
        build(args.rows, args.due, now)
        built = time.perf_counter() - started

        def evaluate():
            return list(refund_deadlines_due(now=now).values_list("pk", flat=True))

        for _ in range(3):  # warm the cache and the connection
            found = evaluate()
        timings = []
        for _ in range(args.runs):
            started = time.perf_counter()
            found = evaluate()
            timings.append(time.perf_counter() - started)
        queryset = refund_deadlines_due(now=now).values_list("pk", flat=True)
        plan = queryset.explain(analyze=True, buffers=True)

        from refunds.models import RefundRequest

        open_rows = RefundRequest.objects.filter(state__in=RefundRequest.OPEN_STATES).count()
        median = statistics.median(timings)
        print(f"database: {connection.vendor} {connection.pg_version // 10000}")
        print(
            f"built {open_rows:,} open refund requests ({args.due:,} due) in {built:.1f} s, "
            "then ANALYZE"
        )
        print(
            f"refund_deadlines_due(now=...) as a list of pks over {args.runs} runs: median "
            f"{median * 1000:.2f} ms, min {min(timings) * 1000:.2f} ms, max "
            f"{max(timings) * 1000:.2f} ms; found {len(found):,} "
            f"(target: median < {TARGET_SECONDS:.0f} s)"
        )
        print("EXPLAIN (ANALYZE, BUFFERS):")
        print("\n".join(f"    {line}" for line in plan.splitlines()))
        # An index scan, an index-only scan or a bitmap index scan of the partial index.
        uses_index = any(
            f"{kind} {INDEX}" in plan
            for kind in ("Index Scan using", "Index Only Scan using", "Bitmap Index Scan on")
        )
        print(f"index scan on {INDEX}: {'yes' if uses_index else 'NO'}")
        ok = uses_index and len(found) == args.due and median < TARGET_SECONDS
        print("result:", "OK" if ok else "FAILED")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
