"""The Stripe gateway, its webhooks and the card on file, against localstripe.

The `stripe_on` fixture (tests/stripe_fixtures.py) starts localstripe on loopback
and points the portal's Stripe settings at it.
"""

import hashlib
import hmac
import json
import time
import urllib.request
from base64 import b64encode
from decimal import Decimal

import pytest
import stripe
from django.contrib.auth.models import Group
from django.urls import reverse
from djstripe.models import Event, WebhookEventTrigger

from accounts.models import AuditEvent
from billing import payment_methods, selectors, services
from billing.gateways.stripe import NO_CARD, StripeGateway, minor_units
from billing.models import LedgerEntry, Payment, Price
from billing.money import Money, MoneyError
from tests.billing.helpers import NOW, usd
from tests.factories import AccountFactory, MembershipFactory, UserFactory, owner_of
from tests.stripe_fixtures import SECRET_KEY, WEBHOOK_SECRET

VISA = "4242424242424242"
DECLINED_ON_CHARGE = "4000000000000341"  # attaches, then every charge is declined
NEEDS_AUTHENTICATION = "4000002500003155"


@pytest.fixture
def staff():
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Billing reviewer"))
    return user


def give_card(account, number=VISA):
    """What the Payment method page does, with localstripe standing in for Stripe.js."""
    owner = owner_of(account)
    intent = payment_methods.card_setup_start(actor=owner, account=account)
    confirmed = stripe.SetupIntent.confirm(
        intent.id,
        payment_method_data={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        },
        api_key=SECRET_KEY,
    )
    if confirmed.status == "requires_action":  # the customer passes 3-D Secure
        stripe.SetupIntent.confirm(intent.id, api_key=SECRET_KEY)
    return payment_methods.card_set_default(actor=owner, account=account, setup_intent_id=intent.id)


def add_seats(account, subscription, quantity, *, execute, callbacks):
    with callbacks(execute=execute):
        _, _, order = services.subscription_change_seats(
            actor=owner_of(account), subscription=subscription, quantity=quantity, now=NOW
        )
    return order


def stripe_json(localstripe_url, path):
    """An object as Stripe's API serves it (the body a webhook carries)."""
    request = urllib.request.Request(  # noqa: S310
        f"{localstripe_url}/v1/{path}",
        headers={"Authorization": "Basic " + b64encode(f"{SECRET_KEY}:".encode()).decode()},
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return json.loads(response.read())


def signed_event(obj, event_type, *, event_id="evt_portal_1", secret=WEBHOOK_SECRET):
    payload = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": stripe.api_version,
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
            "data": {"object": obj},
        }
    )
    timestamp = int(time.time())
    signature = hmac.new(
        secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()
    return payload, f"t={timestamp},v1={signature}"


def post_webhook(client, payload, signature):
    return client.post(
        reverse("stripe_webhook"),
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature,
    )


def charge_at_stripe(payment):
    """The gateway's call alone: the money is taken, the portal not yet told."""
    result = StripeGateway().charge(
        account=payment.account,
        amount=Money(payment.amount, payment.currency),
        idempotency_key=payment.idempotency_key,
        description=payment.order.number,
        payment_id=payment.pk,
    )
    assert result.status == "succeeded", result
    return result.reference


# --- minor units ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "units"),
    [
        ("33.33", "USD", 3333),
        ("44.0000", "USD", 4400),
        ("0.01", "EUR", 1),
        ("1234567.89", "GBP", 123456789),
        ("1000", "JPY", 1000),
        ("250000.0000", "VND", 250000),
    ],
)
def test_amounts_go_to_stripe_in_exact_minor_units(amount, currency, units):
    assert minor_units(Money(Decimal(amount), currency)) == units


@pytest.mark.parametrize(("amount", "currency"), [("33.335", "USD"), ("1000.5", "JPY")])
def test_an_amount_finer_than_the_minor_unit_is_refused_not_rounded(amount, currency):
    with pytest.raises(MoneyError, match="finer than its minor unit"):
        minor_units(Money(Decimal(amount), currency))


# --- charges ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_payment_charges_the_card_on_file_in_minor_units(
    stripe_on, account, subscription, django_capture_on_commit_callbacks
):
    give_card(account)
    # 46.97 x 1 seat x 22/31 days = 33.3335..., rounded once: 33.33.
    Price.objects.filter(pk=subscription.price_id).update(amount=Decimal("46.97"))
    order = add_seats(
        account, subscription, 4, execute=True, callbacks=django_capture_on_commit_callbacks
    )
    payment = Payment.objects.get(order=order)
    assert payment.gateway == "stripe" and payment.amount == Decimal("33.33")
    assert payment.status == "succeeded" and payment.reference.startswith("pi_")
    intent = stripe.PaymentIntent.retrieve(payment.reference, api_key=SECRET_KEY)
    assert (intent.amount, intent.currency, intent.status) == (3333, "usd", "succeeded")
    assert intent.metadata["payment_id"] == str(payment.pk)
    assert intent.metadata["order"] == order.number
    order.refresh_from_db()
    subscription.refresh_from_db()
    account.refresh_from_db()
    assert order.status == "paid" and subscription.quantity == 4 and account.seats_paid == 4


@pytest.mark.django_db
def test_a_declined_card_fails_the_payment_and_grants_nothing(
    stripe_on, account, subscription, django_capture_on_commit_callbacks
):
    give_card(account, DECLINED_ON_CHARGE)
    order = add_seats(
        account, subscription, 5, execute=True, callbacks=django_capture_on_commit_callbacks
    )
    payment = Payment.objects.get(order=order)
    assert payment.status == "failed" and payment.failure_message == "Your card was declined."
    assert AuditEvent.objects.filter(action="payment.failed", object_id=str(payment.pk)).exists()
    order.refresh_from_db()
    subscription.refresh_from_db()
    assert order.status == "awaiting_payment" and subscription.quantity == 3


@pytest.mark.django_db
def test_a_card_that_needs_authentication_leaves_the_payment_pending(
    stripe_on, account, subscription, django_capture_on_commit_callbacks
):
    give_card(account, NEEDS_AUTHENTICATION)
    order = add_seats(
        account, subscription, 5, execute=True, callbacks=django_capture_on_commit_callbacks
    )
    payment = Payment.objects.get(order=order)
    assert payment.status == "pending"
    order.refresh_from_db()
    assert order.status == "awaiting_payment"


@pytest.mark.django_db
def test_no_card_on_file_fails_with_a_message_to_add_one(
    stripe_on, account, subscription, django_capture_on_commit_callbacks
):
    order = add_seats(
        account, subscription, 5, execute=True, callbacks=django_capture_on_commit_callbacks
    )
    payment = Payment.objects.get(order=order)
    assert payment.status == "failed" and payment.failure_message == NO_CARD
    assert "add one on the Billing page" in NO_CARD
    # A customer that started a set-up but never finished it has no card either.
    payment_methods.card_setup_start(actor=owner_of(account), account=account)
    result = StripeGateway().charge(
        account=account, amount=usd("10.00"), idempotency_key="k-none", description="ORD-X"
    )
    assert (result.status, result.message) == ("failed", NO_CARD)


@pytest.mark.django_db
def test_a_network_error_raises_so_the_job_retries_with_the_same_key(
    stripe_on, account, subscription, monkeypatch, django_capture_on_commit_callbacks
):
    give_card(account)
    order = add_seats(
        account, subscription, 5, execute=False, callbacks=django_capture_on_commit_callbacks
    )
    payment = Payment.objects.get(order=order)
    keys = []

    def unreachable(**kwargs):
        keys.append(kwargs["idempotency_key"])
        raise stripe.APIConnectionError("Stripe is unreachable")

    monkeypatch.setattr(stripe.PaymentIntent, "create", unreachable)
    for _ in range(2):
        with pytest.raises(stripe.APIConnectionError):
            services.payment_request(payment_id=payment.pk)
    assert keys == [payment.idempotency_key] * 2
    payment.refresh_from_db()
    assert payment.status == "pending"


# --- webhooks ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_webhook_replayed_twice_pays_the_order_once(
    stripe_on, account, subscription, client, django_capture_on_commit_callbacks
):
    give_card(account)
    order = add_seats(
        account, subscription, 5, execute=False, callbacks=django_capture_on_commit_callbacks
    )
    payment = Payment.objects.get(order=order)
    reference = charge_at_stripe(payment)
    payload, signature = signed_event(
        stripe_json(stripe_on, f"payment_intents/{reference}"), "payment_intent.succeeded"
    )
    ledger_before = LedgerEntry.objects.count()

    response = post_webhook(client, payload, signature)
    assert response.status_code == 200, response.content
    payment.refresh_from_db()
    order.refresh_from_db()
    subscription.refresh_from_db()
    assert payment.status == "succeeded" and payment.reference == reference
    assert order.status == "paid" and subscription.quantity == 5
    counts = (
        LedgerEntry.objects.count(),
        AuditEvent.objects.filter(action="order.paid").count(),
        AuditEvent.objects.count(),
    )
    assert counts[:2] == (ledger_before, 1)

    response = post_webhook(client, payload, signature)
    assert response.status_code == 200, response.content
    payment.refresh_from_db()
    subscription.refresh_from_db()
    assert payment.status == "succeeded" and subscription.quantity == 5
    assert (
        LedgerEntry.objects.count(),
        AuditEvent.objects.filter(action="order.paid").count(),
        AuditEvent.objects.count(),
    ) == counts
    assert Event.objects.filter(id="evt_portal_1").count() == 1
    assert WebhookEventTrigger.objects.filter(valid=True).count() == 2


@pytest.mark.django_db
def test_a_payment_failed_webhook_fails_a_pending_payment(
    stripe_on, account, subscription, client, django_capture_on_commit_callbacks
):
    give_card(account)
    order = add_seats(
        account, subscription, 5, execute=False, callbacks=django_capture_on_commit_callbacks
    )
    payment = Payment.objects.get(order=order)
    intent = stripe_json(stripe_on, f"payment_intents/{charge_at_stripe(payment)}")
    intent["status"] = "requires_payment_method"
    intent["last_payment_error"] = {"code": "card_declined", "message": "Insufficient funds."}
    response = post_webhook(client, *signed_event(intent, "payment_intent.payment_failed"))
    assert response.status_code == 200, response.content
    payment.refresh_from_db()
    assert payment.status == "failed" and payment.failure_message == "Insufficient funds."


@pytest.mark.django_db
@pytest.mark.parametrize("signature", ["bad", "wrong secret", "none"])
def test_a_webhook_with_a_bad_signature_is_refused_and_nothing_is_stored(
    stripe_on, account, subscription, client, django_capture_on_commit_callbacks, signature
):
    give_card(account)
    order = add_seats(
        account, subscription, 5, execute=False, callbacks=django_capture_on_commit_callbacks
    )
    payment = Payment.objects.get(order=order)
    intent = stripe_json(stripe_on, f"payment_intents/{charge_at_stripe(payment)}")
    payload, header = signed_event(
        intent,
        "payment_intent.succeeded",
        secret="whsec_someone_else" if signature == "wrong secret" else WEBHOOK_SECRET,
    )
    if signature == "bad":
        header = header[:-4] + "0000"
    if signature == "none":
        response = client.post(reverse("stripe_webhook"), payload, "application/json")
    else:
        response = post_webhook(client, payload, header)
    assert response.status_code == 400
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == "pending" and order.status == "awaiting_payment"
    assert not WebhookEventTrigger.objects.exists() and not Event.objects.exists()


@pytest.mark.django_db
def test_the_webhook_is_not_found_without_a_secret(client, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    response = client.post(reverse("stripe_webhook"), "{}", "application/json")
    assert response.status_code == 404


# --- paid twice -------------------------------------------------------------------------


@pytest.mark.django_db
def test_stripe_paying_an_order_staff_already_recorded_is_held_as_credit(
    stripe_on, account, subscription, client, staff, django_capture_on_commit_callbacks
):
    give_card(account)
    order = add_seats(
        account, subscription, 5, execute=False, callbacks=django_capture_on_commit_callbacks
    )
    payment = Payment.objects.get(order=order)
    reference = charge_at_stripe(payment)  # the charge went out...
    manual = services.payment_record_manual(actor=staff, order=order, reference="BANK-1")
    assert manual.pk != payment.pk and manual.gateway == "manual"  # ...staff recorded a transfer

    response = post_webhook(
        client,
        *signed_event(
            stripe_json(stripe_on, f"payment_intents/{reference}"), "payment_intent.succeeded"
        ),
    )
    assert response.status_code == 200, response.content
    payment.refresh_from_db()
    assert payment.status == "duplicate" and payment.reference == reference
    assert payment.get_status_display() == "Paid twice: held as credit"
    entry = LedgerEntry.objects.get(account=account, kind="duplicate_payment")
    assert entry.amount == Decimal("44.00") and entry.reference == reference
    assert selectors.ledger_balance(account=account, currency="USD") == usd("44.00")
    assert AuditEvent.objects.filter(action="payment.duplicate").count() == 1
    assert AuditEvent.objects.filter(action="order.paid").count() == 1
    subscription.refresh_from_db()
    assert subscription.quantity == 5  # the seats were bought once
    assert Payment.objects.filter(order=order, status="succeeded").get() == manual

    # Replayed, it changes nothing more.
    services.payment_succeeded(payment=payment, reference=reference, actor=None)
    assert LedgerEntry.objects.filter(kind="duplicate_payment").count() == 1


@pytest.mark.django_db
def test_the_job_charges_nothing_once_the_order_was_paid_another_way(
    stripe_on, account, subscription, staff, monkeypatch, django_capture_on_commit_callbacks
):
    give_card(account)
    order = add_seats(
        account, subscription, 5, execute=False, callbacks=django_capture_on_commit_callbacks
    )
    payment = Payment.objects.get(order=order)
    services.payment_record_manual(actor=staff, order=order, reference="BANK-2")
    calls = []
    monkeypatch.setattr(stripe.PaymentIntent, "create", lambda **kwargs: calls.append(kwargs))
    services.payment_request(payment_id=payment.pk)
    payment.refresh_from_db()
    assert payment.status == "failed" and "nothing was charged" in payment.failure_message
    assert calls == []


# --- the card on file -------------------------------------------------------------------


@pytest.mark.django_db
def test_the_billing_page_shows_the_card_and_the_card_page_replaces_it(stripe_on, account, client):
    owner = owner_of(account)
    client.force_login(owner)
    page = client.get(reverse("settings_billing")).content.decode()
    assert "No card is on file" in page and "Add or replace card" in page

    give_card(account)
    page = client.get(reverse("settings_billing")).content.decode()
    assert "ending in <strong>4242</strong>, expires 12/2031" in page

    response = client.get(reverse("billing_payment_method"))
    assert response.status_code == 200
    body = response.content.decode()
    assert f'src="{stripe_on}/js.stripe.com/v3/"' in body and "_secret_" in body
    # The browser confirmed the SetupIntent with another card; the page posts its id.
    intent_id = response.context["client_secret"].split("_secret_")[0]
    stripe.SetupIntent.confirm(
        intent_id,
        payment_method_data={
            "type": "card",
            "card": {"number": "5555555555554444", "exp_month": 3, "exp_year": 2030, "cvc": "123"},
        },
        api_key=SECRET_KEY,
    )
    response = client.post(
        reverse("billing_payment_method"),
        {"setup_intent": intent_id, "account_id": account.pk},
    )
    assert response.status_code == 302
    card = payment_methods.card_on_file(account=account)
    assert (card.last4, card.exp_month, card.exp_year) == ("4444", 3, 2030)
    assert AuditEvent.objects.filter(action="payment_method.set_default").count() == 2


@pytest.mark.django_db
def test_a_set_up_of_another_account_is_refused(stripe_on, account, client):
    other = AccountFactory()
    intent = payment_methods.card_setup_start(actor=owner_of(other), account=other)
    payment_methods.card_setup_start(actor=owner_of(account), account=account)
    client.force_login(owner_of(account))
    response = client.post(
        reverse("billing_payment_method"), {"setup_intent": intent.id}, follow=True
    )
    assert "That card was not set up" in response.content.decode()
    assert payment_methods.card_on_file(account=account) is None


@pytest.mark.django_db
def test_members_cannot_open_the_card_page(stripe_on, account, client):
    member = MembershipFactory(account=account, role="member").user
    client.force_login(member)
    assert client.get(reverse("billing_payment_method")).status_code == 403


@pytest.mark.django_db
def test_no_payment_method_section_with_the_manual_gateway(account, client, settings):
    settings.BILLING_GATEWAY = "manual"
    client.force_login(owner_of(account))
    page = client.get(reverse("settings_billing")).content.decode()
    assert "Payment method" not in page and "Add or replace card" not in page
    assert 'data-testid="payment-by-transfer"' in page and "nothing is paid in the portal" in page
    assert client.get(reverse("billing_payment_method")).status_code == 404
