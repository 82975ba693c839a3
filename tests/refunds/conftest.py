from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing import purchases, services
from billing.models import Price, Product
from tests.factories import AccountFactory, owner_of

# Monday 2 March 2026, 10:00 in New York (the vendor's zone).
MONDAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _acelle(settings):
    settings.REFUND_POLICY = "acelle"
    settings.VENDOR_TIMEZONE = "America/New_York"
    settings.VENDOR_COUNTRY = "US"


@pytest.fixture
def catalogue():
    def price(code, kind, amount, **extra):
        product = Product.objects.create(code=code, name=code.title(), kind=kind, **extra)
        return Price.objects.create(
            product=product, currency="USD", amount=Decimal(amount), interval="one_off"
        )

    return {
        "credits": price("credits", "credit_pack", "100", units=1000),
        "plugin": price("plugin", "plugin", "49"),
        "storage": price("storage", "quota_addon", "20"),
    }


@pytest.fixture
def paid_order(catalogue, billing_staff):
    """Acme bought credits and a plugin on Monday 2 March, paid by bank transfer."""

    def make(account=None, items=("credits", "plugin"), when=MONDAY):
        account = account or AccountFactory(name="Acme", timezone="America/New_York")
        order = purchases.purchase_place(
            actor=owner_of(account),
            account=account,
            items=[{"price": catalogue[name].pk} for name in items],
            now=when,
        )
        services.payment_record_manual(
            actor=billing_staff, order=order, reference="BANK-1", now=when
        )
        order.refresh_from_db()
        return account, order

    return make
