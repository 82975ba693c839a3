"""The console's review pages (issue 15): staff's own words for the states, the approved
total as lines are decided, one mail per payout event."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from refunds import services as refund_services
from refunds.models import RefundPayout
from support.models import Incident
from tests.accounts.test_hardening import staff_client
from tests.refunds.test_console import decide_line, lines_of, page_url, submit
from tests.support.test_incidents import cloud_account, open_one

pytestmark = pytest.mark.django_db

CUSTOMER_WORDS = ("Waiting for your answer", "Credited to your account", "your account")


def approved_total(page: str) -> str:
    cell = re.search(r'data-testid="approved-total">(.*?)</td>', page, flags=re.S).group(1)
    return re.sub(r"<[^>]+>", "", cell).strip()


def test_the_approved_total_follows_each_line_decided(client, paid_order):
    staff_client(client, group="Billing reviewer")
    account, order = paid_order()
    refund = submit(account, order)
    credits, plugin = lines_of(refund)
    assert approved_total(client.get(page_url(refund)).content.decode()) == (
        "$0.00 so far, 2 lines pending"
    )
    assert decide_line(client, refund, credits, decision="approve", amount="60").status_code == 302
    page = client.get(page_url(refund)).content.decode()
    assert approved_total(page) == "$60.00 so far, 1 line pending"
    decide_line(client, refund, plugin, decision="approve", amount="")
    assert approved_total(client.get(page_url(refund)).content.decode()) == "$109.00"
    client.post(page_url(refund), {"action": "decide"})
    refund.refresh_from_db()
    assert refund.approved_total == 109
    assert approved_total(client.get(page_url(refund)).content.decode()) == "$109.00"


def test_one_mail_per_payout_event(client, paid_order, django_capture_on_commit_callbacks):
    staff_client(client, group="Billing reviewer")
    account, order = paid_order()
    refund = submit(account, order)
    for line in lines_of(refund):
        decide_line(client, refund, line, decision="approve", amount="")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(page_url(refund), {"action": "decide"}).status_code == 302
    # Decided and paying out in one step: one mail, not one per state.
    assert [m.subject for m in mail.outbox] == [f"{refund.number}: Paying out"]
    assert "We decided your refund request: your refund is being paid out." in mail.outbox[0].body
    payout = RefundPayout.objects.get(request=refund)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            page_url(refund),
            {
                "action": "record_payout",
                "payout": payout.pk,
                f"payout-{payout.pk}-reference": "WIRE-1",
            },
        )
    subjects = [m.subject for m in mail.outbox]
    assert [s for s in subjects if s.startswith(refund.number)] == [f"{refund.number}: Refunded"]
    assert len(subjects) == 2 and subjects[0].startswith("Credit note CN-")  # and its credit note


def test_a_denial_is_one_mail_that_says_it_was_decided(
    client, paid_order, django_capture_on_commit_callbacks
):
    staff_client(client, group="Billing reviewer")
    account, order = paid_order()
    refund = submit(account, order)
    for line in lines_of(refund):
        decide_line(client, refund, line, decision="deny", reason="Used.")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(page_url(refund), {"action": "decide"})
    assert [m.subject for m in mail.outbox] == [f"{refund.number}: Closed"]
    assert "it is denied (the reasons are below) and closed" in mail.outbox[0].body


def test_staff_read_the_states_in_their_own_words(client, paid_order):
    reviewer = staff_client(client, group="Billing reviewer")
    account, order = paid_order()
    asked = submit(account, order)
    refund_services.refund_request_take(actor=reviewer, request=asked)
    refund_services.refund_request_ask_info(actor=reviewer, request=asked, question="Which?")
    account, order = paid_order()
    credited = submit(account, order, payout_method="credit")
    for line in lines_of(credited):
        refund_services.refund_line_decide(actor=reviewer, line=line, approve=True)
    refund_services.refund_request_decide(actor=reviewer, request=credited)

    queue = client.get(reverse("admin:refunds_refundrequest_changelist")).content.decode()
    review = client.get(page_url(asked)).content.decode()
    done = client.get(page_url(credited)).content.decode()
    assert "Waiting for the customer&#x27;s answer" in queue  # the row and the state filter
    assert "Credited to the customer&#x27;s account" in queue
    assert f"{asked.number} · Waiting for the customer&#x27;s answer" in review
    assert f"{credited.number} · Credited to the customer&#x27;s account" in done
    for page in (queue, review, done):
        for words in CUSTOMER_WORDS:
            assert words not in page

    staff_client(client, group="Support agent")
    incident = open_one(cloud_account(2))
    Incident.objects.filter(pk=incident.pk).update(state="waiting_on_customer")
    queue = client.get(reverse("admin:support_incident_changelist")).content.decode()
    review = client.get(
        reverse("admin:support_incident_change", args=[incident.pk])
    ).content.decode()
    for page in (queue, review):
        assert "Waiting for the customer&#x27;s answer" in page
        assert "Waiting for your answer" not in page
