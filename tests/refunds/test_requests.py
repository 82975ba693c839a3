"""Refund requests: submission, the state machine, business-day deadlines, payouts."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import BytesIO

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404

from accounts.errors import PortalError
from accounts.models import Account, AuditEvent
from billing.models import LedgerEntry, Licence, Payment
from refunds import services
from refunds.deadlines import local_date
from refunds.models import RefundPayout, RefundRequest
from tests.accounts.test_hardening import staff_client  # noqa: F401  (staff logins)
from tests.factories import AccountFactory, UserFactory, owner_of
from tests.refunds.conftest import MONDAY

pytestmark = pytest.mark.django_db


def submit(account, order, *, lines=None, now=MONDAY, **kwargs):
    kwargs.setdefault("reason", "no_longer_needed")
    kwargs.setdefault("payout_method", "original")
    return services.refund_request_submit(
        actor=owner_of(account),
        account=account,
        line_ids=[line.pk for line in (lines or order.lines.all())],
        now=now,
        **kwargs,
    )


@pytest.fixture
def reviewer():
    from django.contrib.auth.models import Group

    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Billing reviewer"))
    return user


def test_a_request_records_the_engine_decisions_and_is_acknowledged_by_mail(
    paid_order, django_capture_on_commit_callbacks
):
    account, order = paid_order()
    with django_capture_on_commit_callbacks(execute=True):
        request = submit(account, order, now=MONDAY + timedelta(days=3), text="Not for us")
    assert request.number == f"RR-2026-{request.pk:06d}"
    assert request.state == "received" and request.preset == "acelle"
    credits, plugin = request.lines.order_by("order_line_id")
    # Day 3, nothing used: credits in full (§2.1); the plugin key never activated (§3.1).
    assert (credits.engine_outcome, credits.engine_amount, credits.clause) == (
        "refund",
        Decimal("100.00"),
        "acelle §2.1",
    )
    assert plugin.engine_outcome == "refund" and "3.1" in plugin.clause
    assert [m.subject for m in mail.outbox if request.number in m.subject] == [
        f"{request.number}: Received"
    ]
    assert "We acknowledge it by" in mail.outbox[-1].body
    assert AuditEvent.objects.filter(action="refund.received").count() == 1


def test_deadlines_count_business_days_over_a_weekend_and_a_holiday(paid_order):
    account, order = paid_order()
    # Friday 3 April 2026, 16:00 in New York: acknowledge by Tuesday 7, decide by Friday 10.
    request = submit(account, order, now=datetime(2026, 4, 3, 20, tzinfo=UTC))
    assert local_date(request.ack_due_at).isoformat() == "2026-04-07"
    assert local_date(request.decide_due_at).isoformat() == "2026-04-10"
    # Friday 22 May: Memorial Day (25 May) is skipped: acknowledge by Wednesday 27 May.
    account2, order2 = paid_order(when=datetime(2026, 5, 20, 15, tzinfo=UTC))
    request2 = submit(account2, order2, now=datetime(2026, 5, 22, 15, tzinfo=UTC))
    assert local_date(request2.ack_due_at).isoformat() == "2026-05-27"
    assert request2.next_deadline == request2.ack_due_at


def test_needs_info_stops_the_clock_until_the_customer_answers(paid_order, reviewer):
    account, order = paid_order()
    request = submit(account, order)  # Monday: decide by Monday 9 March
    assert local_date(request.decide_due_at).isoformat() == "2026-03-09"
    services.refund_request_ask_info(
        actor=reviewer, request=request, question="Which invoice?", now=MONDAY + timedelta(days=1)
    )
    request.refresh_from_db()
    assert request.state == "needs_info" and request.next_deadline is None
    # The customer answers the following Monday: 5 business days went by.
    services.refund_request_message(
        actor=owner_of(account), request=request, body="INV-7", now=MONDAY + timedelta(days=8)
    )
    request.refresh_from_db()
    assert request.state == "in_review"
    assert local_date(request.decide_due_at).isoformat() == "2026-03-16"


def test_an_illegal_move_is_refused_with_a_clear_message(paid_order, reviewer):
    account, order = paid_order()
    request = submit(account, order)
    with pytest.raises(PortalError, match="Decide every line first"):
        services.refund_request_decide(actor=reviewer, request=request)
    with pytest.raises(PortalError, match="received: it cannot become closed"):
        services.refund_request_close(actor=reviewer, request=request)
    services.refund_request_withdraw(actor=owner_of(account), request=request)
    with pytest.raises(PortalError, match="only a request not yet decided"):
        services.refund_request_withdraw(actor=owner_of(account), request=request)


def test_staff_approve_up_to_the_ceiling_and_deny_with_a_reason(
    paid_order, reviewer, django_capture_on_commit_callbacks
):
    account, order = paid_order()
    request = submit(account, order, payout_method="credit")
    credits, plugin = request.lines.order_by("order_line_id")
    with pytest.raises(PortalError, match=r"At most 100\.00 USD"):
        services.refund_line_decide(actor=reviewer, line=credits, approve=True, amount="100.01")
    with pytest.raises(PortalError, match="Give the reason"):
        services.refund_line_decide(actor=reviewer, line=plugin, approve=False, reason="")
    services.refund_line_decide(actor=reviewer, line=credits, approve=True, amount="60.00")
    services.refund_line_decide(
        actor=reviewer, line=plugin, approve=False, reason="The key was used on 3 March."
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_request_decide(actor=reviewer, request=request)
    request.refresh_from_db()
    assert (request.state, request.outcome, request.approved_total) == (
        "credited",
        "partly_approved",
        Decimal("60.00"),
    )
    entry = LedgerEntry.objects.get(account=account, kind="refund_credit")
    assert entry.amount == Decimal("60.00") and entry.reference == request.number
    assert RefundPayout.objects.get(request=request).status == "succeeded"
    # One mail about the decision and its credit (not one per step), beside the credit note.
    updates = [m for m in mail.outbox if m.subject.startswith(f"{request.number}: ")]
    assert [m.subject for m in updates] == [f"{request.number}: Credited to your account"]
    body = updates[0].body
    assert "denied: The key was used on 3 March." in body and "$60.00" in body


def test_a_manual_payout_waits_for_staff_and_moves_once(paid_order, reviewer):
    account, order = paid_order()
    request = submit(account, order)
    for line in request.lines.all():
        services.refund_line_decide(actor=reviewer, line=line, approve=True)
    services.refund_request_decide(actor=reviewer, request=request)
    request.refresh_from_db()
    assert request.state == "paying"
    payout = RefundPayout.objects.get(request=request)
    assert (payout.method, payout.amount, payout.status) == ("manual", Decimal("149.00"), "pending")
    services.refund_payout_record_manual(actor=reviewer, payout=payout, reference="WIRE-OUT-1")
    services.refund_payout_record_manual(actor=reviewer, payout=payout, reference="WIRE-OUT-2")
    request.refresh_from_db()
    payout.refresh_from_db()
    assert request.state == "paid" and payout.reference == "WIRE-OUT-1"
    assert Payment.objects.get(order=order).refunded == Decimal("149.00")
    # The plugin's key is revoked (acelle §5).
    assert Licence.objects.get(line__order=order).status == "revoked"


def test_the_card_gets_what_it_paid_and_credit_the_rest(paid_order, reviewer, billing_staff):
    from billing import services as billing_services
    from billing.money import Money

    account, _ = paid_order()
    billing_services.ledger_adjust(
        actor=billing_staff, account=account, amount=Money(Decimal("100"), "USD"), reason="promo"
    )
    account, order = paid_order(account=account, items=("credits", "plugin"))
    assert order.credit_applied == Decimal("100")  # 49 came from the bank
    request = submit(account, order)
    for line in request.lines.all():
        services.refund_line_decide(actor=reviewer, line=line, approve=True)
    services.refund_request_decide(actor=reviewer, request=request)
    payouts = {p.method: p for p in RefundPayout.objects.filter(request=request)}
    assert payouts["manual"].amount == Decimal("49.00")
    assert payouts["credit"].amount == Decimal("100.00") and payouts["credit"].status == "succeeded"


def test_a_refunded_saas_plan_ends_and_the_account_is_deactivated(reviewer, billing_staff):
    from billing import services as billing_services
    from billing.models import Price, Product

    account = AccountFactory(timezone="America/New_York")
    plan = Price.objects.create(
        product=Product.objects.create(code="pro", name="Pro", kind="subscription"),
        currency="USD",
        amount=Decimal("29"),
        scheme="per_seat",
        interval="month",
    )
    subscription, order = billing_services.subscription_start(
        actor=owner_of(account), account=account, price=plan, quantity=1, now=MONDAY
    )
    billing_services.payment_record_manual(
        actor=billing_staff, order=order, reference="B", now=MONDAY
    )
    request = submit(account, order, payout_method="credit", now=MONDAY + timedelta(days=2))
    line = request.lines.get()
    assert line.engine_outcome == "refund" and line.clause == "acelle §1.1"
    services.refund_line_decide(actor=reviewer, line=line, approve=True)
    services.refund_request_decide(actor=reviewer, request=request)
    account.refresh_from_db()
    subscription.refresh_from_db()
    assert subscription.status == "cancelled" and account.status == Account.Status.DEACTIVATED


def test_auto_approval_pays_refund_lines_at_once(settings, paid_order):
    settings.REFUND_AUTO_APPROVE = True
    account, order = paid_order()
    request = submit(account, order, payout_method="credit", now=MONDAY + timedelta(days=1))
    request.refresh_from_db()
    assert request.state == "credited" and request.approved_total == Decimal("149.00")


def test_another_accounts_lines_answer_404_and_busy_lines_are_refused(paid_order):
    account, order = paid_order()
    other, _ = paid_order()
    with pytest.raises(Http404):
        services.refund_request_submit(
            actor=owner_of(other),
            account=other,
            line_ids=[order.lines.first().pk],
            reason="no_longer_needed",
            payout_method="credit",
        )
    submit(account, order)
    with pytest.raises(PortalError, match="is already in RR-"):
        submit(account, order)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("virus.exe", b"MZ\x90\x00\x03\x00\x00\x00", "not a PDF"),
        ("archive.zip", b"PK\x03\x04" + b"\x00" * 20, "not a PDF"),
        ("big.pdf", b"%PDF-1.4" + b"0" * (6 * 1024 * 1024), "larger than 5 MB"),
    ],
)
def test_evidence_is_checked_from_its_content(paid_order, name, content, message):
    account, order = paid_order()
    upload = SimpleUploadedFile(name, content)
    with pytest.raises(PortalError, match=message) as exc:
        submit(account, order, evidence=[upload])
    assert exc.value.field == "evidence"
    assert not RefundRequest.objects.exists()


def test_good_evidence_is_stored_with_its_checked_type(paid_order, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    account, order = paid_order()
    png = SimpleUploadedFile("receipt.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    note = SimpleUploadedFile("note.txt", BytesIO(b"Paid twice, see bank").read())
    request = submit(account, order, evidence=[png, note])
    stored = {e.name: e.content_type for e in request.evidence.all()}
    assert stored == {"receipt.png": "image/png", "note.txt": "text/plain"}


def test_the_sweep_reminds_once_and_escalates_a_breach_once(
    settings, paid_order, reviewer, django_capture_on_commit_callbacks
):
    settings.REFUND_BILLING_LEADS = ["leads@vendor.example"]
    account, order = paid_order()
    request = submit(account, order)  # ack by Wednesday 4 March, end of day
    services.refund_request_take(actor=reviewer, request=request, now=MONDAY)
    wednesday = datetime(2026, 3, 4, 14, tzinfo=UTC)
    mail.outbox.clear()
    # Reviewing acknowledged it: the next deadline is "decide" by Monday 9 March.
    friday = datetime(2026, 3, 6, 14, tzinfo=UTC)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.refund_deadlines_sweep(now=wednesday) == {"reminded": 0, "breached": 0}
        assert services.refund_deadlines_sweep(now=friday) == {"reminded": 1, "breached": 0}
        assert services.refund_deadlines_sweep(now=friday) == {"reminded": 0, "breached": 0}
    assert [m.to for m in mail.outbox] == [[reviewer.email]]
    late = datetime(2026, 3, 10, 14, tzinfo=UTC)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.refund_deadlines_sweep(now=late) == {"reminded": 0, "breached": 1}
        assert services.refund_deadlines_sweep(now=late) == {"reminded": 0, "breached": 0}
    assert mail.outbox[-1].to == ["leads@vendor.example"] and "missed" in mail.outbox[-1].subject
    request.refresh_from_db()
    assert request.breached == ["decide"]
    assert AuditEvent.objects.filter(action="refund.deadline_breached").count() == 1
