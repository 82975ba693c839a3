"""Orders, payments, subscriptions and incidents change status through one table each:
an illegal move is refused naming both states, and every move is audited."""

import pytest

from accounts.errors import PortalError
from accounts.models import AuditEvent
from billing import services
from billing.models import Order, Payment, Subscription
from billing.services.states import ORDER, PAYMENT, SUBSCRIPTION
from refunds.models import RefundRequest
from refunds.services import REQUEST
from support.models import Incident
from support.services import INCIDENT
from tests.billing.helpers import AFTER_END, NOW
from tests.factories import owner_of


@pytest.mark.parametrize(
    ("machine", "model", "field"),
    [
        (ORDER, Order, "status"),
        (PAYMENT, Payment, "status"),
        (SUBSCRIPTION, Subscription, "status"),
        (INCIDENT, Incident, "state"),
        (REQUEST, RefundRequest, "state"),
    ],
)
def test_every_state_has_its_row_in_the_table(machine, model, field):
    states = {value for value, _ in model._meta.get_field(field).choices}
    assert set(machine.transitions) == states
    assert all(moves <= states for moves in map(set, machine.transitions.values()))


def _moves(obj):
    return list(
        AuditEvent.objects.filter(object_id=str(obj.pk), object_type=obj._meta.label_lower)
        .filter(changes__has_key="status")
        .order_by("pk")
        .values_list("action", "changes__status")
    )


@pytest.mark.django_db
def test_an_order_paid_by_staff_moves_once_and_each_move_is_audited(
    account, subscription, billing_staff
):
    _, _, order = services.subscription_change_seats(
        actor=owner_of(account), subscription=subscription, quantity=5, now=NOW
    )
    payment = services.payment_record_manual(actor=billing_staff, order=order, reference="BANK")
    order.refresh_from_db()
    assert _moves(order) == [("order.paid", ["awaiting_payment", "paid"])]
    assert _moves(payment) == [("payment.succeeded", ["pending", "succeeded"])]

    with pytest.raises(PortalError) as refused:
        ORDER.move(order, Order.Status.CANCELLED, actor=billing_staff, action="order.cancelled")
    assert refused.value.message == f"{order.number} is paid: it cannot become cancelled."
    order.refresh_from_db()
    assert order.status == "paid" and len(_moves(order)) == 1


@pytest.mark.django_db
def test_a_cancelled_order_voids_its_pending_payment_on_the_record(account, subscription, settings):
    settings.BILLING_GATEWAY = "stripe"  # a gateway payment is pending, not yet settled
    owner = owner_of(account)
    _, _, order = services.subscription_change_seats(
        actor=owner, subscription=subscription, quantity=5, now=NOW
    )
    payment = Payment.objects.get(order=order)
    services.order_cancel(actor=owner, order=order)
    payment.refresh_from_db()
    assert payment.status == "failed" and payment.failure_message == "Order cancelled."
    assert _moves(payment) == [("payment.voided", ["pending", "failed"])]
    assert _moves(order) == [("order.cancelled", ["awaiting_payment", "cancelled"])]
    # A payment that failed stays on the record; it never becomes pending again.
    with pytest.raises(PortalError, match="is failed: it cannot become pending"):
        PAYMENT.check(payment, Payment.Status.PENDING)


@pytest.mark.django_db
def test_an_unpaid_renewal_lapses_the_plan_and_its_cancellation_ends_it(account, subscription):
    services.subscriptions_renew_due(now=AFTER_END)
    subscription.refresh_from_db()
    order = Order.objects.get()
    services.order_cancel(actor=owner_of(account), order=order)
    subscription.refresh_from_db()
    assert subscription.status == "cancelled"
    assert _moves(subscription) == [
        ("subscription.lapsed", ["active", "lapsed"]),
        ("subscription.ended", ["lapsed", "cancelled"]),
    ]
    with pytest.raises(PortalError, match="is cancelled: it cannot become active"):
        SUBSCRIPTION.check(subscription, Subscription.Status.ACTIVE)


@pytest.mark.django_db
def test_staying_in_the_same_state_is_no_move(account, subscription):
    assert SUBSCRIPTION.move(subscription, "active", actor=None, action="x") is False
    assert not AuditEvent.objects.filter(action="x").exists()
