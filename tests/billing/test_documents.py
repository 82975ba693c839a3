"""Invoices and credit notes: issued once, numbered without a gap, immutable, keeping the
buyer as they were; PDFs that name what they must; receipts mailed with the PDF."""

import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.db import transaction
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader

from accounts.errors import PortalError
from accounts.models import AuditEvent
from billing import services
from billing.models import AppendOnlyError, CreditNote, Invoice, Price, Product
from billing.pdf import credit_note_pdf, invoice_pdf
from tests.factories import AccountFactory, owner_of

pytestmark = pytest.mark.django_db
WHEN = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def prices():
    def price(code, kind, amount, **extra):
        product = Product.objects.create(code=code, name=code.title(), kind=kind, **extra)
        return Price.objects.create(
            product=product, currency="USD", amount=Decimal(amount), interval="one_off"
        )

    return {
        "plugin": price("plugin", "plugin", "49"),
        "storage": price("storage", "quota_addon", "20"),
    }


def buy(account, prices, staff, *names, when=WHEN):
    order = services.purchase_place(
        actor=owner_of(account),
        account=account,
        items=[{"price": prices[n].pk} for n in names],
        now=when,
    )
    services.payment_record_manual(actor=staff, order=order, reference="WIRE-7", now=when)
    order.refresh_from_db()
    return order


def pdf_text(content: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_a_paid_order_gets_one_invoice_with_the_buyer_of_that_day(prices, billing_staff):
    account = AccountFactory(name="Acme")
    services.billing_details_update(
        actor=owner_of(account),
        account=account,
        data={
            "legal_name": "Acme Corporation GmbH",
            "address_line1": "Hauptstr. 1",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
            "tax_id": "DE136695976",
        },
    )
    order = buy(account, prices, billing_staff, "plugin", "storage")
    invoice = Invoice.objects.get(order=order)
    assert invoice.number == "INV-2026-000001"
    assert (invoice.subtotal, invoice.total, invoice.amount_paid) == (69, 69, 69)
    assert invoice.payment_method == "Payment recorded by our billing team"
    assert invoice.payment_reference == "WIRE-7"
    assert (
        invoice.buyer["name"] == "Acme Corporation GmbH"
        and invoice.buyer["tax_id"] == "DE136695976"
    )
    assert [line.description for line in invoice.lines.all()] == [
        line.description for line in order.lines.all()
    ]
    services.billing_details_update(
        actor=owner_of(account), account=account, data={"legal_name": "Renamed AG"}
    )
    invoice.refresh_from_db()
    assert invoice.buyer["name"] == "Acme Corporation GmbH"  # as it was that day
    with pytest.raises(AppendOnlyError):
        invoice.save()
    second = buy(account, prices, billing_staff, "plugin")
    assert Invoice.objects.get(order=second).number == "INV-2026-000002"


def test_a_rolled_back_issue_takes_no_number(prices, billing_staff):
    account = AccountFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        buy(account, prices, billing_staff, "plugin")
        raise RuntimeError("the payment's transaction fails")
    assert not Invoice.objects.exists()
    order = buy(account, prices, billing_staff, "plugin")
    assert Invoice.objects.get(order=order).number == "INV-2026-000001"


def test_a_refund_gets_a_credit_note_split_by_where_the_money_went(prices, billing_staff):
    account = AccountFactory()
    order = buy(account, prices, billing_staff, "plugin", "storage")
    plugin, storage = order.lines.order_by("pk")
    services.refund_record(
        actor=billing_staff,
        account=account,
        method="credit",
        amounts={plugin.pk: Decimal("49")},
        reference="RR-2026-000001",
        key="k1",
    )
    payment = order.payments.get()
    services.refund_record(
        actor=billing_staff,
        account=account,
        method="original",
        payment=payment,
        amounts={storage.pk: Decimal("5")},
        reference="RR-2026-000002",
        key="k2",
    )
    first, second = CreditNote.objects.order_by("number")
    assert (
        first.number,
        first.invoice.order_id,
        first.total,
        first.credited_to_balance,
        first.refunded_to_card,
    ) == ("CN-2026-000001", order.pk, 49, 49, 0)
    assert (second.number, second.refunded_to_card, second.credited_to_balance) == (
        "CN-2026-000002",
        5,
        0,
    )
    services.refund_record(
        actor=billing_staff,
        account=account,
        method="credit",
        amounts={plugin.pk: Decimal("49")},
        reference="RR-2026-000001",
        key="k1",
    )
    assert CreditNote.objects.count() == 2  # a replay issues nothing


def test_the_pdfs_name_the_number_the_buyer_every_line_and_the_totals(prices, billing_staff):
    account = AccountFactory(name="Initech")
    order = buy(account, prices, billing_staff, "plugin", "storage")
    text = pdf_text(invoice_pdf(order.invoice))
    for words in (
        "INV-2026-000001",
        "Initech",
        "Plugin",
        "Storage",
        "69.00 USD",
        "WIRE-7",
        order.number,
    ):
        assert words in text, words
    line = order.lines.first()
    services.refund_record(
        actor=billing_staff,
        account=account,
        method="credit",
        amounts={line.pk: Decimal("49")},
        reference="RR-9",
        key="k9",
    )
    note_text = pdf_text(credit_note_pdf(CreditNote.objects.get()))
    for words in ("CN-2026-000001", "INV-2026-000001", "Initech", "49.00 USD", "RR-9"):
        assert words in note_text, words


def test_the_receipt_is_mailed_with_its_pdf_to_owners_and_billing_addresses(
    prices, billing_staff, django_capture_on_commit_callbacks
):
    account = AccountFactory()
    services.billing_details_update(
        actor=owner_of(account), account=account, data={"billing_emails": ["ap@acme.example"]}
    )
    with django_capture_on_commit_callbacks(execute=True):
        order = buy(account, prices, billing_staff, "plugin")
    receipts = [m for m in mail.outbox if "Receipt" in m.subject]
    assert sorted(m.to[0] for m in receipts) == sorted([owner_of(account).email, "ap@acme.example"])
    message = receipts[0]
    assert order.invoice.number in message.subject and order.number in message.body
    assert message.attachments[0][0] == f"{order.invoice.number}.pdf"
    assert message.alternatives and message.alternatives[0][1] == "text/html"


def test_the_api_lists_and_serves_documents_and_hides_other_accounts(
    prices, billing_staff, api_client
):
    account, other = AccountFactory(), AccountFactory()
    order = buy(account, prices, billing_staff, "plugin")
    number = order.invoice.number
    api_client.force_authenticate(owner_of(account))
    listed = api_client.get(f"/api/v1/accounts/{account.pk}/invoices/").json()
    assert listed["count"] == 1 and listed["results"][0]["number"] == number
    assert listed["results"][0]["status"] == "paid" and listed["results"][0]["total"] == "49.00"
    detail = api_client.get(f"/api/v1/accounts/{account.pk}/invoices/{number}/").json()
    assert detail["lines"][0]["description"] == order.lines.get().description
    pdf = api_client.get(f"/api/v1/accounts/{account.pk}/invoices/{number}/pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert api_client.get(f"/api/v1/accounts/{account.pk}/credit-notes/").json()["count"] == 0
    api_client.force_authenticate(owner_of(other))
    assert api_client.get(f"/api/v1/accounts/{other.pk}/invoices/{number}/").status_code == 404
    assert api_client.get(f"/api/v1/accounts/{other.pk}/invoices/{number}/pdf").status_code == 404
    assert api_client.get(f"/api/v1/accounts/{account.pk}/invoices/").status_code == 404


def test_the_billing_page_lists_documents_and_downloads_them(prices, billing_staff):
    account = AccountFactory()
    order = buy(account, prices, billing_staff, "plugin")
    client = Client()
    client.force_login(owner_of(account))
    client.get("/")
    page = client.get("/settings/billing/invoices/").text
    assert f"Invoice {order.invoice.number}" in page and "Edit billing details" in page
    pdf = client.get(f"/settings/billing/invoices/{order.invoice.number}.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    stranger = Client()
    stranger.force_login(owner_of(AccountFactory()))
    stranger.get("/")
    assert stranger.get(f"/settings/billing/invoices/{order.invoice.number}.pdf").status_code == 404


@pytest.mark.parametrize(
    ("country", "tax_id", "stored"),
    [
        ("DE", "DE 136 695 976", "DE136695976"),
        ("DE", "136695976", "DE136695976"),
        ("US", "04-2103594", "042103594"),
    ],
)
def test_tax_ids_are_checked_for_their_country(country, tax_id, stored):
    account = AccountFactory()
    details = services.billing_details_update(
        actor=owner_of(account), account=account, data={"country": country, "tax_id": tax_id}
    )
    assert details.tax_id == stored
    assert AuditEvent.objects.filter(action="billing_details.changed").exists()


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"country": "DE", "tax_id": "DE136695975"}, "tax_id", "check digit"),
        ({"country": "FR", "tax_id": "12"}, "tax_id", "not a valid FR VAT number"),
        ({"country": "XX"}, "country", "not a country code"),
        ({"tax_id": "DE136695976"}, "country", "country"),
        ({"billing_emails": ["nope"]}, "billing_emails", "not an email"),
    ],
)
def test_bad_billing_details_are_refused_naming_the_field(data, field, words):
    account = AccountFactory()
    with pytest.raises(PortalError, match=words) as refused:
        services.billing_details_update(actor=owner_of(account), account=account, data=data)
    assert refused.value.field == field


def test_billing_details_by_the_api_and_the_page(api_client):
    account = AccountFactory()
    api_client.force_authenticate(owner_of(account))
    url = f"/api/v1/accounts/{account.pk}/billing-details/"
    bad = api_client.patch(url, {"country": "DE", "tax_id": "DE1"}, format="json")
    assert bad.status_code == 400 and "tax_id" in bad.json()
    ok = api_client.patch(
        url, {"legal_name": "Acme AG", "country": "de", "tax_id": "DE136695976"}, format="json"
    )
    assert ok.status_code == 200 and ok.json()["country"] == "DE"
    client = Client()
    client.force_login(owner_of(account))
    client.get("/")
    response = client.post(
        "/settings/billing/details/",
        {
            "account_id": account.pk,
            "legal_name": "Acme AG",
            "country": "DE",
            "tax_id": "DE136695976",
            "billing_emails": "ap@acme.example, cfo@acme.example",
        },
    )
    assert response.status_code == 302
    assert account.billing_details.billing_emails == ["ap@acme.example", "cfo@acme.example"]


def test_a_seat_decrease_credit_gets_a_credit_note(billing_staff):
    from datetime import date

    from billing.models import Subscription

    product = Product.objects.create(
        code="pro", name="Pro", kind="subscription", edition="professional"
    )
    price = Price.objects.create(
        product=product, currency="USD", amount=Decimal("30"), scheme="per_seat", interval="month"
    )
    account = AccountFactory(seats_paid=5)
    subscription, order = services.subscription_start(
        actor=owner_of(account),
        account=account,
        price=price,
        quantity=5,
        now=datetime(2026, 3, 1, 15, tzinfo=UTC),
    )
    services.payment_record_manual(
        actor=billing_staff, order=order, reference="W", now=datetime(2026, 3, 1, 15, tzinfo=UTC)
    )
    subscription.refresh_from_db()
    assert subscription.current_period_start == date(2026, 3, 1)
    services.subscription_change_seats(
        actor=owner_of(account),
        subscription=Subscription.objects.get(pk=subscription.pk),
        quantity=3,
        now=datetime(2026, 3, 16, 15, tzinfo=UTC),
    )
    note = CreditNote.objects.get()
    assert (
        note.invoice.order_id == order.pk
        and note.credited_to_balance > 0
        and note.refunded_to_card == 0
    )


def test_the_demo_has_invoices_and_refunds_with_their_credit_notes(settings, tmp_path):
    from django.core.management import call_command

    settings.DEBUG = True
    settings.MEDIA_ROOT = str(tmp_path)
    for command in (
        "demo_data",
        "demo_billing",
        "demo_refunds",
        "demo_marketplace",
        "demo_refunds",
    ):
        call_command(command)
    assert Invoice.objects.count() >= 4
    notes = {note.invoice.order.lines.get().product.code: note for note in CreditNote.objects.all()}
    assert sorted(notes) == ["aurius-plugin", "wordpress-portal"]
    paid, credited = notes["aurius-plugin"], notes["wordpress-portal"]
    assert paid.refunded_to_card == 49 and paid.credited_to_balance == 0
    assert credited.credited_to_balance == 295 and credited.refunded_to_card == 0


def test_staff_export_a_period_as_csv(prices, billing_staff, client):
    from django.urls import reverse

    from tests.accounts.test_hardening import staff_client

    account = AccountFactory(name="Acme")
    order = buy(account, prices, billing_staff, "plugin")
    services.refund_record(
        actor=billing_staff,
        account=account,
        method="credit",
        amounts={order.lines.get().pk: Decimal("10")},
        reference="RR-1",
        key="c",
    )
    staff_client(client, group="Billing reviewer")
    url = reverse("admin:billing_invoice_changelist")
    assert client.get(url + "?issued_at__year=2026").status_code == 200
    export = client.post(url, {"action": "export_csv", "_selected_action": [order.invoice.pk]})
    assert export["Content-Type"] == "text/csv; charset=utf-8"
    assert export["Content-Disposition"] == 'attachment; filename="invoices.csv"'
    assert export.content.decode() == (
        "number,date,buyer,buyer_tax_id,order,currency,subtotal,tax,total,paid_by_credit,"
        "paid_by_payment,method,reference\r\n"
        # The order's number follows its id, which PostgreSQL's sequence does not take back
        # between tests; the invoice and credit-note numbers are gap-free per year.
        f"INV-2026-000001,2026-03-02,Acme,,{order.number},USD,49.00,0.00,49.00,0.00,49.00,"
        "Payment recorded by our billing team,WIRE-7\r\n"
    )
    note = CreditNote.objects.get()
    notes = client.post(
        reverse("admin:billing_creditnote_changelist"),
        {"action": "export_csv", "_selected_action": [note.pk]},
    )
    assert notes["Content-Disposition"] == 'attachment; filename="credit-notes.csv"'
    issued_on = timezone.localtime(note.issued_at).date().isoformat()
    assert notes.content.decode() == (
        "number,date,buyer,invoice,currency,subtotal,tax,total,refunded_to_card,"
        "credited_to_balance,reference,reason\r\n"
        f"CN-2026-000001,{issued_on},Acme,INV-2026-000001,USD,10.00,0.00,10.00,0.00,10.00,"
        "RR-1,Refund RR-1\r\n"
    )


def test_a_staff_credit_tied_to_an_order_gets_a_credit_note(prices, billing_staff):
    from billing.money import Money

    account = AccountFactory()
    order = buy(account, prices, billing_staff, "plugin")
    with pytest.raises(PortalError, match="not a paid order"):
        services.ledger_adjust(
            actor=billing_staff,
            account=account,
            amount=Money(Decimal("5"), "USD"),
            reason="Goodwill",
            order_number="ORD-9999-000001",
        )
    services.ledger_adjust(
        actor=billing_staff,
        account=account,
        amount=Money(Decimal("5"), "USD"),
        reason="Overcharged a day",
        order_number=order.number,
    )
    note = CreditNote.objects.get()
    assert (note.invoice.order_id, note.credited_to_balance, note.reason) == (
        order.pk,
        5,
        "Overcharged a day",
    )
    services.ledger_adjust(
        actor=billing_staff, account=account, amount=Money(Decimal("2"), "USD"), reason="Goodwill"
    )
    assert CreditNote.objects.count() == 1  # not tied to an order: no credit note
