"""On-premise perpetual licences and their support contract (1CRM terms)."""

from datetime import date, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts import services as account_services
from accounts.errors import PortalError
from accounts.models import Account
from billing import selectors as billing_selectors
from billing import services
from billing import services as billing_services
from billing.models import Licence, Order, Price, Product, Subscription
from tests.billing.helpers import UTC, usd
from tests.factories import AccountFactory, MembershipFactory, UserFactory, owner_of

pytestmark = pytest.mark.django_db


# Local noon in New York on the given day.
def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 17, tzinfo=UTC)


@pytest.fixture
def catalogue():
    licence = Product.objects.create(
        code="pro-lic",
        name="Professional licence",
        kind="perpetual_license",
        edition="professional",
        deployment="on_premise",
    )
    startup = Product.objects.create(
        code="startup", name="Startup Edition", kind="perpetual_license", edition="startup"
    )
    support = Product.objects.create(
        code="support", name="Support and updates", kind="support_contract"
    )
    return {
        "licence": Price.objects.create(
            product=licence,
            currency="USD",
            amount=Decimal("195"),
            scheme="per_seat",
            interval="one_off",
        ),
        "startup": Price.objects.create(
            product=startup, currency="USD", amount=Decimal("0"), interval="one_off"
        ),
        "support": Price.objects.create(
            product=support,
            currency="USD",
            amount=Decimal("60"),
            scheme="per_seat",
            interval="year",
        ),
    }


@pytest.fixture
def onprem():
    return AccountFactory(seats_paid=1, timezone="America/New_York")


def _buy_licences(account, catalogue, users, day, staff):
    order = billing_services.purchase_place(
        actor=owner_of(account),
        account=account,
        items=[{"price": catalogue["licence"].pk, "quantity": users}],
        now=at(day),
    )
    services.payment_record_manual(actor=staff, order=order, reference="BANK", now=at(day))
    order.refresh_from_db()
    return order


def test_a_licence_includes_its_first_year_of_support_and_sets_the_seats(
    onprem, catalogue, billing_staff
):
    quote = billing_services.purchase_quote(
        account=onprem,
        items=[{"price": catalogue["licence"].pk, "quantity": 5}],
        today=date(2026, 3, 10),
    )
    kinds = [(line["kind"], line["amount"]) for line in quote.lines]
    assert kinds == [
        ("perpetual_license", Decimal("975.00")),
        ("support_contract", Decimal("300.00")),
    ]
    assert "mandatory" in quote.notes[0] and quote.total == usd("1275.00")

    _buy_licences(onprem, catalogue, 5, date(2026, 3, 10), billing_staff)
    onprem.refresh_from_db()
    assert onprem.seats_paid == 5 and billing_selectors.licensed_users(onprem) == 5
    contract = billing_selectors.support_contract(onprem)
    assert (contract.status, contract.quantity) == ("active", 5)
    assert (contract.current_period_start, contract.current_period_end) == (
        date(2026, 3, 10),
        date(2027, 3, 10),
    )
    # The key is valid, and the self-hosted system activates with it.
    licence = Licence.objects.get(account=onprem)
    key = billing_selectors.licence_key(licence)
    assert billing_selectors.licence_from_key(key) == licence
    assert billing_selectors.licence_from_key(key[:-1] + ("0" if key[-1] != "0" else "1")) is None
    assert billing_selectors.licence_from_key("LIC-1-nonsense") is None
    billing_services.licence_activate(
        key=key, instance="crm.example.com", now=at(date(2026, 3, 11))
    )
    licence.refresh_from_db()
    licence.line.refresh_from_db()
    assert licence.activated_at is not None and licence.line.delivery == "downloaded"


def test_users_added_later_join_the_contract_pro_rata(onprem, catalogue, billing_staff):
    _buy_licences(onprem, catalogue, 5, date(2026, 3, 10), billing_staff)
    # 10 Sept 2026: 181 of the contract's 365 days are left.
    quote = billing_services.purchase_quote(
        account=onprem,
        items=[{"price": catalogue["licence"].pk, "quantity": 2}],
        today=date(2026, 9, 10),
    )
    support = quote.lines[1]
    assert support["effect"] == "add_seats" and support["period_end"] == date(2027, 3, 10)
    assert support["amount"] == Decimal("59.51")  # 120 x 181 / 365, half up
    _buy_licences(onprem, catalogue, 2, date(2026, 9, 10), billing_staff)
    onprem.refresh_from_db()
    assert onprem.seats_paid == 7
    assert billing_selectors.support_contract(onprem).quantity == 7


def test_without_active_support_no_user_is_added_or_activated(onprem, catalogue, billing_staff):
    _buy_licences(onprem, catalogue, 2, date(2026, 3, 10), billing_staff)
    contract = billing_selectors.support_contract(onprem)
    # The contract's end passes: support expires, the account itself stays usable.
    services.subscription_renew(subscription=contract, now=at(date(2027, 3, 10)))
    contract.refresh_from_db()
    onprem.refresh_from_db()
    assert contract.status == "lapsed" and onprem.status == Account.Status.ACTIVE
    assert not Order.objects.filter(lines__subscription=contract, lines__effect="renew").exists()

    owner = owner_of(onprem)
    with pytest.raises(PortalError, match="support contract is not active"):
        account_services.invitation_create(
            actor=owner, account=onprem, email="new@example.com", role="member", with_seat=True
        )
    with pytest.raises(PortalError, match="renew it before buying more"):
        billing_services.purchase_quote(
            account=onprem,
            items=[{"price": catalogue["licence"].pk, "quantity": 1}],
            today=date(2027, 3, 12),
        )


# The arrears examples of the 1CRM terms: a late renewal runs from the expiry (at most
# 12 months back) to 12 months after the end of the month of renewal, billed by the month.
ARREARS = [
    # expired on, renewed on, start, end, months billed, amount for 2 users at 60 a year
    (date(2027, 3, 10), date(2027, 5, 20), date(2027, 3, 10), date(2028, 5, 31), 15, "150.00"),
    (date(2027, 3, 10), date(2028, 7, 4), date(2027, 7, 4), date(2029, 7, 31), 25, "250.00"),
    (date(2027, 3, 10), date(2027, 3, 10), date(2027, 3, 10), date(2028, 3, 31), 13, "130.00"),
    (date(2027, 3, 10), date(2027, 2, 1), date(2027, 3, 10), date(2028, 3, 9), 12, "120.00"),
]


@pytest.mark.parametrize(("expired", "renewed", "start", "end", "months", "amount"), ARREARS)
def test_support_renewal_quotes_follow_the_arrears_rule(
    onprem, catalogue, billing_staff, expired, renewed, start, end, months, amount
):
    _buy_licences(onprem, catalogue, 2, date(2026, 3, 10), billing_staff)
    contract = billing_selectors.support_contract(onprem)
    assert contract.current_period_end == expired
    if renewed >= expired:
        services.subscription_renew(subscription=contract, now=at(expired))
    quote = billing_selectors.support_renewal_quote(account=onprem, users=2, today=renewed)
    assert (quote.period.start, quote.period.end, quote.period.months_billed) == (
        start,
        end,
        months,
    )
    assert quote.amount == usd(amount)


def test_a_late_renewal_reactivates_support_for_its_quoted_period(onprem, catalogue, billing_staff):
    _buy_licences(onprem, catalogue, 2, date(2026, 3, 10), billing_staff)
    contract = billing_selectors.support_contract(onprem)
    services.subscription_renew(subscription=contract, now=at(date(2027, 3, 10)))
    order = billing_services.support_renew(
        actor=owner_of(onprem),
        account=onprem,
        users=2,
        expected_amount=usd("150.00"),
        now=at(date(2027, 5, 20)),
    )
    # Paid a week later: the period stays the one quoted (from the expiry).
    services.payment_record_manual(
        actor=billing_staff, order=order, reference="B2", now=at(date(2027, 5, 27))
    )
    contract.refresh_from_db()
    assert contract.status == "active"
    assert (contract.current_period_start, contract.current_period_end) == (
        date(2027, 3, 10),
        date(2028, 6, 1),
    )
    assert billing_selectors.support_is_active(contract, date(2027, 6, 1))


def test_renewing_for_fewer_users_needs_the_explicit_renunciation(onprem, catalogue, billing_staff):
    _buy_licences(onprem, catalogue, 5, date(2026, 3, 10), billing_staff)
    contract = billing_selectors.support_contract(onprem)
    services.subscription_renew(subscription=contract, now=at(date(2027, 3, 10)))
    owner = owner_of(onprem)
    when = at(date(2027, 4, 2))
    with pytest.raises(PortalError) as exc:
        billing_services.support_renew(actor=owner, account=onprem, users=3, now=when)
    assert exc.value.field == "renounce" and "renounces 2 of your 5" in exc.value.message
    assert not Order.objects.filter(lines__effect="renew").exists()

    order = billing_services.support_renew(
        actor=owner, account=onprem, users=3, renounce=True, now=when
    )
    assert billing_selectors.licensed_users(onprem) == 5  # nothing renounced before it is paid
    services.payment_record_manual(actor=billing_staff, order=order, reference="B", now=when)
    onprem.refresh_from_db()
    assert billing_selectors.licensed_users(onprem) == 3 and onprem.seats_paid == 3
    assert billing_selectors.support_contract(onprem).quantity == 3
    assert Licence.objects.get(account=onprem).renounced == 2


def test_early_renewal_is_offered_in_the_last_90_days_only(onprem, catalogue, billing_staff):
    _buy_licences(onprem, catalogue, 2, date(2026, 3, 10), billing_staff)
    with pytest.raises(PortalError, match="last 90 days"):
        billing_selectors.support_renewal_quote(account=onprem, users=2, today=date(2026, 12, 1))
    quote = billing_selectors.support_renewal_quote(account=onprem, users=2, today=date(2027, 1, 5))
    assert (quote.period.start, quote.period.end, quote.amount) == (
        date(2027, 3, 10),
        date(2028, 3, 9),
        usd("120.00"),
    )


def test_the_startup_edition_is_free_and_has_no_support(onprem, catalogue):
    order = billing_services.purchase_place(
        actor=owner_of(onprem),
        account=onprem,
        items=[{"price": catalogue["startup"].pk, "quantity": 1}],
        now=at(date(2026, 3, 10)),
    )
    assert order.status == "paid" and order.lines.count() == 1
    assert Licence.objects.filter(account=onprem).count() == 1
    assert (
        billing_selectors.licensed_users(onprem) is None
        and billing_selectors.support_seat_refusal(onprem) is None
    )
    assert not Subscription.objects.support_contracts().exists()


def test_the_billing_page_shows_keys_support_dates_and_the_renewal(
    client, onprem, catalogue, billing_staff
):
    _buy_licences(onprem, catalogue, 3, date(2026, 3, 10), billing_staff)
    client.force_login(owner_of(onprem))
    page = client.get(reverse("billing_plan"))
    licence = Licence.objects.get(account=onprem)
    assert billing_selectors.licence_key(licence) in page.text
    assert "Support and updates for 3 user(s)" in page.text
    member = MembershipFactory(account=onprem, role="member", user=UserFactory()).user
    client.force_login(member)
    assert client.get(reverse("settings_billing")).status_code == 403
    assert client.get(reverse("billing_plan")).status_code == 403


def test_revoking_a_licence_lowers_the_seats(onprem, catalogue, billing_staff):
    _buy_licences(onprem, catalogue, 3, date(2026, 3, 10), billing_staff)
    licence = Licence.objects.get(account=onprem)
    billing_services.licence_revoke(licence=licence, actor=billing_staff, reason="refunded")
    assert billing_selectors.licensed_users(onprem) == 0
    with pytest.raises(PortalError, match="revoked"):
        billing_services.licence_activate(key=billing_selectors.licence_key(licence))


def test_cloud_plans_and_on_premise_licences_do_not_mix(
    account, onprem, catalogue, plan, billing_staff
):
    # An on-premise licence is not even offered to a cloud account.
    with pytest.raises(PortalError, match="not for sale"):
        billing_services.purchase_quote(
            account=account,
            items=[{"price": catalogue["licence"].pk, "quantity": 1}],
            today=date(2026, 3, 10),
        )
    _buy_licences(onprem, catalogue, 2, date(2026, 3, 10), billing_staff)
    with pytest.raises(PortalError, match="licensed on-premise"):
        services.subscription_start(actor=owner_of(onprem), account=onprem, price=plan, quantity=2)


# --- regressions found in review -------------------------------------------------------


def test_the_plan_endpoints_never_touch_a_support_contract(
    api_client, onprem, catalogue, billing_staff
):
    _buy_licences(onprem, catalogue, 5, date(2026, 3, 10), billing_staff)
    contract = billing_selectors.support_contract(onprem)
    api_client.force_authenticate(owner_of(onprem))
    base = f"/api/v1/accounts/{onprem.pk}/subscriptions/{contract.pk}"
    for path in ("/seats/preview/", "/seats/", "/plan/preview/", "/plan/", "/cancel/"):
        assert api_client.post(base + path, {"quantity": 1}, format="json").status_code == 404
    with pytest.raises(PortalError, match="not the account's plan"):
        services.subscription_seat_quote(subscription=contract, quantity=1, today=date(2026, 4, 1))
    contract.refresh_from_db()
    assert contract.quantity == 5


def test_an_early_renewal_keeps_support_running_without_a_gap(onprem, catalogue, billing_staff):
    _buy_licences(onprem, catalogue, 2, date(2026, 3, 10), billing_staff)
    order = billing_services.support_renew(
        actor=owner_of(onprem), account=onprem, users=2, now=at(date(2027, 1, 5))
    )
    services.payment_record_manual(
        actor=billing_staff, order=order, reference="B", now=at(date(2027, 1, 5))
    )
    contract = billing_selectors.support_contract(onprem)
    assert (contract.current_period_start, contract.current_period_end) == (
        date(2026, 3, 10),
        date(2028, 3, 10),
    )
    assert billing_selectors.support_is_active(contract, date(2027, 1, 6))


def test_no_licences_are_ordered_while_a_support_order_awaits_payment(
    onprem, catalogue, billing_staff
):
    _buy_licences(onprem, catalogue, 5, date(2026, 3, 10), billing_staff)
    contract = billing_selectors.support_contract(onprem)
    services.subscription_renew(subscription=contract, now=at(date(2027, 3, 10)))
    billing_services.support_renew(
        actor=owner_of(onprem), account=onprem, users=5, now=at(date(2027, 3, 12))
    )
    with pytest.raises(PortalError, match="awaits payment"):
        billing_services.purchase_quote(
            account=onprem,
            items=[{"price": catalogue["licence"].pk, "quantity": 2}],
            today=date(2027, 3, 12),
        )


def test_a_licence_whose_support_can_no_longer_apply_is_not_issued(
    onprem, catalogue, billing_staff
):
    _buy_licences(onprem, catalogue, 2, date(2026, 3, 10), billing_staff)
    order = billing_services.purchase_place(
        actor=owner_of(onprem),
        account=onprem,
        items=[{"price": catalogue["licence"].pk, "quantity": 1}],
        now=at(date(2027, 2, 1)),
    )
    # The contract's period moved on before the order was paid (the renewal and the
    # voiding of open orders are refused elsewhere; this is the last safety net).
    contract = billing_selectors.support_contract(onprem)
    Subscription.objects.filter(pk=contract.pk).update(current_period_end=date(2028, 3, 10))
    services.payment_record_manual(
        actor=billing_staff, order=order, reference="LATE", now=at(date(2027, 2, 2))
    )
    assert Licence.objects.filter(account=onprem).count() == 1
    assert billing_selectors.licensed_users(onprem) == 2
    from billing.selectors import ledger_balance

    assert ledger_balance(account=onprem, currency="USD").amount == order.total


def test_a_cancelled_licence_order_does_not_hide_the_running_contract(
    onprem, catalogue, billing_staff
):
    first = billing_services.purchase_place(
        actor=owner_of(onprem),
        account=onprem,
        items=[{"price": catalogue["licence"].pk, "quantity": 3}],
        now=at(date(2026, 3, 9)),
    )
    services.order_cancel(actor=owner_of(onprem), order=first)
    _buy_licences(onprem, catalogue, 3, date(2026, 3, 10), billing_staff)
    contract = billing_selectors.support_contract(onprem)
    assert contract.status == "active" and contract.quantity == 3
    assert Subscription.objects.support_contracts().filter(account=onprem).count() == 2


def test_an_invitation_accepted_after_support_lapsed_joins_without_a_seat(
    onprem, catalogue, billing_staff
):
    from tests.factories import InvitationFactory

    _buy_licences(onprem, catalogue, 3, date(2026, 3, 10), billing_staff)
    invitation = InvitationFactory(account=onprem, email="late@example.com", with_seat=True)
    contract = billing_selectors.support_contract(onprem)
    Subscription.objects.filter(pk=contract.pk).update(status="lapsed")
    user = UserFactory(email="late@example.com")
    membership = account_services.invitation_accept(invitation=invitation, user=user)
    assert membership.is_active and not membership.has_seat


def test_support_is_not_renewed_for_fewer_users_than_hold_seats(onprem, catalogue, billing_staff):
    _buy_licences(onprem, catalogue, 3, date(2026, 3, 10), billing_staff)
    MembershipFactory(account=onprem, has_seat=True)
    MembershipFactory(account=onprem, has_seat=True)
    contract = billing_selectors.support_contract(onprem)
    services.subscription_renew(subscription=contract, now=at(date(2027, 3, 10)))
    with pytest.raises(PortalError, match="at least 3 users"):
        billing_selectors.support_renewal_quote(account=onprem, users=2, today=date(2027, 3, 12))


def test_a_key_whose_users_were_all_renounced_does_not_activate(onprem, catalogue, billing_staff):
    _buy_licences(onprem, catalogue, 2, date(2026, 3, 10), billing_staff)
    licence = Licence.objects.get()
    Licence.objects.filter(pk=licence.pk).update(renounced=2)
    with pytest.raises(PortalError, match="renounced"):
        billing_services.licence_activate(key=billing_selectors.licence_key(licence))


def test_plugin_keys_do_not_take_seats_paid_from_staff(onprem, billing_staff):
    plugin = Product.objects.create(code="plug", name="Plugin", kind="plugin")
    price = Price.objects.create(
        product=plugin, currency="USD", amount=Decimal("0"), interval="one_off"
    )
    billing_services.purchase_place(
        actor=owner_of(onprem), account=onprem, items=[{"price": price.pk, "quantity": 1}]
    )
    assert Licence.objects.filter(account=onprem).exists()
    assert billing_selectors.seats_paid_owned_by_plan(onprem) is None


def test_each_kind_of_account_is_offered_its_own_catalogue(
    account, onprem, catalogue, billing_staff
):
    cloud = Product.objects.create(
        code="wa", name="WhatsApp", kind="premium_feature", deployment="cloud"
    )
    Price.objects.create(product=cloud, currency="USD", amount=Decimal("15"), interval="month")
    Product.objects.filter(pk=catalogue["licence"].product_id).update(deployment="on_premise")
    _buy_licences(onprem, catalogue, 2, date(2026, 3, 10), billing_staff)
    onprem_codes = {p.product.code for p in billing_selectors.catalogue(account=onprem)}
    cloud_codes = {p.product.code for p in billing_selectors.catalogue(account=account)}
    assert "wa" not in onprem_codes and "pro-lic" in onprem_codes
    assert "wa" in cloud_codes and "pro-lic" not in cloud_codes
    with pytest.raises(PortalError, match="not for sale"):
        billing_services.purchase_quote(
            account=onprem, items=[{"price": cloud.prices.get().pk}], today=date(2026, 3, 12)
        )
