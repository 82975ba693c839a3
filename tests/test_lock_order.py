"""billing/locks.py's order on PostgreSQL, with real threads: a change that holds the
account and wants a lower row never waits forever on one that holds the lower row and
then needs the account (its audit row's foreign key to the account is checked at
commit). Every path takes the account first, and the account's lock is FOR NO KEY
UPDATE, which a foreign-key check does not wait for."""

import os
import threading
import time
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from tests.factories import AccountFactory, owner_of

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL"
    ),
    pytest.mark.django_db(transaction=True),
]


def _race(first, second, *, module, monkeypatch):
    """Run `first` (a thread that pauses at its first audit row, its rows locked) and
    `second` (started once the first holds its locks); what each returned or raised."""
    locked = threading.Event()
    real_audit = module.audit_record

    def slow_audit(**kwargs):
        if threading.current_thread().name == "first" and not locked.is_set():
            locked.set()
            time.sleep(0.5)  # the second takes the account meanwhile
        return real_audit(**kwargs)

    monkeypatch.setattr(module, "audit_record", slow_audit)
    outcomes = {}

    def run(name, call):
        try:
            if name == "second":
                locked.wait(5)
            outcomes[name] = call()
        except Exception as exc:
            outcomes[name] = exc
        finally:
            close_old_connections()
            connection.close()

    threads = [
        threading.Thread(target=run, args=(name, call), name=name)
        for name, call in (("first", first), ("second", second))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return outcomes


def test_the_refund_deadline_sweep_and_staff_taking_the_request(
    settings, monkeypatch, shop_prices, billing_staff
):
    from billing import services as billing_services
    from refunds import services

    settings.REFUND_POLICY = "acelle"
    account = AccountFactory(name="Acme", timezone="America/New_York")
    order = billing_services.purchase_place(
        actor=owner_of(account), account=account, items=[{"price": shop_prices["plugin"].pk}]
    )
    billing_services.payment_record_manual(actor=billing_staff, order=order, reference="B")
    request = services.refund_request_submit(
        actor=owner_of(account),
        account=account,
        line_ids=[order.lines.get().pk],
        reason="no_longer_needed",
        payout_method="original",
    )
    later = timezone.now() + timedelta(days=30)  # every deadline breached
    outcomes = _race(
        lambda: services.refund_deadlines_sweep(now=later),
        lambda: services.refund_request_take(actor=billing_staff, request=request),
        module=services,
        monkeypatch=monkeypatch,
    )
    assert not [o for o in outcomes.values() if isinstance(o, Exception)], outcomes
    request.refresh_from_db()
    assert request.holder == billing_staff and request.breached


def test_a_note_on_an_extra_incident_and_the_payment_of_its_order(
    settings, monkeypatch, billing_staff
):
    from django.contrib.auth.models import Group

    from billing import services as billing_services
    from billing.models import Order
    from support import services
    from tests.factories import UserFactory
    from tests.support.test_incidents import cloud_account, open_one

    settings.VENDOR_TIMEZONE = "America/New_York"
    from billing.models import Price, Product

    Price.objects.create(
        product=Product.objects.create(code="extra", name="Extra", kind="support_incident"),
        currency="USD",
        amount=150,
        interval="one_off",
    )
    agent = UserFactory(is_staff=True)
    agent.groups.add(Group.objects.get(name="Support agent"))
    account = cloud_account(1)
    open_one(account)
    extra = open_one(account, confirm_extra=True)
    assert extra.state == "awaiting_payment"
    order = Order.objects.get(pk=extra.order_id)
    outcomes = _race(
        lambda: services.incident_respond(
            actor=agent, incident=extra, body="The customer called.", internal=True
        ),
        lambda: billing_services.payment_record_manual(
            actor=billing_staff, order=order, reference="WIRE"
        ),
        module=services,
        monkeypatch=monkeypatch,
    )
    assert not [o for o in outcomes.values() if isinstance(o, Exception)], outcomes
    extra.refresh_from_db()
    assert extra.state == "open"
