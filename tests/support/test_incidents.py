"""Support (1CRM terms): the designated contact, the yearly quota, extra incidents,
scope, and service-level deadlines in business hours."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.errors import NotAllowed, PortalError
from accounts.models import AuditEvent
from billing import services as billing_services
from billing.models import Order, Price, Product, Subscription
from support import deadlines, services
from support.models import Incident
from tests.factories import (
    AccountFactory,
    MembershipFactory,
    ResellerFactory,
    UserFactory,
    owner_of,
)

pytestmark = pytest.mark.django_db
# Tuesday 10 March 2026, 14:00 in New York.
TUESDAY = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _vendor(settings):
    settings.VENDOR_TIMEZONE = "America/New_York"
    settings.VENDOR_COUNTRY = "US"


@pytest.fixture
def extra_price():
    product = Product.objects.create(code="extra", name="Extra incident", kind="support_incident")
    return Price.objects.create(
        product=product, currency="USD", amount=Decimal("150"), interval="one_off"
    )


def cloud_account(seats: int, *, start=date(2026, 1, 15)):
    account = AccountFactory(seats_paid=seats, timezone="America/New_York")
    product = Product.objects.create(code=f"plan-{account.pk}", name="Pro", kind="subscription")
    price = Price.objects.create(
        product=product, currency="USD", amount=Decimal("29"), scheme="per_seat", interval="month"
    )
    Subscription.objects.create(
        account=account,
        price=price,
        quantity=seats,
        current_period_start=start,
        current_period_end=date(2026, 4, 15),
    )
    return account


def open_one(account, now=TUESDAY, **kwargs):
    kwargs.setdefault("subject", "Reports page shows an error")
    kwargs.setdefault("description", "The weekly report fails with error 500.")
    kwargs.setdefault("severity", "P3")
    return services.incident_open(actor=owner_of(account), account=account, now=now, **kwargs)


@pytest.mark.parametrize(("seats", "quota"), [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2)])
def test_one_incident_a_year_per_two_licensed_users_at_least_one(seats, quota):
    account = cloud_account(seats)
    view = services.quota_get(account=account, today=date(2026, 3, 10))
    assert (view.quota, view.used, view.year_start, view.next_reset) == (
        quota,
        0,
        date(2026, 1, 15),
        date(2027, 1, 15),
    )


def test_the_quota_reads_the_seats_when_an_incident_opens_and_resets_with_the_year(extra_price):
    account = cloud_account(2)
    open_one(account)
    with pytest.raises(PortalError) as exc:
        open_one(account)
    assert exc.value.field == "confirm_extra" and "150.00 USD" in exc.value.message
    # Seats go up mid-year: the quota follows the seats paid now.
    account.seats_paid = 4
    account.save(update_fields=["seats_paid"])
    second = open_one(account)
    assert second.billing == "quota" and second.seats_at_open == 4
    # The year rolls over on 15 January: a fresh quota.
    renewed = open_one(account, now=datetime(2027, 1, 15, 18, tzinfo=UTC))
    assert renewed.billing == "quota" and renewed.support_year_start == date(2027, 1, 15)
    assert services.quota_get(account=account, today=date(2027, 1, 20)).used == 1


def test_an_extra_incident_is_billed_once_confirmed_and_opens_when_paid(extra_price, billing_staff):
    account = cloud_account(1)
    open_one(account)
    extra = open_one(account, confirm_extra=True)
    assert (extra.state, extra.billing) == ("awaiting_payment", "billed")
    order = Order.objects.get(pk=extra.order_id)
    line = order.lines.get()
    assert (line.kind, line.amount) == ("support_incident", Decimal("150.0000"))
    billing_services.payment_record_manual(
        actor=billing_staff, order=order, reference="B", now=TUESDAY
    )
    extra.refresh_from_db()
    assert extra.state == "open" and extra.first_response_due_at is not None
    # It does not eat into the quota.
    assert services.quota_get(account=account, today=date(2026, 3, 10)).used == 1


def test_only_the_designated_contact_opens_incidents():
    account = cloud_account(3)
    member = MembershipFactory(account=account, role="member").user
    with pytest.raises(NotAllowed, match="designated support contact"):
        services.incident_open(
            actor=member,
            account=account,
            subject="Help",
            description="x",
            severity="P4",
            now=TUESDAY,
        )
    assert not Incident.objects.exists()


def test_the_startup_edition_has_no_support():
    account = AccountFactory()
    startup = Product.objects.create(
        code="startup", name="Startup", kind="perpetual_license", edition="startup"
    )
    from billing.services import purchase_place

    price = Price.objects.create(
        product=startup, currency="USD", amount=Decimal("0"), interval="one_off"
    )
    purchase_place(actor=owner_of(account), account=account, items=[{"price": price.pk}])
    with pytest.raises(PortalError, match="not available for the free Startup Edition") as exc:
        open_one(account)
    assert exc.value.code == "startup" and not Incident.objects.exists()


def test_a_reseller_account_is_sent_to_its_reseller_by_name():
    account = cloud_account(3)
    account.reseller = ResellerFactory(
        name="Northwind Partners", support_email="help@northwind.example"
    )
    account.save()
    with pytest.raises(
        PortalError, match=r"provided by Northwind Partners at help@northwind\.example"
    ):
        open_one(account)


def test_a_lapsed_subscription_gets_the_renewal_offer():
    account = cloud_account(3)
    Subscription.objects.filter(account=account).update(status="lapsed")
    with pytest.raises(PortalError, match="renew it under Account Settings > Billing") as exc:
        open_one(account)
    assert exc.value.code == "lapsed"


def test_out_of_scope_questions_are_declined_and_staff_can_reclassify(billing_staff):
    account = cloud_account(2)
    declined = open_one(
        account,
        subject="Custom code",
        description="Can you help us write code for a custom module?",
    )
    assert (declined.state, declined.scope, declined.billing) == ("declined", "developer", "free")
    assert services.quota_get(account=account, today=date(2026, 3, 10)).used == 0
    from django.contrib.auth.models import Group

    agent = UserFactory(is_staff=True)
    agent.groups.add(Group.objects.get(name="Support agent"))
    services.incident_update(actor=agent, incident=declined, scope="standard", now=TUESDAY)
    declined.refresh_from_db()
    assert (declined.state, declined.billing) == ("open", "quota")


def test_deadlines_count_business_hours_over_a_weekend():
    # Friday 13 March, 16:00 in New York: a P3 (8 business hours) is due Monday 15:00...
    friday = datetime(2026, 3, 13, 20, tzinfo=UTC)
    due = deadlines.add_business_hours(friday, 8)
    assert due.isoformat() == "2026-03-16T16:00:00-04:00"
    # ...and a P1 opened on Saturday is due at 10:00 on Monday.
    assert (
        deadlines.add_business_hours(datetime(2026, 3, 14, 15, tzinfo=UTC), 1).isoformat()
        == "2026-03-16T10:00:00-04:00"
    )
    account = cloud_account(4)
    incident = open_one(account, now=friday, severity="P3")
    assert incident.first_response_due_at == due and incident.next_deadline == due


def test_answers_waiting_reopening_and_breaches_once(settings, django_capture_on_commit_callbacks):
    from django.contrib.auth.models import Group
    from django.core import mail

    settings.SUPPORT_LEADS = ["leads@vendor.example"]
    account = cloud_account(4)
    incident = open_one(account, severity="P1")  # first answer due Tuesday 15:00
    agent = UserFactory(is_staff=True)
    agent.groups.add(Group.objects.get(name="Support agent"))
    late = datetime(2026, 3, 10, 20, 30, tzinfo=UTC)  # 16:30
    with django_capture_on_commit_callbacks(execute=True):
        assert services.incident_deadlines_sweep(now=late) == 1
        assert services.incident_deadlines_sweep(now=late) == 0
    assert mail.outbox[-1].to == ["leads@vendor.example"]
    services.incident_respond(
        actor=agent, incident=incident, body="Which browser?", wait=True, now=late
    )
    incident.refresh_from_db()
    assert incident.state == "waiting_on_customer" and incident.next_deadline is None
    services.incident_reply(actor=owner_of(account), incident=incident, body="Firefox", now=late)
    incident.refresh_from_db()
    assert incident.state == "in_progress" and incident.assignee == agent
    services.incident_set_state(actor=agent, incident=incident, state="resolved", now=late)
    services.incident_reply(actor=owner_of(account), incident=incident, body="It is back", now=late)
    incident.refresh_from_db()
    assert incident.state == "in_progress" and incident.reopened == 1
    services.incident_set_state(actor=agent, incident=incident, state="resolved", now=late)
    with pytest.raises(PortalError, match="more than 14 days ago"):
        services.incident_reply(
            actor=owner_of(account),
            incident=incident,
            body="Again",
            now=datetime(2026, 3, 26, 18, tzinfo=UTC),
        )
    assert AuditEvent.objects.filter(action="incident.deadline_breached").count() == 1


def test_the_support_page_and_another_accounts_incident(client):
    account = cloud_account(2)
    incident = open_one(account)
    other = cloud_account(2)
    client.force_login(owner_of(other))
    assert client.get(reverse("incident_detail", args=[incident.number])).status_code == 404
    client.force_login(owner_of(account))
    page = client.get(reverse("support_home"))
    assert page.status_code == 200 and "1 of 1" in page.text and incident.number in page.text
    member = MembershipFactory(account=account, role="member").user
    client.force_login(member)
    page = client.get(reverse("support_home"))
    assert "designated support contact" in page.text and owner_of(account).email in page.text
    assert client.get(reverse("service_levels")).status_code == 200


# --- regressions from review ---------------------------------------------------------


def test_a_cancelled_extra_order_closes_its_incident_and_one_extra_waits_at_a_time(extra_price):
    account = cloud_account(1)
    open_one(account)
    extra = open_one(account, confirm_extra=True)
    with pytest.raises(PortalError, match="awaiting payment of its order"):
        open_one(account, confirm_extra=True)
    billing_services.order_cancel(
        actor=owner_of(account), order=Order.objects.get(pk=extra.order_id)
    )
    extra.refresh_from_db()
    assert extra.state == "closed" and extra.next_deadline is None
    assert open_one(account, confirm_extra=True).state == "awaiting_payment"


def test_a_new_severity_brings_its_own_targets():
    from django.contrib.auth.models import Group

    account = cloud_account(4)
    incident = open_one(account, severity="P4")  # 16 business hours
    agent = UserFactory(is_staff=True)
    agent.groups.add(Group.objects.get(name="Support agent"))
    services.incident_update(actor=agent, incident=incident, severity="P1", now=TUESDAY)
    incident.refresh_from_db()
    assert incident.first_response_due_at == deadlines.add_business_hours(TUESDAY, 1)
    assert incident.next_deadline == incident.first_response_due_at


def test_a_late_first_answer_is_recorded_as_a_breach_and_a_reopened_unanswered_incident_keeps_its_deadline():
    from django.contrib.auth.models import Group

    account = cloud_account(4)
    incident = open_one(account, severity="P1")  # due 15:00
    agent = UserFactory(is_staff=True)
    agent.groups.add(Group.objects.get(name="Support agent"))
    services.incident_set_state(actor=agent, incident=incident, state="resolved", now=TUESDAY)
    services.incident_reply(
        actor=owner_of(account), incident=incident, body="Still broken", now=TUESDAY
    )
    incident.refresh_from_db()
    assert (
        incident.state == "in_progress" and incident.next_deadline == incident.first_response_due_at
    )
    late = datetime(2026, 3, 10, 20, 30, tzinfo=UTC)
    services.incident_respond(actor=agent, incident=incident, body="Looking", now=late)
    incident.refresh_from_db()
    assert len(incident.breached) == 1 and incident.breached[0].startswith("first response")
    assert services.incident_deadlines_sweep(now=late) == 0


def test_a_29_february_start_keeps_its_anniversaries():
    assert services.support_year(date(2024, 2, 29), date(2028, 2, 28)) == (
        date(2027, 2, 28),
        date(2028, 2, 29),
    )
    assert services.support_year(date(2024, 2, 29), date(2028, 2, 29)) == (
        date(2028, 2, 29),
        date(2029, 2, 28),
    )


def test_every_state_change_of_an_incident_is_audited_and_a_closed_one_stays_closed():
    from datetime import timedelta

    account = cloud_account(2)
    incident = open_one(account)
    agent = UserFactory(is_staff=True, is_superuser=True)
    services.incident_respond(actor=agent, incident=incident, body="Fixed?", wait=True, now=TUESDAY)
    services.incident_reply(
        actor=owner_of(account), incident=incident, body="Not yet", now=TUESDAY + timedelta(hours=1)
    )
    services.incident_set_state(actor=agent, incident=incident, state="resolved")
    services.incident_set_state(actor=agent, incident=incident, state="closed")
    moves = list(
        AuditEvent.objects.filter(action="incident.state_changed", object_id=str(incident.pk))
        .order_by("pk")
        .values_list("changes__state", flat=True)
    )
    assert moves == [
        ["open", "waiting_on_customer"],
        ["waiting_on_customer", "in_progress"],
        ["in_progress", "resolved"],
        ["resolved", "closed"],
    ]
    with pytest.raises(PortalError, match="is closed: it cannot become in progress"):
        services.INCIDENT.check(Incident.objects.get(pk=incident.pk), "in_progress")
    with pytest.raises(PortalError, match="is closed"):
        services.incident_reply(actor=owner_of(account), incident=incident, body="Again")
