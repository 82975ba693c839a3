"""What customers read about their refund rights: plain sentences, the clause a link to
the policy page (an anchor per section), the refund form a row per purchase, files kept
across the preview, Send kept after a refusal; and the staff console for a customer."""

import io
import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.core import mail
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from accounts.models import Account, User
from marketplace.models import App
from refunds import emails, services
from refunds.models import RefundRequest
from support.models import Incident
from tests.factories import UserFactory, owner_of

pytestmark = pytest.mark.django_db
WEDNESDAY = datetime(2026, 3, 4, 15, tzinfo=UTC)
RAW_IDS = re.compile(r"§|\(uncovered\)|\buncovered\b|1CRM terms|onecrm (?:subscriptions|partners)")


def raw_ids(html: str) -> list[str]:
    """Clause ids in what a person reads (tags, attributes and links' targets aside)."""
    text = re.sub(r"<[^>]+>", " ", html)
    return RAW_IDS.findall(text)


@pytest.fixture
def owner_client(client, paid_order):
    account, order = paid_order()
    client.force_login(owner_of(account))
    return client, account, order


def form_for(account, *lines, **extra):
    return {
        "account_id": account.pk,
        "lines": [line.pk for line in lines],
        "reason": "no_longer_needed",
        "payout_method": "credit",
        **extra,
    }


def test_the_policy_page_has_an_anchor_per_section(client):
    page = client.get("/policies/acelle/")
    assert page.status_code == 200
    assert '<h3 id="s1-3">1.3. Not eligible for refund</h3>' in page.text
    assert '<h2 id="s4">4. Mixed orders</h2>' in page.text
    assert "Renewals, auto or manual" in page.text
    onecloud = client.get("/policies/onecloud/").text
    assert '<h2 id="s4">4. 1Cloud AI CRM App Marketplace Policy</h2>' in onecloud
    onecrm = client.get("/policies/onecrm/").text
    assert 'id="subscriptions">Monthly/Annual Subscriptions: Additional Terms' in onecrm
    assert '<p id="partners">The above pricing and policies apply only' in onecrm
    assert client.get("/policies/nothing/").status_code == 404


def test_each_purchase_is_one_row_with_its_box_description_and_policy(owner_client):
    client, _account, order = owner_client
    credits, plugin = order.lines.order_by("pk")
    with time_machine.travel(WEDNESDAY, tick=False):
        page = client.get(reverse("refund_request_new", args=[order.pk])).text
    rows = re.findall(r'<li class="refund-row".*?</li>', page, flags=re.S)
    assert len(rows) == 2
    for row, line in zip(rows, (credits, plugin), strict=True):
        assert row.count('type="checkbox"') == 1 and f'value="{line.pk}"' in row
        assert f'<label for="line-{line.pk}"><strong>{line.description}</strong>' in row
        assert f'id="line-{line.pk}-policy"' in row
    assert "Refundable today: $100.00, until March 9, 2026." in rows[0]
    assert (
        'title="Nothing of it used within 7 days of purchase: refunded in full, until March 9, 2026."'
        in rows[0]
    )
    assert '<a href="/policies/acelle/#s2-1" class="policy-link">' in rows[0]
    assert raw_ids(page) == []


def test_files_are_kept_across_the_preview_and_attached_on_send(owner_client, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    client, account, order = owner_client
    credits, _ = order.lines.order_by("pk")
    url = reverse("refund_request_new", args=[order.pk])
    statement = SimpleUploadedFile("statement.pdf", b"%PDF-1.4 statement")
    with time_machine.travel(WEDNESDAY, tick=False):
        preview = client.post(
            url, {**form_for(account, credits), "action": "preview", "evidence": [statement]}
        )
        assert preview.status_code == 200
        assert "Kept: statement.pdf." in preview.text
        again = client.get(url)
        assert "Kept: statement.pdf." in again.text
        sent = client.post(url, {**form_for(account, credits), "action": "send"})
        assert sent.status_code == 302
        request = RefundRequest.objects.get()
        assert [e.name for e in request.evidence.all()] == ["statement.pdf"]
        assert request.evidence.get().file.read() == b"%PDF-1.4 statement"
        # Sent: nothing is held any more, on the page or in storage.
        assert client.session.get("refund_held", {}) == {}
        assert default_storage.listdir("refund-held")[1] == []


def test_kept_files_are_checked_again_with_new_ones(owner_client, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.REFUND_EVIDENCE_MAX_FILES = 1
    client, account, order = owner_client
    credits, _ = order.lines.order_by("pk")
    url = reverse("refund_request_new", args=[order.pk])
    first = SimpleUploadedFile("a.pdf", b"%PDF-1.4 a")
    second = SimpleUploadedFile("b.pdf", b"%PDF-1.4 b")
    with time_machine.travel(WEDNESDAY, tick=False):
        client.post(url, {**form_for(account, credits), "action": "preview", "evidence": [first]})
        refused = client.post(
            url, {**form_for(account, credits), "action": "send", "evidence": [second]}
        )
    assert refused.status_code == 400 and "Attach at most 1 files." in refused.text
    assert "Kept: a.pdf." in refused.text and not RefundRequest.objects.exists()


def test_send_stays_after_a_refused_send_with_the_reason_beside_the_field(owner_client):
    client, account, order = owner_client
    credits, _ = order.lines.order_by("pk")
    url = reverse("refund_request_new", args=[order.pk])
    exe = SimpleUploadedFile("setup.exe", b"MZ\x90\x00")
    with time_machine.travel(WEDNESDAY, tick=False):
        refused = client.post(
            url, {**form_for(account, credits), "action": "send", "evidence": [exe]}
        )
        no_lines = client.post(url, {**form_for(account), "action": "send"})
    assert refused.status_code == 400
    assert re.search(
        r'<ul class="errorlist[^"]*"[^>]*><li>setup.exe is not a PDF[^<]*</li></ul>'
        r'<label for="id_evidence">',
        refused.text,
    )
    assert 'value="send" data-testid="send">Send the refund request</button>' in refused.text
    assert no_lines.status_code == 400 and "This field is required" in no_lines.text
    assert 'value="send" data-testid="send">' in no_lines.text
    assert not RefundRequest.objects.exists()


def test_withdrawing_asks_for_confirmation(owner_client):
    client, account, order = owner_client
    request = services.refund_request_submit(
        actor=owner_of(account),
        account=account,
        line_ids=[order.lines.first().pk],
        reason="billing_error",
        payout_method="credit",
    )
    page = client.get(reverse("refund_request_detail", args=[request.number])).text
    assert (
        f'value="withdraw" class="danger small" data-confirm="Withdraw {request.number}?"' in page
    )


def test_the_refund_mail_names_the_policy_section_in_words(owner_client, settings):
    _client, account, order = owner_client
    credits, _ = order.lines.order_by("pk")
    with time_machine.travel(WEDNESDAY, tick=False):
        services.refund_request_submit(
            actor=owner_of(account),
            account=account,
            line_ids=[credits.pk],
            reason="no_longer_needed",
            payout_method="credit",
        )
        emails.send_refund_update(request=RefundRequest.objects.get(), event="received")
    body = mail.outbox[-1].body
    assert "our policy says refundable, up to $100.00." in body
    assert (
        "Before use — fully refundable (section 2.1): "
        f"{settings.PORTAL_BASE_URL.rstrip('/')}/policies/acelle/#s2-1" in body
    )
    assert "We acknowledge it by March 6, 2026 and decide by March 11, 2026." in body
    assert raw_ids(body) == []


@pytest.fixture
def demo(settings):
    settings.DEBUG = True
    for command in ("demo_data", "demo_billing", "demo_marketplace", "demo_refunds"):
        call_command(command, stdout=io.StringIO())
    settings.DEBUG = False


@pytest.mark.parametrize("preset", ["acelle", "onecloud", "onecrm"])
def test_no_raw_clause_id_on_any_customer_page_of_the_demo(client, settings, demo, preset):
    settings.REFUND_POLICY = preset
    client.force_login(User.objects.get(email="owner@acme.example"))
    acme = Account.objects.get(name="Acme Corporation")
    refunds = RefundRequest.objects.filter(account=acme)
    paths = [
        reverse("dashboard"),
        reverse("support_home"),
        reverse("service_levels"),
        reverse("marketplace"),
        *(
            reverse("marketplace_app", args=[slug])
            for slug in App.objects.values_list("slug", flat=True)
        ),
        *(
            reverse("incident_detail", args=[i.number])
            for i in Incident.objects.filter(account=acme)
        ),
        *(reverse("refund_request_detail", args=[r.number]) for r in refunds),
        *(reverse("refund_request_new", args=[r.order_id]) for r in refunds),
    ]
    assert refunds and len(paths) > 6
    for path in paths:
        page = client.get(path)
        assert page.status_code == 200, path
        assert raw_ids(page.text) == [], path


def test_a_customer_who_opens_the_console_reads_it_is_for_staff(client, paid_order):
    account, _ = paid_order()
    client.force_login(owner_of(account))
    for path in ("/admin/", "/admin/refunds/refundrequest/", "/admin/login/?next=/admin/"):
        page = client.get(path, follow=True)
        assert len(page.redirect_chain) <= 1, path
        assert page.status_code == 403, path
        assert "The staff console is for staff" in page.text
        assert f'<a href="{reverse("dashboard")}">Back to your portal</a>' in page.text


def test_a_signed_out_visitor_opening_the_console_goes_to_sign_in(client):
    page = client.get("/admin/", follow=True)
    assert page.status_code == 200
    assert page.redirect_chain[-1][0].startswith(reverse("account_login"))
    assert "The staff console is for staff" not in page.text


def test_staff_still_see_the_console(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    page = client.get("/admin/")
    # Staff without two-factor authentication set it up first, as before.
    assert page.status_code == 302 and page.url.startswith(reverse("mfa_activate_totp"))


def test_held_files_never_sent_are_purged_after_an_hour():
    from datetime import timedelta

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from refunds import holding

    with time_machine.travel(WEDNESDAY, tick=False):
        path = default_storage.save("refund-held/abc-statement.pdf", ContentFile(b"%PDF-1.4"))
    holding.purge(WEDNESDAY + timedelta(minutes=30))
    assert default_storage.exists(path)  # held half an hour: kept
    holding.purge(WEDNESDAY + timedelta(hours=2))
    assert not default_storage.exists(path)  # never sent: gone
