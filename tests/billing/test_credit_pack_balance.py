"""The stored credit-pack balance (CreditPackBalance) that Credits & usage and the API
read: after each kind of change to a pack's units (bought and paid, used, taken back by a
refund) it equals the sum over the account's paid packs, and the data migration fills
it with that sum. tests/refunds/test_money_properties.py checks the same after every
step of its random sequences."""

import importlib
from decimal import Decimal

import pytest
from django.apps import apps

from billing import selectors as billing_selectors
from billing import services as billing_services
from billing.models import CreditPackBalance, OrderLine
from billing.services.credit_balance import credit_balance_recount
from tests.billing.test_purchases import _buy, _product
from tests.factories import owner_of

pytestmark = pytest.mark.django_db


def stored(account):
    return [
        (row.product.code, row.units, row.used, row.refunded, row.left)
        for row in billing_selectors.credits_left(account=account)
    ]


def summed(account):
    """The balance recounted from the lines, as the page computed it before it was stored."""
    kept = list(CreditPackBalance.objects.filter(account=account).values_list())
    credit_balance_recount(account.pk)
    recounted = stored(account)
    CreditPackBalance.objects.filter(account=account).delete()
    CreditPackBalance.objects.bulk_create(CreditPackBalance(*values) for values in kept)
    return recounted


@pytest.fixture
def packs():
    return {
        "sms": _product("sms-credits", "credit_pack", "100", units=1000),
        "mail": _product("mail-credits", "credit_pack", "30", units=500),
    }


def test_the_stored_balance_follows_every_change_of_the_packs(account, packs, billing_staff):
    owner = owner_of(account)
    order = _buy(account, [{"price": packs["sms"].pk, "quantity": 2}])
    # Placed, not paid: nothing to use yet.
    assert stored(account) == summed(account) == []

    billing_services.payment_record_manual(actor=billing_staff, order=order, reference="B1")
    assert stored(account) == summed(account) == [("sms-credits", 2000, 0, 0, 2000)]

    second = _buy(account, [{"price": packs["sms"].pk}, {"price": packs["mail"].pk}])
    billing_services.payment_record_manual(actor=billing_staff, order=second, reference="B2")
    assert stored(account) == summed(account)
    assert stored(account) == [("sms-credits", 3000, 0, 0, 3000), ("mail-credits", 500, 0, 0, 500)]

    sms = packs["sms"].product
    billing_services.credits_use(
        actor=owner, account=account, product=sms, units=2100, reference="run-1"
    )
    # The same reference again uses nothing more.
    billing_services.credits_use(
        actor=owner, account=account, product=sms, units=2100, reference="run-1"
    )
    assert stored(account) == summed(account)
    assert stored(account)[0] == ("sms-credits", 3000, 2100, 0, 900)

    # A refund agreed on the newer pack takes its unused units out of use at once.
    newer = OrderLine.objects.filter(order=second, product=sms).get()
    billing_services.refund_hold_units(
        actor=billing_staff,
        account=account,
        amounts={newer.pk: Decimal("50.00")},
        reference="RR-1",
    )
    assert stored(account) == summed(account)
    assert stored(account)[0] == ("sms-credits", 3000, 2100, 500, 400)

    # Recorded and taken back: the whole price came back, so the rest of its units too.
    billing_services.refund_record(
        actor=billing_staff,
        account=account,
        method="credit",
        amounts={newer.pk: newer.amount},
        reference="RR-1",
        key="rr-1",
    )
    billing_services.refund_take_back(
        actor=billing_staff, account=account, line_ids=[newer.pk], reference="RR-1"
    )
    newer.refresh_from_db()
    assert newer.units_left == 0
    assert stored(account) == summed(account)
    assert stored(account)[0][4] == 3000 - 2100 - newer.units_refunded - 0


def test_the_migration_fills_the_balance_from_the_paid_packs(account, packs, billing_staff):
    order = _buy(account, [{"price": packs["sms"].pk}, {"price": packs["mail"].pk}])
    billing_services.payment_record_manual(actor=billing_staff, order=order, reference="B1")
    _buy(account, [{"price": packs["sms"].pk}])  # unpaid: not counted
    billing_services.credits_use(
        actor=owner_of(account),
        account=account,
        product=packs["mail"].product,
        units=7,
        reference="r",
    )
    expected = stored(account)
    CreditPackBalance.objects.all().delete()
    migration = importlib.import_module("billing.migrations.0020_credit_pack_balance_filled")
    migration.fill(apps, None)
    assert (
        stored(account)
        == expected
        == [
            ("sms-credits", 1000, 0, 0, 1000),
            ("mail-credits", 500, 7, 0, 493),
        ]
    )
