"""Webhooks: signed as documented, retried with back-off then marked failed, replayable,
and never sent for a transaction that rolls back."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import time_machine
from django.db import transaction

from core import outbox
from core.models import OutboxMessage
from marketplace import services, tasks
from marketplace.models import WebhookDelivery
from marketplace.webhooks import SIGNATURE_HEADER, sign, verify

from .conftest import plan_of

pytestmark = pytest.mark.django_db


class Endpoint:
    """A developer's endpoint on loopback that answers `status` and keeps what it got."""

    def __init__(self, status=200):
        self.status, self.received = status, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), body))
                self.send_response(outer.status)
                self.end_headers()
                self.wfile.write(b"ok" if outer.status < 300 else b"nope")

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def endpoint():
    server = Endpoint()
    yield server
    server.close()


def test_the_documented_recipe_verifies_a_signature():
    body = b'{"a":1}'
    now = int(time.time())
    header = sign("whsec_x", body, now)
    assert verify("whsec_x", body, header, now=now)
    assert not verify("whsec_y", body, header, now=now)
    assert not verify("whsec_x", body + b" ", header, now=now)
    assert not verify("whsec_x", body, header, now=now + 301)  # too old: a replay


def test_install_is_delivered_signed(
    endpoint, make_app, owner, account, django_capture_on_commit_callbacks
):
    app = make_app("calendar", "free", webhook_url=endpoint.url)
    with django_capture_on_commit_callbacks(execute=True):
        services.installation_install(actor=owner, account=account, app=app, plan=plan_of(app))
    delivery = WebhookDelivery.objects.get()
    assert (
        delivery.status == "delivered"
        and delivery.attempts == 1
        and delivery.response_status == 200
    )
    headers, body = endpoint.received[0]
    assert verify("whsec_test", body, headers[SIGNATURE_HEADER])
    payload = json.loads(body)
    assert payload["type"] == "installation.created"
    assert payload["installation"]["account"] == account.pk
    assert headers["Portal-Event-Id"] == delivery.event_id


def test_a_failing_endpoint_is_retried_then_marked_failed(
    endpoint, make_app, owner, account, django_capture_on_commit_callbacks, settings
):
    endpoint.status = 500
    settings.MARKETPLACE_WEBHOOK_ATTEMPTS = 3
    app = make_app("calendar", "free", webhook_url=endpoint.url)
    with django_capture_on_commit_callbacks(execute=True):
        services.installation_install(actor=owner, account=account, app=app, plan=plan_of(app))
    first = OutboxMessage.objects.filter(task=tasks.deliver_webhook.name).earliest("pk")
    assert first.sent_at is not None  # the first send, on commit
    waits = []
    for _ in range(2):
        retry = OutboxMessage.objects.get(task=tasks.deliver_webhook.name, sent_at=None)
        waits.append((retry.next_try_at - retry.created_at).total_seconds())
        assert outbox.relay() == 0  # not before its time
        with time_machine.travel(retry.next_try_at, tick=False):
            assert outbox.relay() == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 3
    assert delivery.response_status == 500 and delivery.response_body == "nope"
    assert len(endpoint.received) == 3
    assert waits == [30, 120]  # back-off between tries, through the outbox
    assert not OutboxMessage.objects.filter(sent_at=None).exists()  # no fourth try
    endpoint.status = 200
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_replay(actor=_staff(), delivery=delivery)
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def _staff():
    from tests.factories import UserFactory

    return UserFactory(is_staff=True, is_superuser=True)


def test_nothing_is_sent_for_a_rolled_back_transaction(
    endpoint, make_app, owner, account, django_capture_on_commit_callbacks
):
    app = make_app("calendar", "free", webhook_url=endpoint.url)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                services.installation_install(
                    actor=owner, account=account, app=app, plan=plan_of(app)
                )
                raise RuntimeError("boom")
        except RuntimeError:
            pass
    assert callbacks == []
    assert not WebhookDelivery.objects.exists()
    assert endpoint.received == []
