"""The staff console's refund review queue and review page (issue 5)."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import AuditEvent
from billing.models import LedgerEntry
from refunds import services
from refunds.models import RefundLine, RefundPayout, RefundRequest
from tests.accounts.test_hardening import staff_client
from tests.factories import AccountFactory, UserFactory, owner_of
from tests.refunds.conftest import MONDAY

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:refunds_refundrequest_changelist"
# Wednesday 4 March 2026, 10:00 in New York.
WEDNESDAY = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


def submit(account, order, *, now=MONDAY, **kwargs):
    kwargs.setdefault("reason", "no_longer_needed")
    kwargs.setdefault("payout_method", "original")
    return services.refund_request_submit(
        actor=owner_of(account),
        account=account,
        line_ids=[line.pk for line in order.lines.all()],
        now=now,
        **kwargs,
    )


def page_url(refund):
    return reverse("admin:refunds_refundrequest_change", args=[refund.pk])


def rows(response) -> dict[str, str]:
    """The changelist's rows by request number, in the order shown."""
    html = response.content.decode()
    found = {}
    for row in re.findall(r"<tr>(.*?)</tr>", html, flags=re.S):
        number = re.search(r"RR-\d{4}-\d{6}|RR-Q-\d+", row)
        if number and "field-number" in row:
            found[number.group(0)] = row
    return found


def lines_of(refund):
    return list(refund.lines.order_by("order_line_id"))


def decide_line(client, refund, line, **data):
    prefix = f"line-{line.pk}"
    post = {"action": "line", "line": line.pk}
    post.update({f"{prefix}-{key}": value for key, value in data.items()})
    return client.post(page_url(refund), post)


@pytest.fixture
def reviewer(client):
    return staff_client(client, group="Billing reviewer")


# --- the queue --------------------------------------------------------------------------


def test_the_queue_is_sorted_by_the_next_deadline_with_badges(client, paid_order):
    # Overdue: received Tuesday 24 February, to acknowledge by Thursday 26 February.
    acct, order = paid_order(when=datetime(2026, 2, 23, 15, tzinfo=UTC))
    overdue = submit(acct, order, now=datetime(2026, 2, 24, 15, tzinfo=UTC))
    # Due today: received Monday 2 March, to acknowledge by Wednesday 4 March.
    acct, order = paid_order()
    today = submit(acct, order)
    # Breached once (acknowledged late), now to decide by Tuesday 10 March.
    acct, order = paid_order()
    breached = submit(acct, order, now=MONDAY + timedelta(days=1))
    services.refund_request_take(
        actor=UserFactory(is_staff=True, is_superuser=True),
        request=breached,
        now=MONDAY + timedelta(days=1),
    )
    RefundRequest.objects.filter(pk=breached.pk).update(breached=["acknowledge"])
    # No deadline any more: last.
    acct, order = paid_order()
    withdrawn = submit(acct, order)
    services.refund_request_withdraw(actor=owner_of(acct), request=withdrawn)

    with time_machine.travel(WEDNESDAY, tick=False):
        staff_client(client, group="Billing reviewer")
        response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    shown = rows(response)
    assert list(shown) == [overdue.number, today.number, breached.number, withdrawn.number]
    assert "refund-badge-overdue" in shown[overdue.number]
    assert "due today" not in shown[overdue.number]
    assert "due today" in shown[today.number] and "overdue" not in shown[today.number]
    assert "breached: acknowledge" in shown[breached.number]
    assert "overdue" not in shown[breached.number] and "due today" not in shown[breached.number]
    assert "refund-badge" not in shown[withdrawn.number]
    assert "acknowledge by Wed 4 Mar 2026" in shown[today.number]
    assert "decide by Tue 10 Mar 2026" in shown[breached.number]

    with time_machine.travel(WEDNESDAY, tick=False):
        staff_client(client, group="Billing reviewer")
        page = client.get(page_url(breached)).content.decode()
    assert 'data-testid="breach"' in page and "Deadline breached:</strong> acknowledge" in page


def test_filters_by_state_holder_channel_and_preset(client, paid_order):
    reviewer = staff_client(client, group="Billing reviewer")
    acct, order = paid_order()
    web = submit(acct, order)
    acct, order = paid_order()
    email = submit(acct, order, channel="email")
    acct, order = paid_order()
    held = submit(acct, order)
    services.refund_request_take(actor=reviewer, request=held)
    RefundRequest.objects.filter(pk=web.pk).update(preset="onecrm")

    def shown(query):
        response = client.get(reverse(CHANGELIST) + query)
        assert response.status_code == 200
        return set(rows(response))

    assert shown("") == {web.number, email.number, held.number}
    assert shown("?state__exact=in_review") == {held.number}
    assert shown("?state__exact=received") == {web.number, email.number}
    assert shown(f"?holder__id__exact={reviewer.pk}") == {held.number}
    assert shown("?channel__exact=email") == {email.number}
    assert shown("?preset=onecrm") == {web.number}
    assert shown(f"?q={email.order.number}") == {email.number}
    assert shown(f"?q={web.number}") == {web.number}


def test_bulk_acknowledge_changes_the_selected_rows_only(client, paid_order):
    reviewer = staff_client(client, group="Billing reviewer")
    made = []
    for _ in range(3):
        acct, order = paid_order()
        made.append(submit(acct, order))
    first, second, untouched = made
    acct, order = paid_order()
    withdrawn = submit(acct, order)
    services.refund_request_withdraw(actor=owner_of(acct), request=withdrawn)

    response = client.post(
        reverse(CHANGELIST),
        {
            "action": "acknowledge",
            "_selected_action": [first.pk, second.pk, withdrawn.pk],
            "index": 0,
        },
        follow=True,
    )
    assert response.status_code == 200
    states = dict(RefundRequest.objects.values_list("pk", "state"))
    assert states[first.pk] == states[second.pk] == "acknowledged"
    assert states[untouched.pk] == "received"
    assert states[withdrawn.pk] == "withdrawn"
    assert set(
        RefundRequest.objects.filter(pk__in=[first.pk, second.pk]).values_list("holder", flat=True)
    ) == {reviewer.pk}
    text = [str(m) for m in response.context["messages"]]
    assert f"{withdrawn.number}: withdrawn: nothing to acknowledge." in text
    assert any(t.startswith(f"{first.number}: acknowledged") for t in text)


def test_take_and_start_review_in_bulk(client, paid_order):
    reviewer = staff_client(client, group="Billing reviewer")
    acct, order = paid_order()
    refund = submit(acct, order)
    client.post(
        reverse(CHANGELIST),
        {"action": "take", "_selected_action": [refund.pk], "index": 0},
    )
    refund.refresh_from_db()
    assert refund.state == "in_review" and refund.holder == reviewer


def _bulk_requests(count, order, start):
    for i in range(count):
        due = WEDNESDAY + timedelta(days=i - 3)
        RefundRequest.objects.create(
            number=f"RR-Q-{start + i}",
            account=AccountFactory(),
            order=order,
            holder=UserFactory(is_staff=True),
            channel="web",
            preset="acelle",
            reason="no_longer_needed",
            payout_method="credit",
            currency="USD",
            ack_due_at=due,
            decide_due_at=due,
            next_deadline=due,
            breached=["acknowledge"] if i % 2 else [],
        )


def test_the_changelist_makes_as_many_queries_for_3_as_for_30_requests(client, paid_order):
    staff_client(client, group="Billing reviewer")
    _, order = paid_order()
    _bulk_requests(3, order, 0)

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(reverse(CHANGELIST))
        assert response.status_code == 200
        return len(ctx.captured_queries), len(rows(response))

    few, shown = queries()
    assert shown == 3
    _bulk_requests(27, order, 3)
    many, shown = queries()
    assert shown == 30
    assert many == few


# --- the review page --------------------------------------------------------------------


def test_a_line_is_approved_within_its_ceiling_and_denied_with_a_reason(client, paid_order):
    staff_client(client, group="Billing reviewer")
    acct, order = paid_order()
    refund = submit(acct, order, payout_method="credit", text="We bought twice")
    credits, plugin = lines_of(refund)

    page = client.get(page_url(refund)).content.decode()
    assert "We bought twice" in page and "acelle §2.1" in page
    assert f'name="line-{credits.pk}-amount" value="100.00"' in page  # the engine's ceiling

    response = decide_line(client, refund, credits, decision="approve", amount="100.01")
    assert response.status_code == 200
    assert "At most 100.00 USD can be approved for this line (acelle §2.1)." in (
        response.content.decode()
    )
    credits.refresh_from_db()
    assert credits.decision == "pending"

    response = decide_line(client, refund, credits, decision="approve", amount="60")
    assert response.status_code == 302
    credits.refresh_from_db()
    assert (credits.decision, credits.approved_amount) == ("approved", Decimal("60.00"))

    response = decide_line(client, refund, plugin, decision="deny", reason="  ")
    assert response.status_code == 200
    assert "Give the reason." in response.content.decode()
    plugin.refresh_from_db()
    assert plugin.decision == "pending"

    response = decide_line(
        client, refund, plugin, decision="deny", reason="The key was used on 3 March."
    )
    assert response.status_code == 302
    plugin.refresh_from_db()
    assert (plugin.decision, plugin.deny_reason) == ("denied", "The key was used on 3 March.")

    response = client.post(page_url(refund), {"action": "decide"}, follow=True)
    refund.refresh_from_db()
    assert (refund.state, refund.outcome, refund.approved_total) == (
        "credited",
        "partly_approved",
        Decimal("60.00"),
    )
    entry = LedgerEntry.objects.get(account=acct, kind="refund_credit")
    assert entry.amount == Decimal("60.00") and entry.reference == refund.number
    assert f"{refund.number} decided: partly approved" in response.content.decode()


def test_decide_is_refused_until_every_line_is_decided(client, paid_order):
    staff_client(client, group="Billing reviewer")
    acct, order = paid_order()
    refund = submit(acct, order)
    response = client.post(page_url(refund), {"action": "decide"})
    assert response.status_code == 200
    assert "Decide every line first." in response.content.decode()
    refund.refresh_from_db()
    assert refund.state == "received"


def test_a_manual_payout_is_recorded_with_its_reference(client, paid_order):
    staff_client(client, group="Billing reviewer")
    acct, order = paid_order()
    refund = submit(acct, order)
    for line in lines_of(refund):
        assert decide_line(client, refund, line, decision="approve", amount="").status_code == 302
    client.post(page_url(refund), {"action": "decide"})
    refund.refresh_from_db()
    assert refund.state == "paying"
    payout = RefundPayout.objects.get(request=refund)
    assert (payout.method, payout.status) == ("manual", "pending")
    assert "Record manual payout" in client.get(page_url(refund)).content.decode()

    data = {"action": "record_payout", "payout": payout.pk}
    response = client.post(page_url(refund), {**data, f"payout-{payout.pk}-reference": ""})
    assert response.status_code == 200 and "Give the reference." in response.content.decode()

    response = client.post(
        page_url(refund), {**data, f"payout-{payout.pk}-reference": "WIRE-OUT-9"}
    )
    assert response.status_code == 302
    refund.refresh_from_db()
    payout.refresh_from_db()
    assert refund.state == "paid"
    assert (payout.status, payout.reference) == ("succeeded", "WIRE-OUT-9")
    page = client.get(page_url(refund)).content.decode()
    assert "WIRE-OUT-9" in page and "Record manual payout" not in page
    assert "Close" in page


def test_a_failed_card_payout_shows_its_error_and_is_retried(client, paid_order):
    reviewer = staff_client(client, group="Billing reviewer")
    acct, order = paid_order()
    refund = submit(acct, order)
    for line in lines_of(refund):
        services.refund_line_decide(actor=reviewer, line=line, approve=True)
    services.refund_request_decide(actor=reviewer, request=refund)
    payout = RefundPayout.objects.get(request=refund)
    RefundPayout.objects.filter(pk=payout.pk).update(
        method="stripe", status="failed", error="Your card was declined.", attempts=1
    )
    page = client.get(page_url(refund)).content.decode()
    assert "Your card was declined." in page and ">Retry</button>" in page

    response = client.post(page_url(refund), {"action": "retry", "payout": payout.pk})
    assert response.status_code == 302
    payout.refresh_from_db()
    assert payout.status == "pending"
    assert AuditEvent.objects.filter(action="refund.payout_retried").exists()

    response = client.post(page_url(refund), {"action": "retry", "payout": payout.pk})
    assert "Only a failed payout can be retried." in response.content.decode()

    # The card cannot be refunded any more: the billing team pays it by bank transfer.
    RefundPayout.objects.filter(pk=payout.pk).update(status="failed", error="Charge too old.")
    page = client.get(page_url(refund)).content.decode()
    assert 'data-testid="pay-another-way"' in page
    response = client.post(
        page_url(refund), {"action": "another_way", "payout": payout.pk, "method": "manual"}
    )
    assert response.status_code == 302
    payout.refresh_from_db()
    assert (payout.method, payout.status) == ("manual", "pending")
    page = client.get(page_url(refund)).content.decode()
    assert "paid by bank transfer instead: record the transfer once it is made" in page
    response = client.post(
        page_url(refund),
        {"action": "record_payout", "payout": payout.pk, f"payout-{payout.pk}-reference": "W-9"},
    )
    refund.refresh_from_db()
    assert response.status_code == 302 and refund.state == "paid"


def test_the_page_shows_the_history_the_holder_the_thread_and_evidence(client, paid_order):
    staff = staff_client(client, group="Billing reviewer")
    acct, order = paid_order()
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    refund = submit(acct, order, evidence=[SimpleUploadedFile("receipt.png", png)])
    assert client.post(page_url(refund), {"action": "take"}).status_code == 302
    response = client.post(
        page_url(refund), {"action": "ask", "ask-question": "Which invoice?"}, follow=True
    )
    refund.refresh_from_db()
    assert refund.state == "needs_info" and refund.holder == staff

    page = response.content.decode()
    history = page.split('data-testid="history"')[1]
    for action in ("refund.received", "refund.held", "refund.state_changed"):
        assert action in history
    assert "received → in_review" in history and "in_review → needs_info" in history
    assert staff.email in history
    assert staff.email in page.split('data-testid="holder"')[1].split("</td>")[0]
    assert "Which invoice?" in page.split('data-testid="thread"')[1]
    # Waiting for the customer: lines cannot be decided, nothing more to ask.
    assert "Save the decision" not in page and "Ask the customer</button>" not in page

    evidence = refund.evidence.get()
    url = reverse("admin:refunds_refundrequest_evidence", args=[refund.pk, evidence.pk])
    assert url in page
    download = client.get(url)
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == png
    assert download["Content-Type"] == "image/png"
    assert download["Content-Disposition"].startswith("attachment")


def test_the_history_link_leads_to_the_review_page(client, paid_order):
    staff_client(client, group="Billing reviewer")
    acct, order = paid_order()
    refund = submit(acct, order)
    response = client.get(reverse("admin:refunds_refundrequest_history", args=[refund.pk]))
    assert response.status_code == 302 and response["Location"].endswith("#history")


# --- who may see and act ----------------------------------------------------------------


def test_a_support_agent_gets_403_everywhere(client, paid_order):
    staff_client(client, group="Support agent")
    acct, order = paid_order()
    refund = submit(acct, order, evidence=[SimpleUploadedFile("note.txt", b"Paid twice, see bank")])
    evidence = refund.evidence.get()
    assert client.get(reverse(CHANGELIST)).status_code == 403
    assert client.get(page_url(refund)).status_code == 403
    assert client.post(page_url(refund), {"action": "take"}).status_code == 403
    url = reverse("admin:refunds_refundrequest_evidence", args=[refund.pk, evidence.pk])
    assert client.get(url).status_code == 403
    refund.refresh_from_db()
    assert refund.holder is None


def test_view_only_staff_read_the_page_without_forms(client, paid_order):
    viewer = staff_client(client)
    viewer.user_permissions.add(Permission.objects.get(codename="view_refundrequest"))
    acct, order = paid_order()
    refund = submit(acct, order)
    response = client.get(page_url(refund))
    assert response.status_code == 200
    page = response.content.decode()
    assert refund.number in page and "acelle §2.1" in page
    assert "<form" not in page.split('id="content-main"')[1]
    line = lines_of(refund)[0]
    assert decide_line(client, refund, line, decision="approve").status_code == 403
    assert RefundLine.objects.get(pk=line.pk).decision == "pending"
    # The queue shows no actions either.
    queue = client.get(reverse(CHANGELIST)).content.decode()
    assert "Take and start review" not in queue


def test_rows_are_never_added_or_deleted(client, paid_order):
    staff_client(client, superuser=True)
    acct, order = paid_order()
    refund = submit(acct, order)
    assert client.get(reverse("admin:refunds_refundrequest_add")).status_code == 403
    delete = reverse("admin:refunds_refundrequest_delete", args=[refund.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert RefundRequest.objects.filter(pk=refund.pk).exists()
