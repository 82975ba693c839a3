"""Renewal at period end, cancellation, and the licence screen (1CRM terms)."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from billing import services
from billing.models import Order, OrderLine, Subscription
from billing.periods import next_period_end
from tests.billing.helpers import AFTER_END, BEFORE_END, usd
from tests.factories import MembershipFactory, UserFactory, owner_of

UTC = ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("start", "interval", "end"),
    [
        (date(2026, 1, 31), "month", date(2026, 2, 28)),
        (date(2026, 3, 31), "month", date(2026, 4, 30)),
        (date(2026, 12, 15), "month", date(2027, 1, 15)),
        (date(2028, 1, 31), "month", date(2028, 2, 29)),
        (date(2028, 2, 29), "year", date(2029, 2, 28)),
        (date(2026, 6, 1), "year", date(2027, 6, 1)),
    ],
)
def test_next_period_end(start, interval, end):
    assert next_period_end(start, interval) == end


@pytest.fixture
def staff():
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Billing reviewer"))
    return user


@pytest.mark.django_db
class TestRenewal:
    def test_nothing_happens_before_the_local_end_of_the_period(self, account, subscription):
        assert services.subscriptions_renew_due(now=BEFORE_END) == 0
        assert not Order.objects.exists()

    def test_renewal_paid_by_credit_moves_the_period_on(self, account, subscription):
        services.ledger_credit(
            actor=None, account=account, amount=usd("100"), kind="seat_credit", description="x"
        )
        assert services.subscriptions_renew_due(now=AFTER_END) == 1
        subscription.refresh_from_db()
        assert (subscription.current_period_start, subscription.current_period_end) == (
            date(2026, 4, 1),
            date(2026, 5, 1),
        )
        assert subscription.status == "active"
        line = OrderLine.objects.get()
        assert line.effect == "renew" and line.amount == Decimal("93.00")  # 3 seats x 31
        assert line.first_purchase is False and line.order.status == "paid"
        account.refresh_from_db()
        assert account.status == "active"

    def test_unpaid_renewal_puts_the_account_on_the_licence_screen_until_paid(
        self, account, subscription, staff, client, api_client
    ):
        services.subscriptions_renew_due(now=AFTER_END)
        services.subscriptions_renew_due(now=AFTER_END)  # the job may run twice
        assert Order.objects.count() == 1
        subscription.refresh_from_db()
        account.refresh_from_db()
        assert subscription.status == "lapsed" and account.status == "license_screen"

        owner = owner_of(account)
        client.force_login(owner)
        for name in ("dashboard", "settings_users"):
            response = client.get(reverse(name))
            assert response.status_code == 402
            assert 'data-testid="licence-screen"' in response.content.decode()
        assert client.get(reverse("settings_billing")).status_code == 200
        billing = client.get(reverse("billing_plan"))
        assert billing.status_code == 200 and "renewal is unpaid" in billing.content.decode()
        assert client.get(reverse("settings_profile")).status_code == 200
        api_client.force_authenticate(owner)
        assert api_client.get(f"/api/v1/accounts/{account.pk}/members/").status_code == 402
        assert api_client.get(f"/api/v1/accounts/{account.pk}/billing/").status_code == 200
        member = MembershipFactory(account=account, role="member", has_seat=False)
        client.force_login(member.user)
        assert "Ask an owner or billing admin" in client.get("/").content.decode()

        services.payment_record_manual(
            actor=staff, order=Order.objects.get(), reference="R", now=AFTER_END
        )
        subscription.refresh_from_db()
        account.refresh_from_db()
        assert subscription.status == "active" and account.status == "active"
        assert subscription.current_period_end == date(2026, 5, 1)
        client.force_login(owner)
        assert client.get(reverse("dashboard")).status_code == 200

    def test_cancelled_plan_ends_at_the_period_end_without_charge(self, account, subscription):
        services.subscription_set_cancel_at_period_end(
            actor=owner_of(account), subscription=subscription, cancel=True
        )
        services.subscriptions_renew_due(now=BEFORE_END)
        subscription.refresh_from_db()
        assert subscription.status == "active"  # access to the end of the paid period
        services.subscriptions_renew_due(now=AFTER_END)
        subscription.refresh_from_db()
        account.refresh_from_db()
        assert subscription.status == "cancelled" and not Order.objects.exists()
        assert account.status == "license_screen"

    def test_a_cancellation_can_be_taken_back_on_the_page(self, account, subscription, client):
        client.force_login(owner_of(account))
        url = reverse("subscription_cancel")
        response = client.post(url, {"account_id": account.pk, "cancel": "1"}, follow=True)
        assert "you keep access through March 31, 2026" in response.content.decode()
        subscription.refresh_from_db()
        assert subscription.cancel_at_period_end
        client.post(url, {"account_id": account.pk, "cancel": "0"})
        subscription.refresh_from_db()
        assert not subscription.cancel_at_period_end

    def test_members_cannot_cancel(self, account, subscription, client):
        member = MembershipFactory(account=account, role="member", has_seat=False)
        client.force_login(member.user)
        assert client.post(reverse("subscription_cancel"), {"cancel": "1"}).status_code == 403
        subscription.refresh_from_db()
        assert not subscription.cancel_at_period_end

    def test_an_account_ahead_of_utc_renews_on_its_own_date(self, account, subscription):
        account.timezone = "Pacific/Auckland"
        account.save()
        # 31 March 12:00 UTC is already 1 April in Auckland.
        services.ledger_credit(
            actor=None, account=account, amount=usd("100"), kind="seat_credit", description="x"
        )
        services.subscriptions_renew_due(now=datetime(2026, 3, 31, 12, 0, tzinfo=UTC))
        subscription.refresh_from_db()
        assert subscription.current_period_start == date(2026, 4, 1)

    def test_suspended_accounts_are_not_moved_by_billing(self, account, subscription):
        account.status = "suspended_tos"
        account.save()
        services.subscriptions_renew_due(now=AFTER_END)
        account.refresh_from_db()
        assert account.status == "suspended_tos"
        assert Subscription.objects.get().status == "lapsed"
