"""Staff console: licences and support contracts, usage, credit uses, services accepted."""

from datetime import datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from billing import services
from billing import services as billing_services
from billing.models import Licence, Price, Product
from tests.accounts.test_hardening import staff_client
from tests.billing.helpers import UTC
from tests.factories import AccountFactory, owner_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_order():
    account = AccountFactory(name="Initech")
    plugin = Product.objects.create(code="plug", name="Plugin", kind="plugin")
    service = Product.objects.create(code="mig", name="Migration", kind="service")
    items = [
        {
            "price": Price.objects.create(
                product=p, currency="USD", amount=Decimal(a), interval="one_off"
            ).pk
        }
        for p, a in ((plugin, "49"), (service, "450"))
    ]
    order = billing_services.purchase_place(
        actor=owner_of(account), account=account, items=items, now=datetime(2026, 3, 2, tzinfo=UTC)
    )
    return order


def test_billing_reviewers_accept_services_and_revoke_keys(client, paid_order):
    reviewer = staff_client(client, group="Billing reviewer")
    services.payment_record_manual(actor=reviewer, order=paid_order, reference="BANK")
    response = client.post(
        reverse("admin:billing_order_changelist"),
        {"action": "accept_services", "_selected_action": [paid_order.pk]},
    )
    assert response.status_code == 302
    assert paid_order.lines.get(kind="service").delivery == "accepted"

    licences_page = client.get(reverse("admin:billing_licence_changelist") + "?q=Initech")
    assert licences_page.status_code == 200 and "Initech" in licences_page.text
    licence = Licence.objects.get()
    client.post(
        reverse("admin:billing_licence_changelist"),
        {"action": "revoke", "_selected_action": [licence.pk]},
    )
    licence.refresh_from_db()
    assert licence.status == "revoked"
    assert AuditEvent.objects.filter(action="licence.revoked", actor=reviewer).exists()
    for name in ("usagerecord", "credituse", "subscription"):
        assert client.get(reverse(f"admin:billing_{name}_changelist")).status_code == 200


def test_support_agents_see_licences_but_cannot_revoke(client, paid_order, billing_staff):
    services.payment_record_manual(actor=billing_staff, order=paid_order, reference="BANK")
    licence = Licence.objects.get()
    staff_client(client, group="Support agent")
    page = client.get(reverse("admin:billing_licence_changelist"))
    assert page.status_code == 200 and "Initech" in page.text
    client.post(
        reverse("admin:billing_licence_changelist"),
        {"action": "revoke", "_selected_action": [licence.pk]},
    )
    licence.refresh_from_db()
    assert licence.status == "active"
