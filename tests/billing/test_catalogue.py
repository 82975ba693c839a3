from decimal import Decimal

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.urls import reverse

from accounts.models import AuditEvent
from billing.catalogue import price_terms_refusal
from billing.models import Price, Product
from tests.factories import UserFactory


@pytest.mark.parametrize(
    ("kind", "edition", "interval", "scheme", "amount", "refused"),
    [
        ("subscription", "professional", "month", "per_seat", "29", None),
        ("subscription", "professional", "one_off", "flat", "29", "monthly or yearly"),
        ("support_contract", "", "year", "per_seat", "60", None),
        ("usage", "", "month", "flat", "0.04", None),
        ("usage", "", "one_off", "flat", "0.04", "billed monthly"),
        ("credit_pack", "", "one_off", "flat", "100", None),
        ("credit_pack", "", "month", "flat", "100", "paid once"),
        ("plugin", "", "one_off", "per_seat", "49", "priced per seat"),
        ("perpetual_license", "professional", "one_off", "per_seat", "195", None),
        ("perpetual_license", "startup", "one_off", "flat", "10", "free download"),
        ("perpetual_license", "startup", "one_off", "flat", "0", None),
    ],
)
def test_price_terms_fit_the_kind(kind, edition, interval, scheme, amount, refused):
    refusal = price_terms_refusal(
        kind=kind, edition=edition, interval=interval, scheme=scheme, amount=amount
    )
    assert (refusal is None) if refused is None else (refused in refusal)


@pytest.mark.django_db
class TestCatalogue:
    def test_database_keeps_units_to_credit_packs(self):
        with pytest.raises(IntegrityError), transaction.atomic():
            Product.objects.create(code="pack", name="Pack", kind="credit_pack")
        with pytest.raises(IntegrityError), transaction.atomic():
            Product.objects.create(code="plug", name="Plug", kind="plugin", units=5)
        Product.objects.create(code="pack", name="Pack", kind="credit_pack", units=1000)

    def test_database_keeps_editions_to_plans_and_licences(self):
        with pytest.raises(IntegrityError), transaction.atomic():
            Product.objects.create(code="x", name="X", kind="plugin", edition="enterprise")

    def test_one_active_price_per_terms_and_never_negative(self):
        product = Product.objects.create(code="p", name="P", kind="plugin")
        Price.objects.create(
            product=product, currency="USD", amount=Decimal("1"), interval="one_off"
        )
        with pytest.raises(IntegrityError), transaction.atomic():
            Price.objects.create(
                product=product, currency="USD", amount=Decimal("2"), interval="one_off"
            )
        with pytest.raises(IntegrityError), transaction.atomic():
            Price.objects.create(
                product=product, currency="EUR", amount=Decimal("-1"), interval="one_off"
            )

    @override_settings(DEBUG=True)
    def test_demo_billing_has_every_kind_and_loads_twice(self):
        call_command("demo_billing")
        count = Price.objects.count()
        call_command("demo_billing")
        assert Price.objects.count() == count
        # App kinds are the marketplace's products (demo_marketplace sells them).
        kinds = set(Product.Kind.values) - Product.APP_KINDS
        assert set(Product.objects.values_list("kind", flat=True)) == kinds


@pytest.mark.django_db
def test_staff_edit_the_catalogue_with_the_rules_and_an_audit(client):
    staff = UserFactory(is_staff=True)
    staff.groups.add(Group.objects.get(name="Administrator"))
    Authenticator.objects.create(user=staff, type=Authenticator.Type.TOTP, data={"s": 1})
    client.force_login(staff)
    form = {
        "name": "Aurius AI",
        "code": "aurius",
        "description": "",
        "kind": "plugin",
        "edition": "",
        "deployment": "any",
        "units": "",
        "is_active": "on",
        "prices-TOTAL_FORMS": "1",
        "prices-INITIAL_FORMS": "0",
        "prices-MIN_NUM_FORMS": "0",
        "prices-MAX_NUM_FORMS": "1000",
        "prices-0-currency": "USD",
        "prices-0-amount": "49",
        "prices-0-scheme": "flat",
        "prices-0-interval": "month",
        "prices-0-is_active": "on",
    }
    response = client.post(reverse("admin:billing_product_add"), form)
    assert response.status_code == 200
    assert "paid once" in response.content.decode()
    assert not Product.objects.exists()
    response = client.post(
        reverse("admin:billing_product_add"), {**form, "prices-0-interval": "one_off"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    price = Price.objects.get()
    assert price.amount == Decimal("49") and price.product.code == "aurius"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"product.created_by_staff", "price.created_by_staff"} <= actions
