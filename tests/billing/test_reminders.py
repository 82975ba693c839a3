"""Reminder mails: each once whatever the number of runs, to the owners and billing
admins who did not turn it off; receipts and failed payments always go."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.test import Client

from accounts.selectors import REMINDER_MAILS
from accounts.services import user_set_mail_off
from billing import services
from billing.models import Price, Product, Subscription
from tests.factories import AccountFactory, MembershipFactory, owner_of

pytestmark = pytest.mark.django_db


def subscription(
    account, *, kind="subscription", interval="month", start, end, status="active", trial_end=None
):
    product = Product.objects.create(
        code=f"p-{kind}-{interval}", name=f"{kind.title()} plan", kind=kind
    )
    price = Price.objects.create(
        product=product, currency="USD", amount=Decimal("10"), scheme="per_seat", interval=interval
    )
    return Subscription.objects.create(
        account=account,
        price=price,
        quantity=1,
        status=status,
        current_period_start=start,
        current_period_end=end,
        trial_end=trial_end,
    )


def run(when, capture):
    with time_machine.travel(when, tick=False), capture(execute=True):
        return services.reminders_send_due()


def test_support_expiring_90_30_and_7_days_before_each_once(django_capture_on_commit_callbacks):
    account = AccountFactory(timezone="UTC")
    subscription(
        account,
        kind="support_contract",
        interval="year",
        start=date(2026, 1, 1),
        end=date(2027, 1, 1),
    )
    end = datetime(2027, 1, 1, 12, tzinfo=UTC)
    assert run(end - timedelta(days=91), django_capture_on_commit_callbacks) == 0
    for days in (90, 30, 7):
        assert run(end - timedelta(days=days), django_capture_on_commit_callbacks) == 1
        assert run(end - timedelta(days=days), django_capture_on_commit_callbacks) == 0
    subjects = [m.subject for m in mail.outbox]
    assert len(subjects) == 3 and all("ends on 31 December 2026" in s for s in subjects)
    assert "not renewed automatically: renew it on your Billing page" in mail.outbox[0].body


def test_trial_and_yearly_renewal_reminders(django_capture_on_commit_callbacks):
    account = AccountFactory(timezone="UTC")
    subscription(
        account,
        start=date(2026, 3, 1),
        end=date(2026, 3, 15),
        status="trialing",
        trial_end=date(2026, 3, 15),
    )
    other = AccountFactory(timezone="UTC")
    subscription(other, interval="year", start=date(2026, 1, 1), end=date(2027, 1, 1))
    assert (
        run(datetime(2026, 3, 11, 12, tzinfo=UTC), django_capture_on_commit_callbacks) == 1
    )  # 3 days before 14 March
    assert (
        run(datetime(2026, 3, 14, 12, tzinfo=UTC), django_capture_on_commit_callbacks) == 1
    )  # its last day
    assert (
        run(datetime(2026, 12, 2, 12, tzinfo=UTC), django_capture_on_commit_callbacks) == 1
    )  # 30 days before
    subjects = [m.subject for m in mail.outbox]
    assert (
        subjects[0].endswith("trial ends on 14 March 2026")
        and "renews on 1 January 2027" in subjects[2]
    )


def test_preferences_are_honoured_but_receipts_always_go(
    django_capture_on_commit_callbacks, billing_staff
):
    account = AccountFactory(timezone="UTC")
    admin = MembershipFactory(account=account, role="billing_admin").user
    user_set_mail_off(user=admin, kinds=["support_expiring"])
    subscription(
        account,
        kind="support_contract",
        interval="year",
        start=date(2026, 1, 1),
        end=date(2027, 1, 1),
    )
    run(datetime(2026, 10, 3, 12, tzinfo=UTC), django_capture_on_commit_callbacks)
    assert [m.to[0] for m in mail.outbox] == [owner_of(account).email]
    mail.outbox.clear()
    product = Product.objects.create(code="plug", name="Plug", kind="plugin")
    price = Price.objects.create(
        product=product, currency="USD", amount=Decimal("5"), interval="one_off"
    )
    user_set_mail_off(user=admin, kinds=list(REMINDER_MAILS))
    with django_capture_on_commit_callbacks(execute=True):
        order = services.purchase_place(
            actor=owner_of(account), account=account, items=[{"price": price.pk}]
        )
        services.payment_record_manual(actor=billing_staff, order=order, reference="W")
    assert admin.email in [m.to[0] for m in mail.outbox if "Receipt" in m.subject]


def test_profile_saves_the_preferences():
    account = AccountFactory()
    owner = owner_of(account)
    client = Client()
    client.force_login(owner)
    client.get("/")
    page = client.get("/settings/profile/").text
    assert "Billing mail" in page and 'value="card_expiring" checked' in page
    client.post("/settings/profile/mail/", {"mail": ["trial_ending", "usage_cap"]})
    owner.refresh_from_db()
    assert owner.mail_off == ["card_expiring", "renewal_coming", "support_expiring"]


def test_the_card_expiring_next_month_is_mailed_once(django_capture_on_commit_callbacks):
    from djstripe.models import Customer, PaymentMethod

    from billing import payment_methods

    account = AccountFactory(timezone="UTC")
    customer = Customer.objects.create(id="cus_test1", subscriber=account, livemode=False)
    # The card on file as card_set_default stores it: the sweep reads the stored card.
    customer.default_payment_method = PaymentMethod.objects.create(
        id="pm_test1",
        livemode=False,
        customer=customer,
        stripe_data={
            "type": "card",
            "card": {"brand": "visa", "last4": "4242", "exp_month": 4, "exp_year": 2026},
        },
    )
    customer.save()
    assert str(payment_methods.card_on_file(account=account)) == str(
        payment_methods.Card(brand="visa", last4="4242", exp_month=4, exp_year=2026)
    )
    assert (
        run(datetime(2026, 2, 20, 12, tzinfo=UTC), django_capture_on_commit_callbacks) == 0
    )  # April is 2 months off
    assert run(datetime(2026, 3, 1, 12, tzinfo=UTC), django_capture_on_commit_callbacks) == 1
    assert (
        run(datetime(2026, 3, 20, 12, tzinfo=UTC), django_capture_on_commit_callbacks) == 0
    )  # once
    (message,) = mail.outbox
    assert "expires at the end of April 2026" in message.subject and "4242" in message.body
