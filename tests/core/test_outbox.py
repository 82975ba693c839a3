"""The outbox: a job is a row written in the transaction of the change that asks for it,
published once that commits, left pending (for the relay) when the broker refuses it,
and run once per message."""

import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import services as account_services
from accounts.tasks import send_invitation_email
from core import outbox
from core.models import OutboxMessage
from core.tasks import outbox_relay, relay_when_a_worker_starts
from tests.accounts.test_hardening import staff_client
from tests.factories import AccountFactory, owner_of
from tests.outage_tasks import RUNS, note
from tests.redis_server import RedisServer, free_port, needs_redis_server

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _runs():
    RUNS.clear()
    yield
    RUNS.clear()


@contextmanager
def _jobs_sent_to(broker_url):
    """Jobs really go to the broker at `broker_url`, not run in-process."""
    from config.celery import app

    saved = {
        key: app.conf[key]
        for key in ("task_always_eager", "broker_url", "broker_transport_options")
    }
    app.conf.task_always_eager = False
    app.conf.broker_url = broker_url
    app.conf.broker_transport_options = {"socket_connect_timeout": 0.5, "socket_timeout": 2}
    try:
        yield
    finally:
        app.conf.update(saved)


@pytest.fixture
def broker_down():
    """Jobs really go to a broker, which nothing answers (a closed port)."""
    with _jobs_sent_to(f"redis://127.0.0.1:{free_port()}/0"):
        yield


def pending(*args, task=None, created_at=None, **fields):
    now = timezone.now()
    return OutboxMessage.objects.create(
        task=task or note.name,
        args=list(args),
        created_at=created_at or now,
        next_try_at=fields.pop("next_try_at", now),
        **fields,
    )


def test_a_job_is_written_with_the_change_and_published_when_it_commits(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=False) as hooks, transaction.atomic():
        message = outbox.enqueue(note, 1, word="one")
        assert OutboxMessage.objects.get().sent_at is None
    assert RUNS == [] and len(hooks) == 1
    hooks[0]()  # the commit
    message.refresh_from_db()
    assert RUNS == [((1,), {"word": "one"})]
    assert message.sent_at and message.done_at and message.attempts == 1


def test_jobs_queued_together_are_written_in_one_insert_and_published_at_the_commit(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=False) as hooks, transaction.atomic():
        with CaptureQueriesContext(connection) as writes:
            messages = outbox.enqueue_many(note, [(1,), (2,), (3,)])
        assert len(writes) == 1
        assert OutboxMessage.objects.filter(sent_at__isnull=True).count() == 3
    assert RUNS == [] and len(hooks) == 1  # one publish for them all
    hooks[0]()
    assert RUNS == [((1,), {}), ((2,), {}), ((3,), {})]
    for message in messages:
        message.refresh_from_db()
        assert message.sent_at and message.done_at and message.attempts == 1


def test_jobs_several_commits_release_inside_published_together_go_at_its_end_at_once(
    django_capture_on_commit_callbacks,
):
    with _jobs_sent_to("memory://"):  # kombu's in-process broker: published, not run
        block = outbox.published_together()
        block.__enter__()
        for n in range(3):
            with django_capture_on_commit_callbacks(execute=True):  # a commit each
                outbox.enqueue(note, n)
        assert OutboxMessage.objects.filter(sent_at__isnull=True).count() == 3  # held
        with CaptureQueriesContext(connection) as marks:
            block.__exit__(None, None, None)
    assert [query["sql"].split()[0] for query in marks] == ["UPDATE"]  # one mark for all
    assert OutboxMessage.objects.filter(sent_at__isnull=False).count() == 3
    assert RUNS == []


def test_a_commit_after_published_together_ended_publishes_at_once(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        with outbox.published_together():
            outbox.enqueue(note, 1)  # its transaction is the test's: it commits later
        assert RUNS == []
    assert RUNS == [((1,), {})]


def test_jobs_queued_together_that_the_broker_refuses_all_reach_the_relay(
    django_capture_on_commit_callbacks, caplog
):
    with (
        _jobs_sent_to(f"redis://127.0.0.1:{free_port()}/0"),  # nothing answers there
        django_capture_on_commit_callbacks(execute=True),
    ):
        first, *rest = outbox.enqueue_many(note, [(1,), (2,), (3,)])
    first.refresh_from_db()
    assert first.sent_at is None and first.attempts == 1 and first.last_error
    assert "not queued, the relay will try again" in caplog.text
    assert "(2 more wait for it)" in caplog.text
    for message in rest:  # not tried: pending, for the relay once their grace is over
        message.refresh_from_db()
        assert message.sent_at is None and message.attempts == 0
    assert RUNS == []
    # The broker is back (here: the test settings run each job in-process).
    with time_machine.travel(timezone.now() + outbox.PUBLISH_GRACE + timedelta(seconds=1)):
        assert outbox.relay() == 3
    assert sorted(RUNS) == [((1,), {}), ((2,), {}), ((3,), {})]


def test_a_job_asked_for_by_a_change_that_rolls_back_is_neither_kept_nor_sent(
    django_capture_on_commit_callbacks,
):
    with (
        django_capture_on_commit_callbacks(execute=True) as hooks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        outbox.enqueue(note, 1)
        raise RuntimeError("the change fails")
    assert hooks == [] and RUNS == []
    assert not OutboxMessage.objects.exists()


def test_a_service_queues_its_mail_through_the_outbox(django_capture_on_commit_callbacks):
    account = AccountFactory(seats_paid=2)
    with django_capture_on_commit_callbacks(execute=True):
        invitation, _ = account_services.invitation_create(
            actor=owner_of(account), account=account, email="new@example.com"
        )
    message = OutboxMessage.objects.get()
    assert (message.task, message.args) == (
        send_invitation_email.name,
        [invitation.pk, invitation.nonce],
    )
    assert message.sent_at and message.done_at
    assert [m.to for m in mail.outbox] == [["new@example.com"]]


def test_a_job_the_broker_refuses_stays_pending_and_the_change_stands(
    broker_down, django_capture_on_commit_callbacks, caplog
):
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        message = outbox.enqueue(note, 1)
    assert time.monotonic() - started < 2  # one refused connection, no retry loop
    message.refresh_from_db()
    assert message.sent_at is None and message.attempts == 1
    assert message.last_error.startswith("OperationalError: ")
    assert message.next_try_at <= timezone.now()  # due for the relay
    assert "not queued, the relay will try again" in caplog.text
    assert RUNS == []


def test_the_relay_leaves_every_job_pending_while_the_broker_is_down(broker_down, caplog):
    messages = [pending("a"), pending("b")]
    assert outbox.relay() == 0
    assert OutboxMessage.objects.filter(sent_at=None).count() == len(messages)
    assert "the broker is unreachable" in caplog.text


def test_the_relay_publishes_due_jobs_oldest_first_and_each_once():
    now = timezone.now()
    pending("later", created_at=now - timedelta(minutes=1))
    pending("older", created_at=now - timedelta(minutes=2))
    waiting = pending("not yet", next_try_at=now + timedelta(hours=1))
    pending("sent", sent_at=now)
    assert outbox.relay() == 2
    assert RUNS == [(("older",), {}), (("later",), {})]
    assert outbox.relay() == 0
    assert len(RUNS) == 2
    assert list(OutboxMessage.objects.filter(sent_at=None)) == [waiting]


def test_a_job_that_ran_to_its_end_is_not_run_again():
    message = pending("once")
    note.apply(args=["once"], task_id=message.task_id)  # delivered and run
    message.refresh_from_db()
    assert message.done_at is not None
    note.apply(args=["once"], task_id=message.task_id)  # delivered again
    assert RUNS == [(("once",), {})]
    # Its publish was not marked (the process died first): the relay only marks it.
    assert outbox.relay() == 0
    message.refresh_from_db()
    assert message.sent_at == message.done_at
    assert len(RUNS) == 1


def test_a_job_whose_task_is_gone_waits_without_holding_up_the_others():
    now = timezone.now()
    gone = pending(task="billing.tasks.renamed_long_ago", created_at=now - timedelta(minutes=5))
    pending("after")
    assert outbox.relay() == 1
    assert RUNS == [(("after",), {})]
    gone.refresh_from_db()
    assert gone.sent_at is None and gone.attempts == 1
    assert "no task named 'billing.tasks.renamed_long_ago'" in gone.last_error
    assert gone.next_try_at >= now + timedelta(minutes=1)


def test_a_job_with_a_countdown_waits_for_the_relay(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as hooks:
        message = outbox.enqueue(note, "later", countdown=90)
    assert hooks == []
    assert message.next_try_at - message.created_at == timedelta(seconds=90)
    assert outbox.relay() == 0
    with time_machine.travel(message.next_try_at, tick=False):
        assert outbox.relay() == 1
    assert RUNS == [(("later",), {})]


def test_jobs_sent_long_ago_are_deleted():
    now = timezone.now()
    old = pending("old", sent_at=now - timedelta(days=15))
    recent = pending("recent", sent_at=now - timedelta(days=13))
    outbox.relay()
    assert list(OutboxMessage.objects.all()) == [recent]
    assert not OutboxMessage.objects.filter(pk=old.pk).exists()


def test_the_relay_runs_from_beat_from_a_starting_worker_and_from_manage_py(
    capsys, django_capture_on_commit_callbacks
):
    pending("by beat")
    assert outbox_relay.delay().get() == 1
    pending("by a worker")
    with django_capture_on_commit_callbacks(execute=True):
        relay_when_a_worker_starts(sender=None)
    pending("by hand")
    call_command("outbox_relay")
    assert "1 job(s) published" in capsys.readouterr().out
    assert [args for args, _ in RUNS] == [("by beat",), ("by a worker",), ("by hand",)]


def test_staff_read_the_outbox_in_the_console(client):
    sent = pending("sent", sent_at=timezone.now())
    waiting = pending("waiting", last_error="OperationalError: Connection refused")
    staff_client(client, group="Administrator")
    url = reverse("admin:core_outboxmessage_changelist")
    listing = client.get(url + "?state=pending")
    assert listing.status_code == 200
    assert list(listing.context["cl"].queryset) == [waiting]
    assert list(client.get(url + "?state=sent").context["cl"].queryset) == [sent]
    detail = client.get(reverse("admin:core_outboxmessage_change", args=[waiting.pk]))
    assert b"Connection refused" in detail.content
    assert client.get(reverse("admin:core_outboxmessage_add")).status_code == 403


def test_a_batch_publishes_each_job_at_its_commit_and_marks_them_sent_in_one_update(
    django_capture_on_commit_callbacks,
):
    with CaptureQueriesContext(connection) as queries, outbox.sent_marks_batch():
        for word in ("one", "two", "three"):
            with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
                outbox.enqueue(note, word)
            assert RUNS[-1] == ((word,), {})  # published at its commit, not at the end
        assert not OutboxMessage.objects.filter(sent_at__isnull=False).exists()
    marks = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('UPDATE "core_outboxmessage" SET "sent_at"')
    ]
    assert len(marks) == 1
    assert set(OutboxMessage.objects.values_list("attempts", "last_error")) == {(1, "")}
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()


def test_a_batch_that_ends_in_an_error_still_marks_what_it_published(
    django_capture_on_commit_callbacks,
):
    with pytest.raises(RuntimeError), outbox.sent_marks_batch():
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            message = outbox.enqueue(note, 1)
        raise RuntimeError("the next renewal fails")
    message.refresh_from_db()
    assert message.sent_at is not None and message.attempts == 1


def test_a_long_batch_writes_its_marks_before_the_relay_would_take_them_for_lost(
    django_capture_on_commit_callbacks, monkeypatch
):
    assert outbox.PUBLISH_GRACE.total_seconds() / 2 > outbox.SENT_MARKS_MAX_AGE
    monkeypatch.setattr(outbox, "SENT_MARKS_MAX_AGE", 0)
    with outbox.sent_marks_batch():
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            message = outbox.enqueue(note, 1)
        message.refresh_from_db()
        assert message.sent_at is not None  # written at once: its mark was due


@pytest.fixture
def own_broker(tmp_path):
    """A broker of the test's own (a redis-server), which it can stop and start again."""
    server = RedisServer(tmp_path)
    server.start()
    with _jobs_sent_to(server.url(0)):
        yield server
    server.stop()


def _queued(server) -> int:
    import redis

    client = redis.Redis(port=server.port)
    try:
        return client.llen("celery")
    finally:
        client.close()


@needs_redis_server
def test_publishing_reuses_one_broker_connection_and_recovers_from_a_restart(
    own_broker, django_capture_on_commit_callbacks
):
    def job(n):
        with django_capture_on_commit_callbacks(execute=True):
            message = outbox.enqueue(note, n)
        message.refresh_from_db()
        return message

    import redis

    watcher = redis.Redis(port=own_broker.port)  # one connection, counted once
    assert job(1).sent_at is not None
    opened = watcher.info("stats")["total_connections_received"]
    assert all(job(n).sent_at is not None for n in (2, 3, 4))
    assert watcher.info("stats")["total_connections_received"] == opened  # none per message
    watcher.close()
    assert _queued(own_broker) == 4

    own_broker.stop()
    refused = job(5)
    assert refused.sent_at is None and refused.attempts == 1  # waits for the relay
    own_broker.start()  # empty again: nothing is kept on disk
    assert job(6).sent_at is not None  # the pooled connection connects afresh
    assert outbox.relay() == 1
    refused.refresh_from_db()
    assert refused.sent_at is not None and _queued(own_broker) == 2
