"""The staff queues cost what they show (issue 16): each queue, bare and with each filter
the console's home links to (and the others it offers), makes the same queries for 5 as
for 50 matching rows, counts once, and never reads a column's distinct values."""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django import forms
from django.contrib.admin import helpers
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import format_html

from billing.models import Order
from inbox.models import InboundMail
from refunds.models import RefundPayout, RefundRequest
from support.models import Incident
from tests.accounts.test_hardening import staff_client
from tests.factories import AccountFactory, UserFactory

pytestmark = pytest.mark.django_db

# Wednesday 4 March 2026, 10:00 in New York.
NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
REFUNDS = "admin:refunds_refundrequest_changelist"
INCIDENTS = "admin:support_incident_changelist"
MAILS = "admin:inbox_inboundmail_changelist"


@pytest.fixture(autouse=True)
def _vendor(settings):
    settings.VENDOR_TIMEZONE = "America/New_York"
    settings.VENDOR_COUNTRY = "US"


class Rows:
    """Rows of every queue, each new one for a new account (as the queues hold them: one
    customer's row after another's), matching a filter or not."""

    def __init__(self):
        self.made = 0
        self.holder = UserFactory(is_staff=True, email="holder@vendor.example")
        self.holder.groups.add(Group.objects.get(name="Billing reviewer"))

    def _next(self):
        self.made += 1
        account = AccountFactory()
        return self.made, account

    def refund(
        self, *, due=timedelta(hours=3), state="in_review", breached=(), payout=None, **other
    ):
        n, account = self._next()
        order = Order.objects.create(
            account=account,
            number=f"ORD-Q-{n}",
            currency="USD",
            status=Order.Status.PAID,
            total=Decimal("100.00"),
            paid_at=NOW - timedelta(days=3),
        )
        deadline = NOW + due if due is not None else None
        refund = RefundRequest.objects.create(
            **{
                "number": f"RR-Q-{n}",
                "holder": self.holder,
                "channel": "web",
                "preset": "acelle",
                **other,
            },
            account=account,
            order=order,
            state=state,
            reason="no_longer_needed",
            payout_method="original",
            currency="USD",
            ack_due_at=NOW + timedelta(days=1),
            decide_due_at=NOW + timedelta(days=3),
            next_deadline=deadline,
            breached=list(breached),
        )
        if payout:
            RefundPayout.objects.create(
                request=refund,
                method="manual",
                amount=Decimal("100.00"),
                currency="USD",
                idempotency_key=f"q-{n}",
                status=payout,
            )
        return refund

    def incident(self, *, due=timedelta(hours=3), state="in_progress", breached=(), **other):
        n, account = self._next()
        return Incident.objects.create(
            **{"assignee": self.holder, "severity": "P3", **other},
            number=f"INC-Q-{n}",
            account=account,
            channel="web",
            subject=f"Problem {n}",
            description="The report fails. " * 50,
            state=state,
            support_year_start=date(2026, 1, 1),
            seats_at_open=2,
            first_response_due_at=NOW + timedelta(hours=8),
            next_deadline=NOW + due if due is not None else None,
            breached=list(breached),
        )

    def mail(self, *, status="reply", source="imap", mailbox="refunds"):
        n, account = self._next()
        return InboundMail.objects.create(
            mailbox=mailbox,
            message_id=f"<q-{n}@customer.example>",
            source=source,
            raw=ContentFile(b"x", name="mail.eml"),
            size=1,
            sender=f"someone{n}@customer.example",
            subject=f"Refund request {n}",
            status=status,
            account=account,
            parsed={"body": "Hello. " * 500},
        )


def holder_filter(rows):
    return f"?holder__id__exact={rows.holder.pk}"


def assignee_filter(rows):
    return f"?assignee__id__exact={rows.holder.pk}"


# (changelist, query string, how to make a row it shows). The first of each queue is
# the bare queue; the rest are the console home's links and the queue's other filters.
VIEWS = [
    (REFUNDS, "", lambda rows: rows.refund()),
    (REFUNDS, "?deadline=due_today", lambda rows: rows.refund(due=timedelta(hours=2))),
    (REFUNDS, "?deadline=overdue", lambda rows: rows.refund(due=-timedelta(days=1))),
    (REFUNDS, "?deadline=breached", lambda rows: rows.refund(breached=["acknowledge"])),
    (REFUNDS, "?payouts__status__exact=pending", lambda rows: rows.refund(payout="pending")),
    (REFUNDS, "?payouts__status__exact=failed", lambda rows: rows.refund(payout="failed")),
    (REFUNDS, "?state__exact=received", lambda rows: rows.refund(state="received")),
    (REFUNDS, holder_filter, lambda rows: rows.refund()),
    (REFUNDS, "?channel__exact=web", lambda rows: rows.refund()),
    (REFUNDS, "?preset=acelle", lambda rows: rows.refund()),
    (REFUNDS, "?q=RR-Q", lambda rows: rows.refund()),
    (INCIDENTS, "", lambda rows: rows.incident()),
    (INCIDENTS, "?deadline=due_today", lambda rows: rows.incident(due=timedelta(hours=2))),
    (INCIDENTS, "?deadline=overdue", lambda rows: rows.incident(due=-timedelta(hours=5))),
    (INCIDENTS, "?deadline=breached", lambda rows: rows.incident(breached=["update due x"])),
    (INCIDENTS, "?state__exact=open", lambda rows: rows.incident(state="open")),
    (INCIDENTS, assignee_filter, lambda rows: rows.incident()),
    (INCIDENTS, "?severity__exact=P3", lambda rows: rows.incident()),
    (MAILS, "", lambda rows: rows.mail()),
    (MAILS, "?status__exact=triage", lambda rows: rows.mail(status="triage")),
    (MAILS, "?status__exact=confirm", lambda rows: rows.mail(status="confirm")),
    (MAILS, "?status__exact=held", lambda rows: rows.mail(status="held")),
    (MAILS, "?source=webhook", lambda rows: rows.mail(source="webhook")),
    (MAILS, "?mailbox__exact=refunds", lambda rows: rows.mail()),
]


# Rows on a queue's page (QueueAdmin.list_per_page).
PER_PAGE = 50


def shown(html: str) -> int:
    """The rows on the page (one checkbox each)."""
    return html.count('name="_selected_action"')


def stated(html: str) -> int:
    """How many rows the page says match, at its foot."""
    found = re.findall(r"(\d+) (?:refund requests?|incidents?|inbound mails?)\b", html)
    return int(found[-1])


def visit(client, url):
    with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return response.content.decode(), [q["sql"] for q in queries.captured_queries]


@pytest.mark.parametrize(
    "changelist,query,make",
    VIEWS,
    ids=[
        f"{name.split('_')[-2]}{q if isinstance(q, str) else '?' + q.__name__}"
        for name, q, _ in VIEWS
    ],
)
def test_each_queue_makes_the_same_queries_for_5_as_for_50_rows(client, changelist, query, make):
    staff_client(client, group="Administrator")
    rows = Rows()
    # A row of each queue that no filter here shows (the bare queue does).
    rows.refund(
        due=timedelta(days=9), state="decided", channel="email", preset="onecrm", holder=None
    )
    Order.objects.filter(number="ORD-Q-1").update(number="ORD-X-1")
    RefundRequest.objects.filter(number="RR-Q-1").update(number="RR-X-1")
    rows.incident(due=None, state="closed", assignee=None, severity="P1")
    rows.mail(status="answered", source="maildir", mailbox="support")
    url = reverse(changelist) + (query if isinstance(query, str) else query(rows))
    bare = query == ""
    counted = []
    for size in (5, 50):
        while rows.made - 3 < size:
            make(rows)
        html, queries = visit(client, url)
        expected = size + 1 if bare else size
        assert stated(html) == expected
        assert shown(html) == min(expected, PER_PAGE)  # the bare queue's 51st on page 2
        counted.append(len(queries))
        # One count, of the rows the filters match: none of the whole table beside it,
        # none of a column's distinct values for a filter's choices.
        assert sum("COUNT(" in sql for sql in queries) == 1, queries
        assert not any("DISTINCT" in sql for sql in queries), queries
    assert counted[0] == counted[1]


def test_the_queues_are_read_in_their_indexes_order(client):
    """The orderings the indexes refund_console_queue, incident_console_queue and
    inbound_mail_console_recent hold: next deadline first, none last, then id; the newest
    mail first."""
    staff_client(client, superuser=True)
    rows = Rows()
    later = rows.refund(due=timedelta(days=2))
    none = rows.refund(due=None)
    sooner = rows.refund(due=timedelta(hours=1))
    html, _ = visit(client, reverse(REFUNDS))
    assert [html.index(r.number) for r in (sooner, later, none)] == sorted(
        html.index(r.number) for r in (sooner, later, none)
    )
    old, new = rows.mail(), rows.mail()
    InboundMail.objects.filter(pk=old.pk).update(received_at=NOW - timedelta(days=1))
    html, _ = visit(client, reverse(MAILS))
    assert html.index(new.sender) < html.index(old.sender)


def test_a_row_links_to_its_page_keeping_the_queues_filters(client):
    staff_client(client, superuser=True)
    refund = Rows().refund(due=-timedelta(days=1))
    page = reverse("admin:refunds_refundrequest_change", args=[refund.pk])
    html, _ = visit(client, reverse(REFUNDS) + "?deadline=overdue")
    assert f'href="{page}?_changelist_filters=deadline%3Doverdue"' in html
    html, _ = visit(client, reverse(REFUNDS))
    assert f'href="{page}"' in html


def test_the_row_checkbox_is_the_admins_own(client):
    staff_client(client, superuser=True)
    refund = Rows().refund()
    html, _ = visit(client, reverse(REFUNDS))
    widget = forms.CheckboxInput(
        {
            "class": "action-select",
            "aria-label": format_html("Select this object for an action - {}", str(refund)),
        },
        lambda value: False,
    )
    assert widget.render(helpers.ACTION_CHECKBOX_NAME, str(refund.pk)) in html


def test_the_holder_and_assignee_filters_list_the_staff_not_the_customers(client):
    staff_client(client, superuser=True)
    rows = Rows()
    rows.refund()
    rows.incident()
    customer = UserFactory(email="customer@customer.example")
    for changelist, parameter in ((REFUNDS, "holder"), (INCIDENTS, "assignee")):
        html, _ = visit(client, reverse(changelist))
        assert f"?{parameter}__id__exact={rows.holder.pk}" in html
        assert f"?{parameter}__id__exact={customer.pk}" not in html
        assert f"?{parameter}__isnull=True" in html


def test_the_preset_and_source_filters_offer_their_values_without_reading_rows(client):
    staff_client(client, superuser=True)
    html, _ = visit(client, reverse(REFUNDS))
    for preset in ("acelle", "onecloud", "onecrm"):
        assert f"?preset={preset}" in html
    html, _ = visit(client, reverse(MAILS))
    for source in ("imap", "maildir", "mbox", "webhook"):
        assert f"?source={source}" in html


def test_bulk_actions_still_see_every_field(client):
    """The list leaves the long columns unread; an action's rows have them."""
    staff_client(client, superuser=True)
    mail = Rows().mail(status="held")
    response = client.post(
        reverse(MAILS),
        {"action": "dismiss", "_selected_action": [mail.pk], "index": 0},
        follow=True,
    )
    assert response.status_code == 200
    mail.refresh_from_db()
    assert mail.status == "dismissed"
    assert mail.parsed["body"].startswith("Hello.")
