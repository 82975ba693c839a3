"""`make demo`: months of Acme's history, built through the services; a second run
changes nothing."""

import io

import pytest
from django.apps import apps
from django.core.management import call_command

from billing.models import CreditNote, Invoice, Order, OrderLine, Subscription
from inbox.models import InboundMail
from marketplace.models import Installation
from refunds.models import RefundRequest
from support.models import Incident

# The Makefile's order: each command dates its payments after the previous one's.
DEMO = ["demo_data", "demo_billing", "demo_refunds", "demo_marketplace", "demo_support"]

pytestmark = pytest.mark.django_db


def _load() -> dict[str, str]:
    out = {}
    for command in DEMO:
        buffer = io.StringIO()
        call_command(command, stdout=buffer)
        out[command] = buffer.getvalue()
    return out


@pytest.fixture
def demo(settings, tmp_path):
    settings.DEBUG = True
    settings.MEDIA_ROOT = str(tmp_path)
    return _load()


def _counts() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()
        for app in ("accounts", "billing", "refunds", "support", "marketplace", "inbox", "core")
        for model in apps.get_app_config(app).get_models()
    }


def test_a_second_run_creates_nothing(demo):
    before = _counts()
    again = _load()
    assert _counts() == before
    for command, output in again.items():
        assert "(0 new objects" in output, (command, output)
    assert all("(0 new objects" not in output for output in demo.values())


def test_acme_has_months_of_paid_plan_history_with_a_seat_change(demo):
    plan = Subscription.objects.plans().get(account__name="Acme Corporation")
    assert plan.status == "active" and plan.quantity == 5
    lines = OrderLine.objects.filter(subscription=plan, order__status=Order.Status.PAID)
    periods = {line.period_start for line in lines.filter(effect__in=["start", "renew"])}
    assert len(periods) >= 5
    seats = lines.get(effect=OrderLine.Effect.ADD_SEATS)
    assert seats.quantity == 1 and seats.order.created_at < lines.latest("pk").order.created_at
    assert not Order.objects.filter(account=plan.account).exclude(status="paid").exists()
    paid = Order.objects.filter(account=plan.account, status="paid")
    assert all(Invoice.objects.filter(order=order).exists() for order in paid)


def test_invoice_and_credit_note_numbers_follow_their_dates(demo):
    for model in (Invoice, CreditNote):
        by_number = list(model.objects.order_by("number").values_list("issued_at", flat=True))
        assert len(by_number) >= 2
        assert by_number == sorted(by_number), model.__name__
    assert Invoice.objects.count() >= 15


def test_a_refund_in_each_state(demo):
    requests = RefundRequest.objects.filter(account__name="Acme Corporation")
    states = set(requests.values_list("state", flat=True))
    assert {"received", "in_review", "needs_info", "paid", "credited", "closed"} <= states
    denied = requests.get(state="closed")
    assert denied.outcome == RefundRequest.Outcome.DENIED
    paid = requests.get(state="paid")
    assert paid.payouts.get().method == "manual"
    assert CreditNote.objects.get(reference=paid.number).refunded_to_card == paid.approved_total
    credited = requests.get(state="credited")
    note = CreditNote.objects.get(reference=credited.number)
    assert note.credited_to_balance == credited.approved_total > 0
    assert requests.get(state="needs_info").messages.filter(from_staff=True).exists()


def test_an_incident_awaiting_an_answer_and_a_mail_in_triage(demo):
    incidents = dict(
        Incident.objects.filter(account__name="Acme Corporation").values_list("subject", "state")
    )
    assert sorted(incidents.values()) == ["open", "waiting_on_customer"]
    mail = InboundMail.objects.get()
    assert mail.status == InboundMail.Status.TRIAGE and mail.mailbox == "refunds"
    assert mail.reasons


def test_apps_installed_and_usage_charged(demo):
    states = dict(
        Installation.objects.filter(account__name="Acme Corporation").values_list(
            "app__slug", "state"
        )
    )
    assert states["aurora-assistant"] == "trialing"
    assert states["deal-digest"] == "active" and states["calendar-link"] == "active"
    usage = OrderLine.objects.filter(kind="app_usage", order__status="paid")
    assert usage.count() == 2  # one line per month
    assert len({line.period_start for line in usage}) == 2
