"""Tax from the buyer's billing country at the order's time: rates by country and region,
EU reverse charge with a valid VAT ID, refunds and credit notes giving the tax back in
proportion, to the cent. With no rate configured nothing changes."""

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pypdf import PdfReader

from billing import services
from billing.models import CreditNote, Invoice, Price, Product, Subscription, TaxRate
from billing.pdf import invoice_pdf
from tests.factories import AccountFactory, owner_of

pytestmark = pytest.mark.django_db
WHEN = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def plugin():
    product = Product.objects.create(code="plugin", name="Plugin", kind="plugin")
    return Price.objects.create(
        product=product, currency="USD", amount=Decimal("49.99"), interval="one_off"
    )


@pytest.fixture
def rates():
    TaxRate.objects.create(
        country="DE", name="VAT", rate=Decimal("16"), valid_from=date(2020, 7, 1)
    )
    TaxRate.objects.create(
        country="DE", name="VAT", rate=Decimal("19"), valid_from=date(2021, 1, 1)
    )
    TaxRate.objects.create(country="CA", name="GST", rate=Decimal("5"), valid_from=date(2020, 1, 1))
    TaxRate.objects.create(
        country="CA", region="ON", name="HST", rate=Decimal("13"), valid_from=date(2020, 1, 1)
    )


def account_in(country, region="", tax_id=""):
    account = AccountFactory()
    data = {"country": country, "region": region}
    if tax_id:
        data["tax_id"] = tax_id
    services.billing_details_update(actor=owner_of(account), account=account, data=data)
    return account


def buy(account, price, staff):
    quote = services.purchase_quote(account=account, items=[{"price": price.pk}], today=WHEN.date())
    order = services.purchase_place(
        actor=owner_of(account), account=account, items=[{"price": price.pk}], now=WHEN
    )
    services.payment_record_manual(actor=staff, order=order, reference="W", now=WHEN)
    order.refresh_from_db()
    return quote, order


@pytest.mark.parametrize(
    ("country", "region", "tax", "name"),
    [
        ("DE", "", "9.50", "VAT 19%"),
        ("CA", "ON", "6.50", "HST 13%"),
        ("CA", "QC", "2.50", "GST 5%"),
        ("US", "", "0.00", ""),
    ],
)
def test_the_rate_of_the_buyers_country_and_region_on_the_day(
    rates, plugin, billing_staff, country, region, tax, name
):
    account = account_in(country, region)
    quote, order = buy(account, plugin, billing_staff)
    line = order.lines.get()
    assert line.tax_amount == Decimal(tax) and line.tax_name == name
    assert order.total == Decimal("49.99") + Decimal(tax)  # charged with the order
    assert quote.tax.amount == Decimal(tax) and quote.total_with_tax == quote.total + quote.tax
    if name:
        assert f"Plus {name}: ${tax}," in " ".join(quote.notes)  # shown in the preview
    invoice = Invoice.objects.get(order=order)
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        Decimal("49.99"),
        Decimal(tax),
        order.total,
    )


def test_reverse_charge_needs_a_valid_vat_id_in_another_eu_country(
    rates, plugin, billing_staff, settings
):
    settings.VENDOR_COUNTRY = "FR"
    business = account_in("DE", tax_id="DE136695976")
    _, order = buy(business, plugin, billing_staff)
    line = order.lines.get()
    assert (line.tax_amount, line.tax_name) == (0, "Reverse charge")
    text = " ".join(
        p.extract_text() for p in PdfReader(io.BytesIO(invoice_pdf(order.invoice))).pages
    )
    assert "Reverse charge" in text and "Article 196" in text
    consumer = account_in("DE")  # no VAT ID (an invalid one is refused and not stored)
    _, order = buy(consumer, plugin, billing_staff)
    assert order.lines.get().tax_amount == Decimal("9.50")
    settings.VENDOR_COUNTRY = "DE"
    domestic = account_in("DE", tax_id="DE136695976")  # same country as the vendor: taxed
    _, order = buy(domestic, plugin, billing_staff)
    assert order.lines.get().tax_amount == Decimal("9.50")


def test_a_refund_gives_the_tax_back_in_proportion_to_the_cent(rates, plugin, billing_staff):
    account = account_in("DE")
    _, order = buy(account, plugin, billing_staff)
    line = order.lines.get()  # 49.99 + 9.50 VAT = 59.49
    services.refund_record(
        actor=billing_staff,
        account=account,
        method="credit",
        amounts={line.pk: Decimal("20.00")},
        reference="RR-1",
        key="a",
    )
    note = CreditNote.objects.get()
    assert note.tax_total == Decimal("3.19")  # 20.00 x 9.50 / 59.49 = 3.1938...
    assert note.subtotal == Decimal("16.81") and note.total == Decimal("20.00")
    services.refund_record(
        actor=billing_staff,
        account=account,
        method="credit",
        amounts={line.pk: Decimal("39.49")},
        reference="RR-2",
        key="b",
    )
    assert sum(n.total for n in CreditNote.objects.all()) == Decimal("59.49")  # all that was paid


def test_no_rate_configured_changes_nothing(plugin, billing_staff):
    account = account_in("DE")
    quote, order = buy(account, plugin, billing_staff)
    assert order.total == Decimal("49.99") and order.lines.get().tax_amount == 0
    assert quote.tax.amount == 0 and not quote.tax_name


def test_seat_previews_show_the_tax_and_a_decrease_credits_it_back(rates, billing_staff):
    product = Product.objects.create(
        code="pro", name="Pro", kind="subscription", edition="professional"
    )
    price = Price.objects.create(
        product=product, currency="USD", amount=Decimal("31"), scheme="per_seat", interval="month"
    )
    account = account_in("DE")
    start = datetime(2026, 3, 1, 15, tzinfo=UTC)
    subscription, order = services.subscription_start(
        actor=owner_of(account), account=account, price=price, quantity=4, now=start
    )
    services.payment_record_manual(actor=billing_staff, order=order, reference="W", now=start)
    order.refresh_from_db()
    assert order.total == Decimal("147.56")  # 124.00 + 19% VAT
    subscription = Subscription.objects.get(pk=subscription.pk)
    up = services.subscription_seat_quote(
        subscription=subscription, quantity=5, today=date(2026, 3, 17)
    )
    assert up.tax is not None and "Plus VAT 19%" in up.explain()
    down = services.subscription_seat_quote(
        subscription=subscription, quantity=3, today=date(2026, 3, 17)
    )
    services.subscription_change_seats(
        actor=owner_of(account),
        subscription=subscription,
        quantity=3,
        now=datetime(2026, 3, 17, 15, tzinfo=UTC),
    )
    note = CreditNote.objects.get()
    assert note.total == down.total.amount == down.amount.amount + down.tax.amount
    assert note.tax_total > 0
