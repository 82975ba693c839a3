"""The support API: who may ask and the quota, listing, opening (the designated contact
only; refusals under their field), following and writing on incidents; any member reads;
another account's incident answers 404; queries do not grow with incidents."""

from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from billing.models import Price, Product, Subscription
from billing.periods import add_years
from support import services
from support.models import Incident
from tests.factories import (
    AccountFactory,
    MembershipFactory,
    ResellerFactory,
    UserFactory,
    owner_of,
)

pytestmark = pytest.mark.django_db
NEW_YORK = "America/New_York"


@pytest.fixture(autouse=True)
def _vendor(settings):
    settings.VENDOR_TIMEZONE = NEW_YORK
    settings.VENDOR_COUNTRY = "US"


@pytest.fixture
def extra_price():
    product = Product.objects.create(code="extra", name="Extra incident", kind="support_incident")
    return Price.objects.create(
        product=product, currency="USD", amount=Decimal("150"), interval="one_off"
    )


@pytest.fixture
def agent():
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Support agent"))
    return user


@pytest.fixture
def client_of(api_client):
    def login(user):
        api_client.force_authenticate(user)
        return api_client

    return login


def start_day():
    return timezone.localtime(timezone.now(), ZoneInfo(NEW_YORK)).date() - timedelta(days=10)


def cloud_account(seats: int, **extra):
    account = AccountFactory(seats_paid=seats, timezone=NEW_YORK, **extra)
    product = Product.objects.create(code=f"plan-{account.pk}", name="Pro", kind="subscription")
    price = Price.objects.create(
        product=product, currency="USD", amount=Decimal("29"), scheme="per_seat", interval="month"
    )
    Subscription.objects.create(
        account=account,
        price=price,
        quantity=seats,
        current_period_start=start_day(),
        current_period_end=start_day() + timedelta(days=30),
    )
    return account


def url(account, number=None, action=None):
    path = f"/api/v1/accounts/{account.pk}/incidents/"
    if number:
        path += f"{number}/"
    if action:
        path += f"{action}/"
    return path


def support_url(account):
    return f"/api/v1/accounts/{account.pk}/support/"


def body(**extra):
    return {
        "subject": "Reports page shows an error",
        "description": "The weekly report fails with error 500.",
        "severity": "P3",
        **extra,
    }


def open_one(account, **kwargs):
    return services.incident_open(actor=owner_of(account), account=account, **(body() | kwargs))


def test_the_contact_sees_the_quota_and_may_open(client_of, extra_price):
    account = cloud_account(4)
    contact = owner_of(account)
    open_one(account)
    data = client_of(contact).get(support_url(account)).json()
    start = start_day()
    assert data["refusal"] is None
    assert data["contact"] == {"name": contact.get_full_name(), "email": contact.email}
    assert data["quota"] == {
        "year_start": start.isoformat(),
        "next_reset": add_years(start, 1).isoformat(),
        "licensed": 4,
        "quota": 2,
        "used": 1,
        "left": 1,
    }
    assert data["extra_incident_price"] == {"amount": "150.00", "currency": "USD"}


def test_another_member_is_told_who_the_contact_is(client_of):
    account = cloud_account(2)
    member = MembershipFactory(account=account, role="member").user
    data = client_of(member).get(support_url(account)).json()
    assert data["refusal"]["kind"] == "not_contact"
    assert owner_of(account).get_full_name() in data["refusal"]["message"]
    assert data["quota"]["quota"] == 1 and data["extra_incident_price"] is None


def test_a_startup_account_is_refused_and_pointed_to_the_documentation(client_of, settings):
    account = AccountFactory()
    startup = Product.objects.create(
        code="startup", name="Startup", kind="perpetual_license", edition="startup"
    )
    from billing.services import purchase_place

    price = Price.objects.create(
        product=startup, currency="USD", amount=Decimal("0"), interval="one_off"
    )
    purchase_place(actor=owner_of(account), account=account, items=[{"price": price.pk}])
    client = client_of(owner_of(account))
    data = client.get(support_url(account)).json()
    assert data["refusal"]["kind"] == "startup" and data["quota"] is None
    assert settings.SUPPORT_DOCS_URL in data["refusal"]["message"]
    response = client.post(url(account), body(), format="json")
    assert response.status_code == 400 and list(response.json()) == ["support"]
    assert "free Startup Edition" in response.json()["support"][0]
    assert not Incident.objects.exists()


def test_open_by_api_answers_201_with_the_detail(client_of):
    account = cloud_account(2)
    response = client_of(owner_of(account)).post(url(account), body(severity="P2"), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    incident = Incident.objects.get()
    assert (data["number"], data["channel"], data["severity"], data["state"]) == (
        incident.number,
        "api",
        "P2",
        "open",
    )
    assert data["account"] == account.pk and data["messages"] == []
    assert data["opened_by"] == owner_of(account).get_full_name()
    assert data["first_response_due_at"] is not None and data["next_deadline"] is not None


def test_only_the_contact_opens_and_the_refusal_names_them(client_of):
    account = cloud_account(2)
    member = MembershipFactory(account=account, role="member").user
    response = client_of(member).post(url(account), body(), format="json")
    assert response.status_code == 403
    assert owner_of(account).get_full_name() in response.json()["detail"]
    assert not Incident.objects.exists()


def test_reseller_and_lapsed_accounts_are_refused_under_support(client_of):
    account = cloud_account(2, reseller=ResellerFactory(name="Northwind Partners"))
    response = client_of(owner_of(account)).post(url(account), body(), format="json")
    assert response.status_code == 400 and "Northwind Partners" in response.json()["support"][0]
    lapsed = cloud_account(2)
    Subscription.objects.filter(account=lapsed).update(status="lapsed")
    response = client_of(owner_of(lapsed)).post(url(lapsed), body(), format="json")
    assert response.status_code == 400 and "renew" in response.json()["support"][0]
    assert not Incident.objects.exists()


def test_an_extra_incident_needs_the_price_confirmed(client_of, extra_price):
    account = cloud_account(1)
    open_one(account)
    client = client_of(owner_of(account))
    response = client.post(url(account), body(), format="json")
    assert response.status_code == 400 and list(response.json()) == ["confirm_extra"]
    assert "150.00 USD" in response.json()["confirm_extra"][0]
    response = client.post(url(account), body(confirm_extra=True), format="json")
    assert response.status_code == 201
    assert (response.json()["state"], response.json()["billing"]) == ("awaiting_payment", "billed")
    assert response.json()["order"]


def test_bad_input_names_its_field(client_of):
    account = cloud_account(2)
    response = client_of(owner_of(account)).post(url(account), body(severity="P9"), format="json")
    assert response.status_code == 400 and list(response.json()) == ["severity"]


def test_the_thread_hides_internal_notes_and_any_member_reads_and_writes(client_of, agent):
    account = cloud_account(2)
    incident = open_one(account)
    services.incident_respond(actor=agent, incident=incident, body="Internal", internal=True)
    services.incident_respond(actor=agent, incident=incident, body="Which browser?", wait=True)
    member = MembershipFactory(account=account, role="member").user
    client = client_of(member)
    data = client.get(url(account, incident.number)).json()
    assert data["state"] == "waiting_on_customer"
    assert [(m["author"], m["body"]) for m in data["messages"]] == [
        ("Support team", "Which browser?")
    ]
    listed = client.get(url(account)).json()
    assert listed["count"] == 1 and listed["results"][0]["number"] == incident.number
    response = client.post(url(account, incident.number, "messages"), {"body": "Firefox"})
    assert response.status_code == 201
    data = response.json()
    assert data["state"] == "in_progress"
    assert data["messages"][-1] == {
        "from_staff": False,
        "author": member.get_full_name(),
        "body": "Firefox",
        "created_at": data["messages"][-1]["created_at"],
    }
    empty = client.post(url(account, incident.number, "messages"), {"body": ""}, format="json")
    assert empty.status_code == 400 and list(empty.json()) == ["body"]


def test_another_accounts_incident_answers_404(client_of):
    account = cloud_account(2)
    incident = open_one(account)
    other = cloud_account(2)
    client = client_of(owner_of(other))
    assert client.get(url(other, incident.number)).status_code == 404
    reply = client.post(url(other, incident.number, "messages"), {"body": "Hi"}, format="json")
    assert reply.status_code == 404
    assert client.get(url(account)).status_code == 404
    assert client.get(support_url(account)).status_code == 404
    assert client.get(url(account, incident.number)).status_code == 404
    assert client.post(url(account), body(), format="json").status_code == 404
    assert incident.messages.count() == 0


def test_list_and_detail_queries_do_not_grow_with_incidents(
    client_of, agent, django_assert_max_num_queries, django_assert_num_queries, settings
):
    settings.SUPPORT_USERS_PER_INCIDENT = 1  # 20 seats: 20 incidents in the quota
    account = cloud_account(20)
    client = client_of(owner_of(account))

    def make(count):
        for _ in range(count):
            incident = open_one(account)
            services.incident_respond(actor=agent, incident=incident, body="Note", internal=True)
            services.incident_respond(actor=agent, incident=incident, body="Why?", wait=True)
            services.incident_reply(actor=owner_of(account), incident=incident, body="Because")
        return incident

    def measure(incident):
        with django_assert_max_num_queries(15) as listed:
            assert client.get(url(account)).status_code == 200
        with django_assert_max_num_queries(15) as detailed:
            assert client.get(url(account, incident.number)).status_code == 200
        return len(listed), len(detailed)

    small = measure(make(2))
    big = make(18)
    assert Incident.objects.count() == 20
    with django_assert_num_queries(small[0]):
        response = client.get(url(account))
    assert response.json()["count"] == 20 and len(response.json()["results"]) == 20
    with django_assert_num_queries(small[1]):
        detail = client.get(url(account, big.number)).json()
    assert len(detail["messages"]) == 2
