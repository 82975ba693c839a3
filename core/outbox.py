"""The outbox: a job that a change asks for is a row written in the change's own
transaction, so the job exists exactly when the change does, whether the broker is up
or not.

Once the transaction commits, the row is published to the broker at once. A row the
broker refused (down, unreachable), or whose process died before publishing it, is
published by the relay: the `core.tasks.outbox_relay` beat job every minute, at each
worker's start, and `manage.py outbox_relay`.

Delivery is at least once: tasks stay safe to run twice, and a message that already ran
to its end is not run again (core.task_base.OutboxTask).
"""

import logging
import time
from contextlib import contextmanager, nullcontext, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from celery import current_app
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from kombu import pools
from kombu.exceptions import OperationalError as BrokerUnreachable

from .models import OutboxMessage

logger = logging.getLogger(__name__)

# The relay leaves a new message to its on-commit publish for this long.
PUBLISH_GRACE = timedelta(seconds=30)
# A message that fails for a reason of its own (its task unknown to this release, say)
# waits this long before the next try, doubling up to the maximum, so it does not hold up
# the others.
FAILED_WAIT = timedelta(minutes=1)
FAILED_WAIT_MAX = timedelta(hours=1)
# Published messages are kept this long for the staff console, then deleted.
KEEP_SENT = timedelta(days=14)


def enqueue(task, *args, countdown: float | None = None, **kwargs) -> OutboxMessage:
    """Queue `task(*args, **kwargs)` with the caller's transaction: published once it
    commits, never if it rolls back.

    With `countdown` (seconds) the relay publishes it once that time has passed, rather
    than the broker holding it: on Redis, a message held longer than the visibility
    timeout is handed out a second time (settings, CELERY_BROKER_TRANSPORT_OPTIONS)."""
    message = _message(task, args, kwargs, timezone.now(), countdown=countdown)
    message.save(force_insert=True)
    if not countdown:
        transaction.on_commit(partial(_release, [message]))
    return message


def enqueue_many(task, calls: list[tuple]) -> list[OutboxMessage]:
    """Queue `task(*args)` for each `args` in `calls` with the caller's transaction, in
    one INSERT (a chunk of renewals, each queuing its payment job); each message is
    published once the transaction commits, as enqueue() does."""
    now = timezone.now()
    messages = OutboxMessage.objects.bulk_create([_message(task, args, {}, now) for args in calls])
    if messages:
        transaction.on_commit(partial(_release, messages))
    return messages


def _message(task, args, kwargs, now, *, countdown: float | None = None) -> OutboxMessage:
    return OutboxMessage(
        task=task.name,
        args=list(args),
        kwargs=kwargs,
        created_at=now,
        next_try_at=now + (timedelta(seconds=countdown) if countdown else PUBLISH_GRACE),
    )


@dataclass
class _SentMarks:
    pks: list[int]
    since: float  # time.monotonic() of the oldest mark held


# The marks held by the open sent_marks_batch(), if any.
_SENT_MARKS: ContextVar[_SentMarks | None] = ContextVar("outbox_sent_marks", default=None)
# A batch writes the marks it holds at least this often: well inside PUBLISH_GRACE, so
# the relay never takes a published message for one that was lost.
SENT_MARKS_MAX_AGE = 5.0


@contextmanager
def sent_marks_batch():
    """For a loop of short transactions that each queue a job (a chunk of renewals):
    each job is still published as its transaction commits, but the "sent" marks of
    those published are written in one UPDATE when the block ends, however it ends (and
    every SENT_MARKS_MAX_AGE seconds). A mark lost with its process only means that the
    relay publishes the message again, as when a process dies before its publish:
    delivery is at least once, and a message whose task ran is not run again."""
    if _SENT_MARKS.get() is not None:
        yield
        return
    marks = _SentMarks(pks=[], since=0.0)
    token = _SENT_MARKS.set(marks)
    try:
        yield
    finally:
        _SENT_MARKS.reset(token)
        _write_sent_marks(marks)


def _write_sent_marks(marks: _SentMarks) -> None:
    if marks.pks:
        _mark_sent(*marks.pks)
        marks.pks.clear()


def _sent(messages: list[OutboxMessage]) -> None:
    if not messages:
        return
    marks = _SENT_MARKS.get()
    if marks is None:
        _mark_sent(*(message.pk for message in messages))
        return
    if not marks.pks:
        marks.since = time.monotonic()
    marks.pks.extend(message.pk for message in messages)
    if time.monotonic() - marks.since >= SENT_MARKS_MAX_AGE:
        _write_sent_marks(marks)


# The messages held by the open published_together(), if any.
_HELD: ContextVar[list[OutboxMessage] | None] = ContextVar("outbox_held", default=None)


@contextmanager
def published_together():
    """For a transaction that queues many jobs (a batch of mails, most of them
    answered): the messages its commit releases are published when the block ends, in
    their order, over one producer and with one "sent" UPDATE, rather than each as it
    is queued. Wrap the transaction in it; a message whose transaction commits after
    the block (an outer one) is published at that commit, as usual."""
    if _HELD.get() is not None:
        yield
        return
    held: list[OutboxMessage] = []
    token = _HELD.set(held)
    try:
        yield
    finally:
        _HELD.reset(token)
        publish_all(held)


def _release(messages: list[OutboxMessage]) -> None:
    """On commit: publish the messages now, or hold them for published_together()."""
    held = _HELD.get()
    if held is None:
        publish_all(messages)
    else:
        held.extend(messages)


def publish_all(messages: list[OutboxMessage]) -> int:
    """Hand messages to the broker now, in their order, over one producer; returns how
    many it took. The one the broker refused is marked for the relay's next run, and
    those after it stay pending: the relay publishes them once their grace is over."""
    if not messages:
        return 0
    app = current_app
    if app.conf.task_always_eager:
        # Tests run tasks in-process: each task runs here and its errors propagate.
        for message in messages:
            _send(app, message, producer=None)
            _sent([message])
        return len(messages)
    taken: list[OutboxMessage] = []
    try:
        with _producer(app) as producer:
            for message in messages:
                _send(app, message, producer)
                taken.append(message)
    except Exception as exc:
        # After the commit: the change stands, and its job waits for the relay.
        refused = messages[len(taken)]
        logger.warning(
            "Job %s (outbox message %s) not queued, the relay will try again: %s%s",
            refused.task,
            refused.pk,
            exc,
            f" ({len(messages) - len(taken) - 1} more wait for it)"
            if len(messages) - len(taken) > 1
            else "",
        )
        _mark_failed(refused, exc, wait=timedelta(0))
    _sent(taken)
    return len(taken)


def relay(*, limit: int = 500) -> int:
    """Publish the pending messages that are due, oldest first, each in a transaction
    that locks its row (another relay skips it). Stops at the first broker error: the
    next run starts again from the oldest. Returns how many were published."""
    app = current_app
    eager = app.conf.task_always_eager
    published = 0
    try:
        with nullcontext() if eager else _producer(app) as producer:
            for _ in range(limit):
                outcome = _relay_one(app, producer, eager=eager)
                if outcome is None:
                    break
                published += outcome == "published"
                if outcome == "broker down":
                    break
    except (BrokerUnreachable, OSError) as exc:
        logger.warning("Outbox relay: the broker is unreachable (%s); it tries again", exc)
    OutboxMessage.objects.filter(sent_at__lt=timezone.now() - KEEP_SENT).delete()
    return published


def _relay_one(app, producer, *, eager: bool) -> str | None:
    with transaction.atomic():
        message = _next_due(timezone.now())
        if message is None:
            return None
        if message.done_at is not None:
            # Its task ran: only the mark of its publish was lost.
            OutboxMessage.objects.filter(pk=message.pk).update(sent_at=message.done_at)
            return "already done"
        try:
            _send(app, message, producer)
        except UnknownTask as exc:
            # Not in this release (renamed, removed): it waits, and the others go on.
            _mark_failed(message, exc, wait=_failed_wait(message))
            logger.error("Outbox relay: message %s: %s", message.pk, exc)
            return "failed"
        except (BrokerUnreachable, OSError) as exc:
            if eager:
                raise  # the task's own error, raised in-process (tests)
            _mark_failed(message, exc, wait=timedelta(0))
            logger.warning("Outbox relay: the broker refused message %s: %s", message.pk, exc)
            return "broker down"
        except Exception as exc:
            if eager:
                raise
            _mark_failed(message, exc, wait=_failed_wait(message))
            logger.exception("Outbox relay: message %s (%s) failed", message.pk, message.task)
            return "failed"
        _mark_sent(message.pk)
        return "published"


def _failed_wait(message: OutboxMessage) -> timedelta:
    return min(FAILED_WAIT * 2**message.attempts, FAILED_WAIT_MAX)


def _next_due(now) -> OutboxMessage | None:
    pending = OutboxMessage.objects.filter(sent_at__isnull=True, next_try_at__lte=now).order_by(
        "created_at", "pk"
    )
    if connection.features.has_select_for_update_skip_locked:
        pending = pending.select_for_update(skip_locked=True)
    # SQLite has no row locks; its write transactions (IMMEDIATE, see settings) take
    # turns, so two relays still never hold the same row at once.
    return pending.first()


@contextmanager
def _producer(app):
    """A producer on a broker connection from the process's pool (the one Celery's own
    publishing uses, per broker address): a connection opened once is reused by every
    later publish, not opened and closed per message."""
    with pools.connections[app.connection_for_write()].acquire(block=True) as conn:
        try:
            # One attempt: a broker that is down costs one connect timeout, not kombu's
            # default loop of retries. A connection still open returns at once.
            conn.ensure_connection(max_retries=0)
            yield app.amqp.Producer(conn)
        except BaseException:
            # Whatever failed, the next user of this pooled connection connects afresh.
            with suppress(Exception):
                conn.close()
            raise


class UnknownTask(LookupError):
    pass


def _send(app, message: OutboxMessage, producer) -> None:
    task = app.tasks.get(message.task)
    if task is None:
        raise UnknownTask(f"no task named {message.task!r}")
    task.apply_async(
        message.args, message.kwargs, task_id=message.task_id, producer=producer, retry=False
    )


def _mark_sent(*pks: int) -> None:
    OutboxMessage.objects.filter(pk__in=pks, sent_at__isnull=True).update(
        sent_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
    )


def _mark_failed(message: OutboxMessage, exc: Exception, *, wait: timedelta) -> None:
    OutboxMessage.objects.filter(pk=message.pk).update(
        attempts=F("attempts") + 1,
        last_error=f"{exc.__class__.__name__}: {exc}"[:2000],
        next_try_at=timezone.now() + wait,
    )
