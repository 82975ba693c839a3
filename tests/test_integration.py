"""Integration tests that need the real services: a Celery worker on Redis, and
PostgreSQL row locks under concurrent requests. CI runs them; without
REDIS_URL / PostgreSQL they are skipped."""

import os
import threading
import time

import pytest
from django.core import mail
from django.db import close_old_connections, connection
from django.test import override_settings
from django.urls import reverse

from accounts import selectors, services
from accounts.errors import SeatLimitError
from tests.factories import PASSWORD, AccountFactory, MembershipFactory, owner_of


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a real broker)")
@pytest.mark.django_db(transaction=True)
def test_invitation_mail_goes_through_a_real_worker():
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    app.conf.task_always_eager = False
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            account = AccountFactory(seats_paid=2)
            services.invitation_create(
                actor=owner_of(account), account=account, email="via-worker@example.com"
            )
            deadline = time.monotonic() + 20
            while not mail.outbox and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        app.conf.task_always_eager = True
    assert [m.to for m in mail.outbox] == [["via-worker@example.com"]]


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL"
)
@pytest.mark.django_db(transaction=True)
def test_two_owners_racing_for_the_last_seat_get_one_seat():
    account = AccountFactory(seats_paid=2)
    second_owner = MembershipFactory(account=account, role="owner", has_seat=False).user
    candidates = MembershipFactory.create_batch(2, account=account, has_seat=False)
    actors = [owner_of(account), second_owner]
    barrier = threading.Barrier(2)
    outcomes = []

    def give(actor, membership):
        try:
            barrier.wait(timeout=5)
            services.membership_set_seat(actor=actor, membership=membership, has_seat=True)
            outcomes.append("given")
        except SeatLimitError:
            outcomes.append("refused")
        finally:
            close_old_connections()
            connection.close()

    threads = [
        threading.Thread(target=give, args=pair) for pair in zip(actors, candidates, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(outcomes) == ["given", "refused"]
    from django.utils import timezone

    assert selectors.seat_usage(account=account, now=timezone.now()).used == 2


@pytest.mark.django_db
@override_settings(ACCOUNT_RATE_LIMITS={"login_failed": "3/m/ip,3/5m/key"})
def test_failed_sign_ins_are_rate_limited(client):
    account = AccountFactory()
    email = owner_of(account).email
    for _ in range(3):
        response = client.post(reverse("account_login"), {"login": email, "password": "wrong"})
        assert response.status_code == 200
    # Locked out: even the right password is refused, and nobody is signed in.
    response = client.post(reverse("account_login"), {"login": email, "password": PASSWORD})
    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
