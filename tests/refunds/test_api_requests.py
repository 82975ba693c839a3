"""The refund request API: ask (JSON or multipart with evidence), list, follow, withdraw,
write; bad input names its field; another account's request answers 404."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from refunds import services
from refunds.models import RefundEvidence, RefundRequest
from tests.factories import MembershipFactory, owner_of

pytestmark = pytest.mark.django_db
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def url(account, number=None, action=None):
    path = f"/api/v1/accounts/{account.pk}/refund-requests/"
    if number:
        path += f"{number}/"
    if action:
        path += f"{action}/"
    return path


def body(order, **extra):
    return {
        "lines": [line.pk for line in order.lines.all()],
        "reason": "no_longer_needed",
        "payout_method": "credit",
        **extra,
    }


@pytest.fixture
def ordered(paid_order):
    """Ordered today, so the engine still refunds it."""
    return paid_order(when=timezone.now() - timedelta(days=1))


@pytest.fixture
def client_of(api_client):
    def login(user):
        api_client.force_authenticate(user)
        return api_client

    return login


def submit(account, order, **kwargs):
    return services.refund_request_submit(
        actor=owner_of(account),
        account=account,
        line_ids=[line.pk for line in order.lines.all()],
        reason=kwargs.pop("reason", "no_longer_needed"),
        payout_method=kwargs.pop("payout_method", "original"),
        **kwargs,
    )


def test_submit_json_answers_201_with_the_detail(client_of, ordered):
    account, order = ordered
    response = client_of(owner_of(account)).post(
        url(account), body(order, text="Not for us", event_on="2026-03-01"), format="json"
    )
    assert response.status_code == 201, response.content
    data = response.json()
    refund = RefundRequest.objects.get()
    assert data["number"] == refund.number and data["account"] == account.pk
    assert (data["state"], data["state_label"], data["outcome"]) == ("received", "Received", "")
    assert (data["channel"], data["payout_method"], data["order"]) == (
        "api",
        "credit",
        order.number,
    )
    assert (data["text"], data["event_on"], data["full_order"]) == (
        "Not for us",
        "2026-03-01",
        False,
    )
    assert set(data["deadlines"]) == {"ack_due_at", "decide_due_at", "payout_from", "payout_due_at"}
    lines = {line["line"]: line for line in data["lines"]}
    assert set(lines) == {line.pk for line in order.lines.all()}
    first = next(iter(lines.values()))
    assert first["engine_outcome"] == "refund" and first["decision"] == "pending"
    assert first["engine_amount"]["currency"] == "USD" and first["approved_amount"] is None
    assert first["clause"].startswith("acelle") and first["explanation"]
    assert data["messages"] == [] and data["evidence"] == [] and data["payouts"] == []
    assert refund.channel == "api" and refund.requested_by == owner_of(account)


def test_submit_multipart_stores_the_evidence_without_a_file_url(
    client_of, ordered, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    account, order = ordered
    files = [
        SimpleUploadedFile("receipt.png", PNG, content_type="image/png"),
        SimpleUploadedFile("note.txt", b"Charged twice, see the bank statement"),
    ]
    response = client_of(owner_of(account)).post(
        url(account), {**body(order, full_order="true"), "evidence": files}, format="multipart"
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["full_order"] is True
    evidence = {e["name"]: e for e in data["evidence"]}
    assert set(evidence) == {"receipt.png", "note.txt"}
    assert evidence["receipt.png"]["content_type"] == "image/png"
    assert evidence["receipt.png"]["size"] == len(PNG)
    assert set(evidence["receipt.png"]) == {"name", "content_type", "size", "created_at"}
    assert RefundEvidence.objects.count() == 2


def test_list_is_paginated_newest_first(client_of, paid_order):
    account, order = paid_order()
    _, second = paid_order(account=account)
    older = submit(account, order, now=timezone.now() - timedelta(hours=2))
    newer = submit(account, second, payout_method="credit")
    response = client_of(owner_of(account)).get(url(account))
    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 2
    assert [row["number"] for row in data["results"]] == [newer.number, older.number]
    row = data["results"][0]
    assert row == {
        "number": newer.number,
        "state": "received",
        "outcome": "",
        "order": second.number,
        "received_at": row["received_at"],
        "approved_total": {"amount": "0.00", "currency": "USD"},
        "next_deadline": row["next_deadline"],
    }
    assert row["next_deadline"] is not None
    page = client_of(owner_of(account)).get(url(account), {"limit": 1, "offset": 1}).json()
    assert [row["number"] for row in page["results"]] == [older.number]


def test_detail_shows_messages_by_name_only(client_of, ordered, billing_staff):
    account, order = ordered
    refund = submit(account, order)
    services.refund_request_ask_info(actor=billing_staff, request=refund, question="Which bank?")
    response = client_of(owner_of(account)).get(url(account, refund.number))
    assert response.status_code == 200
    data = response.json()
    assert data["state"] == "needs_info" and data["state_label"] == "Waiting for your answer"
    assert data["messages"] == [
        {
            "from_staff": True,
            "author": "Billing team",
            "body": "Which bank?",
            "created_at": data["messages"][0]["created_at"],
        }
    ]
    assert billing_staff.email not in response.content.decode()


def test_withdraw_then_a_second_withdraw_is_refused_under_state(client_of, ordered):
    account, order = ordered
    refund = submit(account, order)
    client = client_of(owner_of(account))
    response = client.post(url(account, refund.number, "withdraw"))
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "withdrawn"
    again = client.post(url(account, refund.number, "withdraw"))
    assert again.status_code == 400
    assert again.json() == {
        "state": [f"{refund.number} is withdrawn: only a request not yet decided can be withdrawn."]
    }


def test_an_answer_to_needs_info_restarts_the_review(
    client_of, ordered, billing_staff, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    account, order = ordered
    refund = submit(account, order)
    services.refund_request_ask_info(
        actor=billing_staff, request=refund, question="Send the bank statement."
    )
    client = client_of(owner_of(account))
    response = client.post(
        url(account, refund.number, "messages"),
        {"body": "Attached.", "evidence": [SimpleUploadedFile("statement.png", PNG)]},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["state"] == "in_review"
    assert [(m["from_staff"], m["body"]) for m in data["messages"]] == [
        (True, "Send the bank statement."),
        (False, "Attached."),
    ]
    assert [e["name"] for e in data["evidence"]] == ["statement.png"]
    # JSON works too; an empty message is refused under `body`.
    assert (
        client.post(
            url(account, refund.number, "messages"), {"body": "Any news?"}, format="json"
        ).status_code
        == 201
    )
    empty = client.post(url(account, refund.number, "messages"), {"body": " "}, format="json")
    assert empty.status_code == 400 and "body" in empty.json()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"reason": "bored"}, "reason"),
        ({"payout_method": "cheque"}, "payout_method"),
        ({"lines": []}, "lines"),
        ({"lines": ["x"]}, "lines"),
        ({"event_on": "yesterday"}, "event_on"),
        ({"text": "x" * 5001}, "text"),
    ],
)
def test_bad_input_answers_400_naming_the_field(client_of, ordered, change, field):
    account, order = ordered
    response = client_of(owner_of(account)).post(url(account), body(order, **change), format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not RefundRequest.objects.exists()


def test_lines_of_two_orders_are_refused(client_of, ordered, paid_order):
    account, order = ordered
    _, other_order = paid_order(account=account)
    lines = [order.lines.first().pk, other_order.lines.first().pk]
    response = client_of(owner_of(account)).post(
        url(account), body(order, lines=lines), format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"lines": ["Ask about the purchases of one order at a time."]}


def test_an_executable_is_refused_as_evidence(client_of, ordered, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    account, order = ordered
    exe = SimpleUploadedFile("setup.exe", b"MZ\x90\x00\x03\x00\x00\x00" + bytes(64))
    response = client_of(owner_of(account)).post(
        url(account), {**body(order), "evidence": [exe]}, format="multipart"
    )
    assert response.status_code == 400
    assert "setup.exe is not a PDF" in response.json()["evidence"][0]
    assert not RefundRequest.objects.exists()


def test_another_accounts_request_and_lines_answer_404(client_of, ordered, paid_order):
    account, _ = ordered
    other, other_order = paid_order()
    theirs = submit(other, other_order)
    client = client_of(owner_of(account))
    # Their request through my account, and through theirs (I am not a member).
    assert client.get(url(account, theirs.number)).status_code == 404
    assert client.get(url(other, theirs.number)).status_code == 404
    assert client.post(url(account, theirs.number, "withdraw")).status_code == 404
    assert (
        client.post(url(account, theirs.number, "messages"), {"body": "hi"}, format="json")
    ).status_code == 404
    assert client.get(url(account)).json()["count"] == 0
    # Their purchases, asked about from my account or from the top-level path.
    assert client.post(url(account), body(other_order), format="json").status_code == 404
    assert client.post(
        "/api/v1/refund-requests/", body(other_order), format="json"
    ).status_code == (404)
    theirs.refresh_from_db()
    assert theirs.state == "received" and RefundRequest.objects.count() == 1


def test_a_member_is_refused_with_403(client_of, ordered):
    account, order = ordered
    refund = submit(account, order)
    member = MembershipFactory(account=account, role="member").user
    client = client_of(member)
    assert client.get(url(account)).status_code == 403
    assert client.get(url(account, refund.number)).status_code == 403
    assert client.post(url(account), body(order), format="json").status_code == 403
    assert client.post(url(account, refund.number, "withdraw")).status_code == 403
    # The top-level path cannot tell a member's account from a stranger's: 404.
    assert client.post("/api/v1/refund-requests/", body(order), format="json").status_code == 404


def test_the_issues_top_level_path_finds_the_account_from_the_lines(
    client_of, ordered, paid_order, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    account, order = ordered
    billing_admin = MembershipFactory(account=account, role="billing_admin").user
    client = client_of(billing_admin)
    response = client.post(
        "/api/v1/refund-requests/",
        {**body(order), "evidence": [SimpleUploadedFile("r.png", PNG)]},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["account"] == account.pk and data["channel"] == "api"
    assert [e["name"] for e in data["evidence"]] == ["r.png"]
    refund = RefundRequest.objects.get()
    assert refund.account == account and refund.requested_by == billing_admin
    # It is then followed under the account.
    assert client.get(url(account, refund.number)).json()["number"] == refund.number
    # Lines of two accounts the caller owns: one order at a time.
    mine, my_order = paid_order()
    MembershipFactory(account=mine, user=billing_admin, role="owner")
    lines = [my_order.lines.first().pk, order.lines.last().pk]
    response = client.post(
        "/api/v1/refund-requests/", body(order, lines=lines, reason="outage"), format="json"
    )
    assert response.status_code == 400 and list(response.json()) == ["lines"]
    bad = client.post("/api/v1/refund-requests/", body(order, reason="bored"), format="json")
    assert bad.status_code == 400 and list(bad.json()) == ["reason"]


def test_list_and_detail_queries_do_not_grow_with_requests(
    client_of, paid_order, billing_staff, django_assert_max_num_queries, django_assert_num_queries
):
    account, order = paid_order()
    client = client_of(owner_of(account))

    def make(count):
        for _ in range(count):
            refund = submit(account, order)
            services.refund_request_ask_info(actor=billing_staff, request=refund, question="Why?")
            services.refund_request_message(
                actor=owner_of(account), request=refund, body="Because."
            )
            services.refund_request_withdraw(actor=owner_of(account), request=refund)
        return refund

    def measure(refund):
        with django_assert_max_num_queries(15) as listed:
            assert client.get(url(account)).status_code == 200
        with django_assert_max_num_queries(15) as detailed:
            assert client.get(url(account, refund.number)).status_code == 200
        return len(listed), len(detailed)

    small = measure(make(2))
    big_refund = make(18)
    assert RefundRequest.objects.count() == 20
    with django_assert_num_queries(small[0]):
        response = client.get(url(account))
    assert response.json()["count"] == 20 and len(response.json()["results"]) == 20
    with django_assert_num_queries(small[1]):
        detail = client.get(url(account, big_refund.number)).json()
    assert len(detail["messages"]) == 2 and len(detail["lines"]) == 2
