"""The customer's refund pages: ask with the policy's preview, follow, answer, withdraw."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from refunds import services
from refunds.models import RefundRequest
from tests.factories import MembershipFactory, UserFactory, owner_of

pytestmark = pytest.mark.django_db
WEDNESDAY = datetime(2026, 3, 4, 15, tzinfo=UTC)


@pytest.fixture
def owner_client(client, paid_order):
    account, order = paid_order()
    client.force_login(owner_of(account))
    return client, account, order


def test_ask_with_a_preview_then_follow_the_request(owner_client, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    client, account, order = owner_client
    url = reverse("refund_request_new", args=[order.pk])
    credits, _ = order.lines.order_by("pk")
    with time_machine.travel(WEDNESDAY, tick=False):
        page = client.get(url)
        assert page.status_code == 200 and "Refundable today: $100.00" in page.text
        form = {
            "account_id": account.pk,
            "lines": [credits.pk],
            "reason": "no_longer_needed",
            "payout_method": "credit",
            "text": "We bought too many.",
        }
        preview = client.post(url, {**form, "action": "preview"})
        assert preview.status_code == 200 and "What our policy says" in preview.text
        assert not RefundRequest.objects.exists()
        receipt = SimpleUploadedFile("receipt.pdf", b"%PDF-1.4 receipt")
        sent = client.post(url, {**form, "action": "send", "evidence": [receipt]})
        # Still on that day: the session, saved then, expires counted from it.
        detail = client.get(sent.url)
        billing = client.get(reverse("settings_billing"))
    request = RefundRequest.objects.get()
    assert sent.status_code == 302 and sent.url == reverse(
        "refund_request_detail", args=[request.number]
    )
    assert detail.status_code == 200
    assert "We acknowledge it by" in detail.text and "acelle §2.1" not in detail.text
    assert (
        '<a href="/policies/acelle/#s2-1" class="policy-link">'
        "Before use — fully refundable (section 2.1)</a>" in detail.text
    )
    assert "receipt.pdf" in detail.text and "We bought too many." in detail.text
    assert request.number in billing.text


def test_bad_input_is_a_400_naming_what_is_wrong(owner_client):
    client, account, order = owner_client
    url = reverse("refund_request_new", args=[order.pk])
    no_lines = client.post(
        url,
        {
            "account_id": account.pk,
            "reason": "no_longer_needed",
            "payout_method": "credit",
            "action": "send",
        },
    )
    assert no_lines.status_code == 400 and "This field is required" in no_lines.text
    exe = SimpleUploadedFile("setup.exe", b"MZ\x90\x00")
    bad_file = client.post(
        url,
        {
            "account_id": account.pk,
            "lines": [order.lines.first().pk],
            "reason": "no_longer_needed",
            "payout_method": "credit",
            "action": "send",
            "evidence": [exe],
        },
    )
    assert bad_file.status_code == 400 and "not a PDF" in bad_file.text
    assert not RefundRequest.objects.exists()


def test_answering_and_withdrawing(owner_client):
    client, account, order = owner_client
    request = services.refund_request_submit(
        actor=owner_of(account),
        account=account,
        line_ids=[order.lines.first().pk],
        reason="billing_error",
        payout_method="credit",
    )
    from django.contrib.auth.models import Group

    reviewer = UserFactory(is_staff=True)
    reviewer.groups.add(Group.objects.get(name="Billing reviewer"))
    services.refund_request_ask_info(actor=reviewer, request=request, question="Which card?")
    url = reverse("refund_request_detail", args=[request.number])
    assert "Which card?" in client.get(url).text
    client.post(url, {"account_id": account.pk, "action": "message", "body": "The Visa one."})
    request.refresh_from_db()
    assert request.state == "in_review"
    client.post(url, {"account_id": account.pk, "action": "withdraw"})
    request.refresh_from_db()
    assert request.state == "withdrawn"


def test_another_accounts_request_answers_404_and_members_403(client, paid_order):
    account, order = paid_order()
    request = services.refund_request_submit(
        actor=owner_of(account),
        account=account,
        line_ids=[order.lines.first().pk],
        reason="no_longer_needed",
        payout_method="credit",
    )
    other, _ = paid_order()
    client.force_login(owner_of(other))
    assert client.get(reverse("refund_request_detail", args=[request.number])).status_code == 404
    assert client.get(reverse("refund_request_new", args=[order.pk])).status_code == 404
    member = MembershipFactory(account=account, role="member").user
    client.force_login(member)
    assert client.get(reverse("refund_request_detail", args=[request.number])).status_code == 403


def test_a_deactivated_account_keeps_only_billing_and_its_refunds(client, paid_order):
    from accounts.models import Account

    account, order = paid_order()
    request = services.refund_request_submit(
        actor=owner_of(account),
        account=account,
        line_ids=[order.lines.first().pk],
        reason="no_longer_needed",
        payout_method="credit",
    )
    Account.objects.filter(pk=account.pk).update(status="deactivated")
    client.force_login(owner_of(account))
    home = client.get("/")
    assert home.status_code == 403 and "is deactivated" in home.text
    assert client.get(reverse("settings_users")).status_code == 403
    assert client.get(reverse("settings_billing")).status_code == 200
    assert client.get(reverse("refund_request_detail", args=[request.number])).status_code == 200
    api = client.get(f"/api/v1/accounts/{account.pk}/members/")
    assert api.status_code == 403 and "deactivated" in api.json()["detail"]
    assert client.get(f"/api/v1/accounts/{account.pk}/refund-requests/").status_code == 200
