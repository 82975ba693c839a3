"""Refund payouts on a Stripe charge, against localstripe: the amount in minor units under
the payout's stored key, the webhooks that settle it (each once), a failure and its retry.

The `stripe_on` fixture (tests/stripe_fixtures.py) starts localstripe on loopback; without
it these tests are skipped, unless CI=true or REQUIRE_STRIPE=1.
"""

from decimal import Decimal

import pytest
import stripe
from djstripe.models import Event, WebhookEventTrigger

from accounts.errors import PortalError
from accounts.models import AuditEvent
from billing import services as billing_services
from billing.gateways import ChargeResult
from billing.gateways.stripe import StripeGateway
from billing.models import Payment
from billing.money import Money
from refunds import services
from refunds.models import RefundPayout, RefundRequest
from tests.billing.test_stripe import give_card, post_webhook, signed_event, stripe_json
from tests.factories import AccountFactory, UserFactory, owner_of
from tests.stripe_fixtures import SECRET_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer():
    from django.contrib.auth.models import Group

    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Billing reviewer"))
    return user


@pytest.fixture
def refund_calls(monkeypatch):
    """Every stripe.Refund.create the portal makes, passed on to localstripe."""
    calls = []
    create = stripe.Refund.create

    def spy(**kwargs):
        calls.append(kwargs)
        return create(**kwargs)

    monkeypatch.setattr(stripe.Refund, "create", spy)
    return calls


@pytest.fixture
def card_order(stripe_on, catalogue, django_capture_on_commit_callbacks):
    """Acme bought credits (100) and a plugin (49) today, charged to its Visa at Stripe."""
    account = AccountFactory(name="Acme", timezone="America/New_York")
    give_card(account)
    with django_capture_on_commit_callbacks(execute=True):
        order = billing_services.purchase_place(
            actor=owner_of(account),
            account=account,
            items=[{"price": catalogue[name].pk} for name in ("credits", "plugin")],
        )
    order.refresh_from_db()
    payment = Payment.objects.get(order=order, status="succeeded")
    assert order.status == "paid" and payment.gateway == "stripe"
    assert payment.amount == Decimal("149.00") and payment.reference.startswith("pi_")
    return account, order, payment


def submit(account, order):
    return services.refund_request_submit(
        actor=owner_of(account),
        account=account,
        line_ids=[line.pk for line in order.lines.all()],
        reason="no_longer_needed",
        payout_method="original",
    )


def approve(request, reviewer, *, credits="100.00", plugin=True):
    lines = request.lines.order_by("order_line_id")
    services.refund_line_decide(actor=reviewer, line=lines[0], approve=True, amount=credits)
    if plugin:
        services.refund_line_decide(actor=reviewer, line=lines[1], approve=True)
    else:
        services.refund_line_decide(
            actor=reviewer, line=lines[1], approve=False, reason="The key was activated."
        )


def stripe_refunds(payment):
    return stripe.Refund.list(payment_intent=payment.reference, api_key=SECRET_KEY).data


def test_an_approved_request_refunds_the_card_in_minor_units_under_the_stored_key(
    card_order, reviewer, refund_calls, django_capture_on_commit_callbacks
):
    account, order, payment = card_order
    request = submit(account, order)
    approve(request, reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_request_decide(actor=reviewer, request=request)
    payout = RefundPayout.objects.get(request=request)
    assert len(refund_calls) == 1
    call = refund_calls[0]
    assert call["payment_intent"] == payment.reference
    assert call["amount"] == 14900 and isinstance(call["amount"], int)
    assert call["idempotency_key"] == payout.idempotency_key
    assert call["metadata"] == {
        "refund_payout_id": str(payout.pk),
        "refund_request": request.number,
        "refund_key": payout.idempotency_key,
    }
    (refund,) = stripe_refunds(payment)
    assert (refund.amount, refund.status) == (14900, "succeeded")
    assert (payout.method, payout.status, payout.amount) == ("stripe", "succeeded", Decimal(149))
    assert payout.reference == refund.id and payout.attempts == 1
    request.refresh_from_db()
    payment.refresh_from_db()
    assert request.state == RefundRequest.State.PAID and request.paid_at is not None
    assert payment.refunded == Decimal("149.00")
    # A second run of the job (a redelivered task) calls Stripe no more.
    services.refund_payout_run(payout_id=payout.pk)
    assert len(refund_calls) == 1 and len(stripe_refunds(payment)) == 1


def test_a_partial_approval_refunds_only_the_approved_amount(
    card_order, reviewer, refund_calls, django_capture_on_commit_callbacks
):
    account, order, payment = card_order
    request = submit(account, order)
    approve(request, reviewer, credits="60.00", plugin=False)
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_request_decide(actor=reviewer, request=request)
    request.refresh_from_db()
    payment.refresh_from_db()
    assert request.outcome == "partly_approved" and request.approved_total == Decimal("60.00")
    assert [call["amount"] for call in refund_calls] == [6000]
    assert [r.amount for r in stripe_refunds(payment)] == [6000]
    payout = RefundPayout.objects.get(request=request)
    assert (payout.amount, payout.status) == (Decimal("60.00"), "succeeded")
    assert request.state == "paid" and payment.refunded == Decimal("60.00")


@pytest.mark.parametrize("event_type", ["refund.updated", "charge.refunded"])
def test_a_refund_webhook_replayed_twice_settles_the_payout_once(
    stripe_on, card_order, reviewer, client, django_capture_on_commit_callbacks, event_type
):
    account, order, payment = card_order
    request = submit(account, order)
    approve(request, reviewer)
    with django_capture_on_commit_callbacks(execute=False):  # the job has not run yet
        services.refund_request_decide(actor=reviewer, request=request)
    payout = RefundPayout.objects.get(request=request)
    assert payout.status == "pending"
    # The money went back at Stripe (the job's call), and the portal is told by webhook.
    result = StripeGateway().refund(
        charge_reference=payment.reference,
        amount=Money(payout.amount, payout.currency),
        idempotency_key=payout.idempotency_key,
        metadata={
            "refund_payout_id": str(payout.pk),
            "refund_request": request.number,
            "refund_key": payout.idempotency_key,
        },
    )
    assert result.status == "succeeded"
    if event_type == "refund.updated":
        body = stripe_json(stripe_on, f"refunds/{result.reference}")
    else:
        intent = stripe_json(stripe_on, f"payment_intents/{payment.reference}")
        charge = intent["latest_charge"]  # localstripe expands it
        charge_id = charge["id"] if isinstance(charge, dict) else charge
        body = stripe_json(stripe_on, f"charges/{charge_id}")
        assert [r["id"] for r in body["refunds"]["data"]] == [result.reference]
    payload, signature = signed_event(body, event_type, event_id="evt_refund_1")

    for _ in range(2):
        response = post_webhook(client, payload, signature)
        assert response.status_code == 200, response.content
        payout.refresh_from_db()
        payment.refresh_from_db()
        request.refresh_from_db()
        assert (payout.status, payout.reference) == ("succeeded", result.reference)
        assert payment.refunded == Decimal("149.00") and request.state == "paid"
        assert AuditEvent.objects.filter(action="refund.paid_out").count() == 1
    assert Event.objects.filter(id="evt_refund_1").count() == 1
    assert WebhookEventTrigger.objects.filter(valid=True).count() == 2
    # The same news under another event id (Stripe sends both kinds) moves nothing either.
    response = post_webhook(client, *signed_event(body, event_type, event_id="evt_refund_2"))
    assert response.status_code == 200, response.content
    payment.refresh_from_db()
    assert payment.refunded == Decimal("149.00")
    assert AuditEvent.objects.filter(action="refund.paid_out").count() == 1


def test_a_failed_refund_leaves_the_request_paying_and_a_retry_with_a_new_key_pays(
    card_order, reviewer, refund_calls, monkeypatch, django_capture_on_commit_callbacks
):
    account, order, payment = card_order
    request = submit(account, order)
    approve(request, reviewer)
    refused = []

    def failing(self, **kwargs):
        refused.append(kwargs["idempotency_key"])
        return ChargeResult(
            status="failed", reference="re_failed", message="The refund expired_or_canceled_card."
        )

    with monkeypatch.context() as patch:
        patch.setattr(StripeGateway, "refund", failing)
        with django_capture_on_commit_callbacks(execute=True):
            services.refund_request_decide(actor=reviewer, request=request)
    payout = RefundPayout.objects.get(request=request)
    first_key = payout.idempotency_key
    assert refused == [first_key]
    assert payout.status == "failed" and payout.error == "The refund expired_or_canceled_card."
    request.refresh_from_db()
    payment.refresh_from_db()
    assert request.state == "paying" and payment.refunded == 0
    assert AuditEvent.objects.filter(action="refund.payout_failed").count() == 1
    assert stripe_refunds(payment) == []

    with django_capture_on_commit_callbacks(execute=True):
        services.refund_payout_retry(actor=reviewer, payout=payout)
    payout.refresh_from_db()
    assert payout.idempotency_key != first_key
    assert [call["idempotency_key"] for call in refund_calls] == [payout.idempotency_key]
    assert payout.status == "succeeded" and payout.error == "" and payout.attempts == 2
    request.refresh_from_db()
    payment.refresh_from_db()
    assert request.state == "paid" and payment.refunded == Decimal("149.00")
    assert [r.amount for r in stripe_refunds(payment)] == [14900]


def test_a_late_copy_of_an_old_failure_does_not_fail_the_retry_in_flight(
    card_order, reviewer, client, monkeypatch, django_capture_on_commit_callbacks
):
    """Stripe tells a refund's change twice (refund.updated, charge.refund.updated), in
    any order and late: the first refund's failure, heard again after staff retried,
    is old news and must not fail the new refund, nor open the way to a third."""
    account, order, payment = card_order
    request = submit(account, order)
    approve(request, reviewer)
    asked = []

    def pending(self, **kwargs):  # a refund Stripe takes time over
        asked.append(kwargs)
        return ChargeResult(status="pending", reference=f"re_slow_{len(asked)}")

    monkeypatch.setattr(StripeGateway, "refund", pending)
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_request_decide(actor=reviewer, request=request)
    payout = RefundPayout.objects.get(request=request)
    assert (payout.status, payout.reference) == ("pending", "re_slow_1")

    def refund_body(n, status):
        return {
            "id": f"re_slow_{n}",
            "object": "refund",
            "amount": 14900,
            "currency": "usd",
            "payment_intent": payment.reference,
            "status": status,
            "failure_reason": "expired_or_canceled_card" if status == "failed" else None,
            "metadata": asked[n - 1]["metadata"],  # what Stripe echoes back
        }

    failed = refund_body(1, "failed")
    response = post_webhook(client, *signed_event(failed, "refund.updated", event_id="evt_f1"))
    assert response.status_code == 200, response.content
    payout.refresh_from_db()
    assert payout.status == "failed" and "expired_or_canceled_card" in payout.error

    with django_capture_on_commit_callbacks(execute=True):
        services.refund_payout_retry(actor=reviewer, payout=payout)
    payout.refresh_from_db()
    assert payout.status == "pending" and len(asked) == 2
    assert asked[1]["idempotency_key"] == payout.idempotency_key != asked[0]["idempotency_key"]

    # The same failure of the first refund, told again under the other event type.
    response = post_webhook(
        client, *signed_event(failed, "charge.refund.updated", event_id="evt_f2")
    )
    assert response.status_code == 200, response.content
    payout.refresh_from_db()
    assert payout.status == "pending", payout.error
    with pytest.raises(PortalError, match="Only a failed payout can be retried"):
        services.refund_payout_retry(actor=reviewer, payout=payout)
    assert len(asked) == 2

    # The second refund goes through: paid once.
    response = post_webhook(
        client, *signed_event(refund_body(2, "succeeded"), "refund.updated", event_id="evt_s2")
    )
    assert response.status_code == 200, response.content
    payout.refresh_from_db()
    payment.refresh_from_db()
    request.refresh_from_db()
    assert (payout.status, payout.reference) == ("succeeded", "re_slow_2")
    assert payment.refunded == Decimal("149.00") and request.state == "paid"
