"""The staff console's home: the day's work, each queue a count linking to it filtered
(issue 15); dj-stripe's models for superusers only, apart."""

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import services as billing_services
from inbox.models import InboundMail
from refunds import services as refund_services
from refunds.models import RefundPayout, RefundRequest
from support.models import Incident
from tests.accounts.test_hardening import staff_client
from tests.factories import AccountFactory, owner_of
from tests.refunds.conftest import MONDAY
from tests.refunds.test_console import submit
from tests.support.test_incidents import cloud_account, open_one

pytestmark = pytest.mark.django_db

# Wednesday 4 March 2026, 10:00 in New York: refunds received on Monday 2 March are to be
# acknowledged today.
WEDNESDAY = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _vendor(settings):
    settings.VENDOR_TIMEZONE = "America/New_York"
    settings.VENDOR_COUNTRY = "US"


def tiles(page: str, section: str) -> dict[str, tuple[int, str]]:
    """{label: (count, link)} of a dashboard section."""
    block = page.split(f'data-testid="work-{section}"', 1)[1].split("</ul>", 1)[0]
    return {
        html.unescape(label): (int(count), html.unescape(href))
        for href, count, label in re.findall(
            r'<a href="([^"]+)"><span class="count">(\d+)</span> <span class="label">([^<]+)</span>',
            block,
        )
    }


def populate(n: int, paid_order, reviewer) -> None:
    """n of each: refunds due today, overdue, breached, with a payout pending and failed;
    incidents due today, overdue, breached; mails in triage, to confirm, held; orders
    awaiting a transfer."""
    for _ in range(n):
        account, order = paid_order()
        submit(account, order)  # to acknowledge by today
        account, order = paid_order(when=datetime(2026, 2, 23, 15, tzinfo=UTC))
        submit(account, order, now=datetime(2026, 2, 24, 15, tzinfo=UTC))  # overdue
        account, order = paid_order()
        breached = submit(account, order, now=MONDAY + timedelta(days=1))
        refund_services.refund_request_take(
            actor=reviewer, request=breached, now=MONDAY + timedelta(days=1)
        )
        RefundRequest.objects.filter(pk=breached.pk).update(breached=["acknowledge"])
        for status in ("pending", "failed"):
            account, order = paid_order()
            refund = submit(account, order)
            for line in refund.lines.all():
                refund_services.refund_line_decide(
                    actor=reviewer, line=line, approve=True, now=MONDAY
                )
            refund_services.refund_request_decide(actor=reviewer, request=refund, now=MONDAY)
            RefundPayout.objects.filter(request=refund).update(status=status)
        account = cloud_account(2 * 3)
        for offset, breach in ((timedelta(hours=2), []), (-timedelta(hours=2), []), (None, ["x"])):
            incident = open_one(account, now=MONDAY)
            Incident.objects.filter(pk=incident.pk).update(
                next_deadline=WEDNESDAY + offset if offset else None, breached=breach
            )
        for status in ("triage", "confirm", "held", "answered"):
            InboundMail.objects.create(
                message_id=f"<{status}-{InboundMail.objects.count()}@example.com>",
                source="staff",
                raw=ContentFile(b"x", name="mail.eml"),
                size=1,
                status=status,
            )
        account = AccountFactory()
        billing_services.purchase_place(
            actor=owner_of(account),
            account=account,
            items=[{"price": paid_order.prices["plugin"].pk}],
            now=MONDAY,
        )


@pytest.fixture
def shop(paid_order, shop_prices):
    paid_order.prices = shop_prices
    return paid_order


def dashboard(client):
    with time_machine.travel(WEDNESDAY, tick=False), CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return response.content.decode(), len(queries)


def test_the_home_is_the_days_work_with_links_to_the_queues_at_two_sizes(client, shop):
    admin_user = staff_client(client, superuser=True)
    counted = []
    for n in (1, 3):
        populate(n - (1 if counted else 0), shop, admin_user)
        page, queries = dashboard(client)
        counted.append(queries)
        refunds = reverse("admin:refunds_refundrequest_changelist")
        assert tiles(page, "refund-requests") == {
            "Due today": (n, f"{refunds}?deadline=due_today"),
            "Overdue": (n, f"{refunds}?deadline=overdue"),
            "Breached": (n, f"{refunds}?deadline=breached"),
            "Payout pending": (n, f"{refunds}?payouts__status__exact=pending"),
            "Payout failed": (n, f"{refunds}?payouts__status__exact=failed"),
        }
        incidents = reverse("admin:support_incident_changelist")
        assert tiles(page, "support-incidents") == {
            "Due today": (n, f"{incidents}?deadline=due_today"),
            "Overdue": (n, f"{incidents}?deadline=overdue"),
            "Breached": (n, f"{incidents}?deadline=breached"),
        }
        mails = reverse("admin:inbox_inboundmail_changelist")
        assert tiles(page, "inbound-mail") == {
            "In triage": (n, f"{mails}?status__exact=triage"),
            "Awaiting the account's confirmation": (n, f"{mails}?status__exact=confirm"),
            "Held: sender not proven": (n, f"{mails}?status__exact=held"),
        }
        money = tiles(page, "payments-and-payouts")
        assert money["Orders awaiting a bank transfer"] == (
            n,
            reverse("admin:billing_order_changelist") + "?status__exact=awaiting_payment",
        )
        assert money["Developers with earnings to pay out"] == (
            0,
            reverse("admin:marketplace_earning_changelist") + "?status__exact=available",
        )
        # The incidents by their next deadline, soonest first: the overdue ones lead.
        table = page.split('data-testid="incidents-by-deadline"', 1)[1].split("</table>")[0]
        assert table.count("<tr><td>") == min(2 * n, 5)  # the five soonest
        assert "Wed 4 Mar 2026, 08:00" in table and "Wed 4 Mar 2026, 12:00" in table
        assert table.index("08:00") < table.index("12:00")
        assert 'id="all-models"' in page  # every model is still listed below
        assert reverse("admin:refunds_report") in page
    assert counted == [12, 12]  # the same queries however many rows


def test_each_link_opens_the_queue_it_counts(client, shop):
    admin_user = staff_client(client, superuser=True)
    populate(1, shop, admin_user)
    page, _ = dashboard(client)
    for section in ("refund-requests", "support-incidents", "inbound-mail"):
        for label, (count, url) in tiles(page, section).items():
            with time_machine.travel(WEDNESDAY, tick=False):
                response = client.get(url)
            assert response.status_code == 200, (section, label)
            assert re.search(
                rf"\b{count} (refund request|incident|inbound mail|mail)", response.content.decode()
            ), (
                section,
                label,
            )


def test_the_queues_offer_the_filters_the_dashboard_links_to(client):
    staff_client(client, superuser=True)
    for name in ("refunds_refundrequest", "support_incident"):
        page = client.get(reverse(f"admin:{name}_changelist")).content.decode()
        assert "By deadline" in page and "?deadline=due_today" in page
    page = client.get(reverse("admin:refunds_refundrequest_changelist")).content.decode()
    assert "By payout status" in page and "?payouts__status__exact=failed" in page


def test_staff_see_only_the_queues_their_group_may_see(client):
    staff_client(client, group="Support agent")
    page, _ = dashboard(client)
    assert 'data-testid="work-support-incidents"' in page
    assert 'data-testid="work-refund-requests"' not in page
    assert reverse("admin:refunds_report") not in page


# --- dj-stripe --------------------------------------------------------------------------


def app_names(page: str) -> list[str]:
    return re.findall(r'<caption>\s*<a href="[^"]*" class="section"[^>]*>([^<]+)</a>', page)


def test_dj_stripe_is_for_superusers_only_in_its_own_group_at_the_end(client):
    staff_client(client, group="Billing reviewer")
    page, _ = dashboard(client)
    names = app_names(page)
    assert names and "Stripe (dj-stripe)" not in names and "Djstripe" not in names
    assert "/admin/djstripe/" not in page
    assert client.get("/admin/djstripe/").status_code == 404

    staff_client(client, superuser=True)
    page, _ = dashboard(client)
    names = app_names(page)
    assert names[-1] == "Stripe (dj-stripe)" and names.count("Stripe (dj-stripe)") == 1
    assert names.index("Refunds") < names.index("Stripe (dj-stripe)")
    assert client.get("/admin/djstripe/").status_code == 200
