"""Renewals (issue 16): queries per renewal, renewals a second for one worker process and
for two, and the hourly dispatch's time.

Builds --due subscriptions due at once (bulk inserts, then ANALYZE): active per-seat plans
of their own accounts, a third of them with billing details in a taxed country, none with
credit, renewed with the manual gateway, so each is left awaiting its payment: the common
case. Then:

(a) one process renews --renew of them through `subscriptions_renew_chunk`, chunk by
    chunk (each chunk of this common case in one transaction), and counts its queries
    per renewal. Target: <= 10. The payment jobs the
    renewals queue go to a real broker when Redis answers on 127.0.0.1:6379 (its
    database 11, emptied after each run), as in production, where any worker runs them;
    without Redis the test settings run them here at commit, and their queries are
    counted apart.
(b) the same work (the subscriptions rolled back to due, the renewals' rows deleted)
    renewed by 1, then 2 worker processes, each with its own database connection, taking
    chunks from one shared queue and running the chunk job's service, payment jobs
    included (PostgreSQL only: SQLite's in-memory test database is one process's).
    Targets: >= 150 renewals/s for one process; two >= 1.7x one.
(c) the dispatcher at --due: it reads the due ids in keyset batches and publishes one
    job per chunk to Redis (then purged); without Redis, the reading alone.
    Target: far inside the task's soft time limit (240 s) at 100,000 due.

    DATABASE_URL=postgres://... .venv/bin/python bench/renewals.py               # 3,000
    DATABASE_URL=postgres://... .venv/bin/python bench/renewals.py --due 100000  # the issue's size for (c)

The issue's renewal targets are per renewal and per second, so the default size is the one
that finishes in about three minutes; --due 100000 is the size of the dispatcher's target
(the renewal runs still renew --renew of them, 3,000 by default: 15 chunks, so that
two processes share them evenly).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import sys
import time
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from _common import analyze, django_setup, report, throwaway_database

BENCH = "renewals"
# The periods end on 1 April 2026; the runs happen at noon UTC that day.
NOW = datetime(2026, 4, 1, 12, 0, tzinfo=ZoneInfo("UTC"))
START, END = date(2026, 3, 1), date(2026, 4, 1)
CHUNK = 200
BROKER = "redis://127.0.0.1:6379/11"


def use_redis_broker() -> bool:
    """Jobs to Redis db 11 instead of in-process, when Redis answers (before Django starts)."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    os.environ["CELERY_BROKER_URL"] = BROKER
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
    return True


def purge_broker(redis: bool) -> None:
    if redis:
        from config.celery import app

        app.control.purge()


def build(due: int) -> list[int]:
    from accounts.models import Account
    from billing.models import BillingDetails, Price, Product, Subscription, TaxRate

    product = Product.objects.create(code="pro", name="Professional", kind="subscription")
    price = Price.objects.create(
        product=product,
        currency="USD",
        amount=Decimal("31.00"),
        scheme="per_seat",
        interval="month",
    )
    TaxRate.objects.create(
        country="DE", name="VAT", rate=Decimal("19"), valid_from=date(2020, 1, 1)
    )
    zones = ["UTC", "Europe/Berlin", "America/New_York"]
    for offset in range(0, due, 5000):
        size = min(5000, due - offset)
        accounts = Account.objects.bulk_create(
            Account(name=f"Customer {offset + i}", timezone=zones[i % 3], seats_paid=3)
            for i in range(size)
        )
        BillingDetails.objects.bulk_create(
            BillingDetails(account=account, country="DE", legal_name=account.name)
            for account in accounts[::3]
        )
        Subscription.objects.bulk_create(
            Subscription(
                account=account,
                price=price,
                quantity=3,
                current_period_start=START,
                current_period_end=END,
            )
            for account in accounts
        )
    analyze()
    return list(Subscription.objects.order_by("pk").values_list("pk", flat=True))


def reset(ids: list[int]) -> None:
    """The renewed subscriptions due again, and every row their renewals wrote gone."""
    from accounts.models import Account, AuditEvent
    from billing.models import Order, OrderLine, Payment, Subscription
    from core.models import OutboxMessage

    Payment.objects.all()._raw_delete(Payment.objects.db)
    OrderLine.objects.all()._raw_delete(OrderLine.objects.db)
    Order.objects.all()._raw_delete(Order.objects.db)
    AuditEvent.objects.all()._raw_delete(AuditEvent.objects.db)
    OutboxMessage.objects.all()._raw_delete(OutboxMessage.objects.db)
    Subscription.objects.filter(pk__in=ids).update(
        status="active", current_period_start=START, current_period_end=END
    )
    Account.objects.update(status="active")
    analyze()


def chunks(ids: list[int]) -> list[list[int]]:
    return [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]


def check_renewed(ids: list[int]) -> None:
    from billing.models import Order, Payment, Subscription

    lapsed = Subscription.objects.filter(pk__in=ids, status="lapsed").count()
    orders, payments = Order.objects.count(), Payment.objects.count()
    if not lapsed == orders == payments == len(ids):
        sys.exit(f"wrong result: {len(ids)} due, {lapsed} lapsed, {orders} orders, {payments} pay")


class QueryCounter:
    """Every query of this process, split into the chunk's own and its jobs' (run in
    process by the test settings' eager Celery)."""

    def __init__(self):
        self.own = self.jobs = 0
        self.depth = 0

    def __call__(self, execute, sql, params, many, context):
        if self.depth:
            self.jobs += 1
        else:
            self.own += 1
        return execute(sql, params, many, context)

    def task_started(self, **kwargs):
        self.depth += 1

    def task_ended(self, **kwargs):
        self.depth -= 1


def run_in_process(ids: list[int]) -> tuple[float, QueryCounter]:
    from celery.signals import task_postrun, task_prerun
    from django.db import connection

    from billing.services import subscriptions_renew_chunk

    counter = QueryCounter()
    task_prerun.connect(counter.task_started, weak=False)
    task_postrun.connect(counter.task_ended, weak=False)
    try:
        with connection.execute_wrapper(counter):
            started = time.perf_counter()
            for chunk in chunks(ids):
                subscriptions_renew_chunk(ids=chunk, now=NOW)
            elapsed = time.perf_counter() - started
    finally:
        task_prerun.disconnect(counter.task_started)
        task_postrun.disconnect(counter.task_ended)
    return elapsed, counter


def _worker(queue, ready, go, done) -> None:
    from django.db import connection

    from billing.services import subscriptions_renew_chunk

    connection.ensure_connection()  # its own connection, opened before the clock starts
    ready.release()
    go.wait()
    renewed = 0
    while True:
        chunk = queue.get()
        if chunk is None:
            break
        renewed += subscriptions_renew_chunk(ids=chunk, now=NOW)
    connection.close()
    done.put(renewed)


def run_workers(ids: list[int], processes: int) -> float:
    """`processes` forked workers, each with its own connection, taking chunks from one
    queue; the time from the start signal to the last worker's end."""
    from django.db import connections

    connections.close_all()  # the children must not share the parent's connection
    context = multiprocessing.get_context("fork")
    queue, done = context.Queue(), context.Queue()
    ready, go = context.Semaphore(0), context.Event()
    for chunk in chunks(ids):
        queue.put(chunk)
    for _ in range(processes):
        queue.put(None)
    workers = [
        context.Process(target=_worker, args=(queue, ready, go, done)) for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.acquire()
    started = time.perf_counter()
    go.set()
    renewed = sum(done.get() for _ in workers)
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join()
        if worker.exitcode:
            sys.exit(f"a worker crashed (exit code {worker.exitcode})")
    if renewed != len(ids):
        sys.exit(f"wrong result: {processes} workers renewed {renewed} of {len(ids)}")
    return elapsed


def time_dispatch(due: int, redis: bool) -> float:
    """The beat job's dispatch at `due`, its jobs published to Redis (and purged after).
    Without Redis the test settings would run each job at once: the jobs are only
    counted then, and the figure is the reading of the ids alone."""
    from billing import tasks
    from billing.services import subscriptions_renew_dispatch

    chunk_task = tasks.subscriptions_renew_chunk
    published = []
    if not redis:
        chunk_task.apply_async = lambda args: published.append(args[0])
    try:
        started = time.perf_counter()
        queued = subscriptions_renew_dispatch(now=NOW, chunk_size=CHUNK)
        elapsed = time.perf_counter() - started
    finally:
        chunk_task.__dict__.pop("apply_async", None)
    if redis:
        from config.celery import app

        with app.connection_for_write() as conn:
            published = [None] * conn.default_channel.client.llen("celery")
        purge_broker(redis)
    if queued != due or len(published) != -(-due // CHUNK):
        sys.exit(f"wrong result: {due} due, {queued} queued, {len(published)} jobs")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--due", type=int, default=3000, help="subscriptions due (3,000)")
    parser.add_argument(
        "--renew", type=int, default=3000, help="of them renewed by each run (3,000)"
    )
    args = parser.parse_args()
    redis = use_redis_broker()
    django_setup()
    print("payment jobs:", f"queued to {BROKER}" if redis else "run in-process (no Redis)")
    from django.db import connection

    with throwaway_database():
        started = time.perf_counter()
        all_ids = build(args.due)
        print(f"built {args.due:,} due subscriptions in {time.perf_counter() - started:.1f} s")
        ids = all_ids[: min(args.renew, args.due)]
        postgres = connection.vendor == "postgresql"

        dispatch = time_dispatch(args.due, redis)
        print(f"dispatch of {args.due:,} due: {dispatch:.2f} s, {-(-args.due // CHUNK)} jobs")

        elapsed, counter = run_in_process(ids)
        purge_broker(redis)
        check_renewed(ids)
        rate = len(ids) / elapsed
        print(
            f"(a) in-process: {len(ids):,} renewals in {elapsed:.1f} s, {rate:.0f}/s; queries "
            f"per renewal {counter.own / len(ids):.2f} in the chunks, "
            f"{counter.jobs / len(ids):.2f} in the payment jobs they queue"
        )
        report(
            BENCH,
            "queries per renewal (chunk job)",
            counter.own / len(ids),
            "queries",
            target="<= 10",
            ok=counter.own / len(ids) <= 10,
            baseline="old loop: 30",
        )
        if not redis:
            report(
                BENCH,
                "queries per renewal (its payment job)",
                counter.jobs / len(ids),
                "queries",
            )
        if postgres:
            rates = {}
            for processes in (1, 2):
                reset(ids)
                seconds = run_workers(ids, processes)
                purge_broker(redis)
                connection.ensure_connection()
                check_renewed(ids)
                rates[processes] = len(ids) / seconds
                print(
                    f"(b) {processes} worker process(es): {len(ids):,} renewals in "
                    f"{seconds:.1f} s, {rates[processes]:.0f}/s"
                )
            report(
                BENCH,
                "renewals/s, one worker process",
                rates[1],
                "renewals/s",
                target=">= 150",
                ok=rates[1] >= 150,
                baseline="old loop: 40/s in the issue",
            )
            report(
                BENCH,
                "two worker processes vs one",
                rates[2] / rates[1],
                "x",
                target=">= 1.7",
                ok=rates[2] / rates[1] >= 1.7,
            )
        else:
            print("(b) worker processes: PostgreSQL only (DATABASE_URL); skipped on SQLite")
        report(
            BENCH,
            f"dispatch time at {args.due:,} due",
            dispatch,
            "s",
            target="<= 24 s (a tenth of the soft limit) at 100,000 due",
            ok=dispatch <= 24 if args.due >= 100_000 else None,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
