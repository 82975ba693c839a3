"""Refund money moves exactly once: the same decision, manual payout or card refund asked
many times at once (real threads, PostgreSQL row locks), or a worker killed in the middle
of a card refund and the job run again. Skipped without PostgreSQL; CI runs it."""

import os
import threading
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.errors import PortalError
from accounts.models import AuditEvent
from billing import gateways
from billing import services as billing_services
from billing.gateways import ChargeResult
from billing.models import LedgerEntry, Licence, Payment
from refunds import services
from refunds.models import RefundPayout, RefundRequest
from tests.factories import AccountFactory, UserFactory, owner_of
from tests.races import run_together

THREADS = 20

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL"
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def reviewer():
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Billing reviewer"))
    return user


def fresh(model, pk):
    """A thread's own copy of a row (no instance, nor its caches, shared across threads)."""
    return model.objects.get(pk=pk)


def decided_request(account, order, reviewer, *, payout_method):
    """A request whose every line staff approved in full; the request itself not decided."""
    request = services.refund_request_submit(
        actor=owner_of(account),
        account=account,
        line_ids=[line.pk for line in order.lines.all()],
        reason="no_longer_needed",
        payout_method=payout_method,
    )
    for line in request.lines.all():
        services.refund_line_decide(actor=reviewer, line=line, approve=True)
    return request


def test_twenty_decisions_at_once_credit_the_account_once(paid_order, reviewer):
    account, order = paid_order(when=timezone.now())  # within every refund window
    request = decided_request(account, order, reviewer, payout_method="credit")
    User = get_user_model()

    def decide():
        return services.refund_request_decide(
            actor=fresh(User, reviewer.pk), request=fresh(RefundRequest, request.pk)
        )

    outcomes = run_together(*[decide] * THREADS)

    won = [o for o in outcomes if isinstance(o, RefundRequest)]
    lost = [o for o in outcomes if not isinstance(o, RefundRequest)]
    assert len(won) == 1 and won[0].state == "credited"
    assert len(lost) == THREADS - 1
    for error in lost:  # the clean refusal of an illegal move, nothing else
        assert type(error) is PortalError, repr(error)
        assert str(error) == (
            f"{request.number} is credited to your account: it cannot become decided."
        )
    request.refresh_from_db()
    assert request.state == "credited" and request.approved_total == Decimal("149.00")
    entry = LedgerEntry.objects.get(kind="refund_credit")
    assert entry.amount == Decimal("149.00") and entry.reference == request.number
    payout = RefundPayout.objects.get()
    assert (payout.method, payout.status, payout.amount) == ("credit", "succeeded", Decimal(149))
    assert AuditEvent.objects.filter(action="refund.paid_out").count() == 1
    assert (
        AuditEvent.objects.filter(
            action="refund.state_changed", changes__state=["in_review", "decided"]
        ).count()
        == 1
    )


def test_twenty_recordings_of_the_same_manual_payout_pay_once(paid_order, reviewer):
    account, order = paid_order(when=timezone.now())  # within every refund window
    request = decided_request(account, order, reviewer, payout_method="original")
    services.refund_request_decide(actor=reviewer, request=request)
    payout = RefundPayout.objects.get(request=request)
    assert (payout.method, payout.status) == ("manual", "pending")
    User = get_user_model()

    outcomes = run_together(
        *(
            (
                lambda n=n: services.refund_payout_record_manual(
                    actor=fresh(User, reviewer.pk),
                    payout=fresh(RefundPayout, payout.pk),
                    reference=f"WIRE-OUT-{n}",
                )
            )
            for n in range(THREADS)
        )
    )

    assert all(isinstance(o, RefundPayout) for o in outcomes), outcomes
    payout.refresh_from_db()
    request.refresh_from_db()
    assert payout.status == "succeeded" and payout.reference.startswith("WIRE-OUT-")
    assert RefundPayout.objects.filter(status="succeeded").count() == 1
    assert Payment.objects.get(order=order).refunded == Decimal("149.00")
    assert request.state == "paid"
    assert AuditEvent.objects.filter(action="refund.paid_out").count() == 1
    assert Licence.objects.get(line__order=order).status == "revoked"


def _second_request_for_the_same_purchase(request):
    """A copy of `request` about the same purchases, as if the open-request guard had not
    been there (a request filed before it, or made by hand)."""
    from refunds.models import RefundLine

    twin = RefundRequest.objects.get(pk=request.pk)
    twin.pk, twin.number = None, f"{request.number}-B"
    twin.save()
    for line in RefundLine.objects.filter(request=request):
        line.pk, line.request = None, twin
        line.save()
    return twin


@pytest.mark.parametrize("payout_method", ["credit", "original"])
def test_two_requests_for_one_purchase_decided_at_once_pay_out_the_purchase_once(
    paid_order, reviewer, payout_method
):
    account, order = paid_order(when=timezone.now(), items=("credits",))  # 100.00
    first = decided_request(account, order, reviewer, payout_method=payout_method)
    second = _second_request_for_the_same_purchase(first)
    User = get_user_model()

    def decide(pk):
        return lambda: services.refund_request_decide(
            actor=fresh(User, reviewer.pk), request=fresh(RefundRequest, pk)
        )

    outcomes = run_together(decide(first.pk), decide(second.pk))

    won = [o for o in outcomes if isinstance(o, RefundRequest)]
    lost = [o for o in outcomes if not isinstance(o, RefundRequest)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert type(lost[0]) is PortalError and "has 0.00 USD left to refund" in str(lost[0])
    assert won[0].number in str(lost[0])  # it names the request that is paying it back
    for payout in RefundPayout.objects.filter(status="pending", method="manual"):
        services.refund_payout_record_manual(actor=reviewer, payout=payout, reference="WIRE")
    line = order.lines.get()
    line.refresh_from_db()
    assert line.refunded == Decimal("100.00")
    paid_out = sum(p.amount for p in RefundPayout.objects.filter(status="succeeded"))
    assert paid_out == Decimal("100.00")
    payment = Payment.objects.get(order=order)
    credit = sum(e.amount for e in LedgerEntry.objects.filter(kind="refund_credit"))
    assert payment.refunded + credit == Decimal("100.00")


# --- the card path, with a Stripe that remembers its idempotency keys --------------------


class WorkerKilled(Exception):
    """The worker died after Stripe refunded and before the portal heard back."""


class FakeStripe:
    """Stands for Stripe: a key seen before returns the refund it created then."""

    name = "stripe"
    lock = threading.Lock()
    refunds: dict = {}  # idempotency key -> refund id
    created: list = []  # (refund id, charge, amount): the money that went back
    keys: list = []  # every key a refund was asked with
    kill_after_refund = 0  # the next N calls die once "Stripe" has refunded

    def charge(self, *, account, amount, idempotency_key, description, payment_id=None):
        return ChargeResult(status="succeeded", reference=f"pi_fake_{payment_id}")

    def refund(self, *, charge_reference, amount, idempotency_key, metadata):
        with FakeStripe.lock:
            FakeStripe.keys.append(idempotency_key)
            if idempotency_key not in FakeStripe.refunds:
                refund_id = f"re_fake_{len(FakeStripe.created) + 1}"
                FakeStripe.refunds[idempotency_key] = refund_id
                FakeStripe.created.append((refund_id, charge_reference, amount.amount))
            refund_id = FakeStripe.refunds[idempotency_key]
            if FakeStripe.kill_after_refund:
                FakeStripe.kill_after_refund -= 1
                raise WorkerKilled(f"killed after Stripe made {refund_id}")
        return ChargeResult(status="succeeded", reference=refund_id)


@pytest.fixture
def fake_stripe(monkeypatch, settings):
    monkeypatch.setitem(gateways.GATEWAYS, "stripe", f"{__name__}.FakeStripe")
    settings.BILLING_GATEWAY = "stripe"
    FakeStripe.refunds, FakeStripe.created, FakeStripe.keys = {}, [], []
    FakeStripe.kill_after_refund = 0
    return FakeStripe


@pytest.fixture
def card_payout(fake_stripe, catalogue, reviewer, monkeypatch):
    """A card-paid order whose refund of 149.00 was approved; its job queued, not run."""
    from refunds import tasks

    queued = []
    # Published on commit (the outbox), not run: the tests run the job themselves.
    monkeypatch.setattr(
        tasks.refund_payout_run, "apply_async", lambda args, kwargs, **_: queued.append(*args)
    )
    account = AccountFactory(name="Acme", timezone="America/New_York")
    order = billing_services.purchase_place(
        actor=owner_of(account),
        account=account,
        items=[{"price": catalogue[name].pk} for name in ("credits", "plugin")],
    )
    payment = Payment.objects.get(order=order, status="succeeded")
    assert payment.gateway == "stripe" and payment.reference == f"pi_fake_{payment.pk}"
    request = decided_request(account, order, reviewer, payout_method="original")
    services.refund_request_decide(actor=reviewer, request=request)
    payout = RefundPayout.objects.get(request=request)
    assert (payout.method, payout.status, payout.amount) == ("stripe", "pending", Decimal(149))
    assert queued == [payout.pk]
    return payout


def assert_refunded_once(payout, fake):
    payout.refresh_from_db()
    request = payout.request
    request.refresh_from_db()
    assert payout.status == "succeeded" and payout.reference == "re_fake_1"
    assert fake.created == [("re_fake_1", payout.payment.reference, Decimal("149.00"))]
    assert set(fake.keys) == {payout.idempotency_key}
    assert Payment.objects.get(pk=payout.payment_id).refunded == Decimal("149.00")
    assert request.state == "paid"
    assert AuditEvent.objects.filter(action="refund.paid_out").count() == 1
    assert RefundPayout.objects.filter(request=request).count() == 1


def test_a_worker_killed_mid_refund_and_the_job_run_again_refunds_once(card_payout, fake_stripe):
    fake_stripe.kill_after_refund = 1
    with pytest.raises(WorkerKilled):
        services.refund_payout_run(payout_id=card_payout.pk)
    card_payout.refresh_from_db()
    assert card_payout.status == "pending" and card_payout.attempts == 1
    assert Payment.objects.get(pk=card_payout.payment_id).refunded == 0

    services.refund_payout_run(payout_id=card_payout.pk)  # the job, redelivered
    assert fake_stripe.keys == [card_payout.idempotency_key] * 2
    assert_refunded_once(card_payout, fake_stripe)
    assert card_payout.attempts == 2

    services.refund_payout_run(payout_id=card_payout.pk)  # and again: Stripe is not asked
    assert len(fake_stripe.keys) == 2
    assert_refunded_once(card_payout, fake_stripe)


def test_the_job_delivered_twenty_times_at_once_refunds_once(card_payout, fake_stripe):
    fake_stripe.kill_after_refund = 3  # some of the workers die on the way, too
    outcomes = run_together(
        *(lambda: services.refund_payout_run(payout_id=card_payout.pk) for _ in range(THREADS))
    )
    errors = [o for o in outcomes if not isinstance(o, RefundPayout)]
    assert all(isinstance(error, WorkerKilled) for error in errors), errors
    assert len(errors) <= 3
    assert_refunded_once(card_payout, fake_stripe)
