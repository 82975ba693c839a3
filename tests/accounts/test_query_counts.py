"""'Query counts asserted on the members page and list endpoint.'

Each page and endpoint is measured with 5 members, then again after the account grows
to 200 (seat holders, members without a seat, deactivated members, billing admins,
pending and expired invitations). The count must not move, and must stay under an
explicit bound so that a new query per request shows up as a failure too.
"""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Account, Invitation, Membership, User
from tests.factories import AccountFactory, InvitationFactory, MembershipFactory, owner_of

pytestmark = pytest.mark.django_db

SMALL, LARGE = 5, 200

# Upper bounds per request, as measured today: the session, the user and the caller's
# memberships (3 queries), then the page's own reads. Raise one only with a reason.
MAX_QUERIES = {
    "members-page": 7,  # + the members, the pending invitations, two seat counts
    "members-api": 6,  # + the account, the count, the page of members
    "billing-page": 22,  # + seat holders, seat counts, ledger, plan, plans to start, orders,
    # payments, add-ons, licences, credits left, usage this month, refund requests,
    # invoices, credit notes, billing details
    "dashboard": 7,  # + two seat counts, the support contact, the member counts
}


@pytest.fixture
def account():
    """Five members: the owner, a seat holder, one without a seat, a billing admin, a leaver."""
    account = AccountFactory(name="Alpha Ltd", seats_paid=10)
    MembershipFactory(account=account, has_seat=True)
    MembershipFactory(account=account, has_seat=False)
    MembershipFactory(account=account, role=Membership.Role.BILLING_ADMIN, has_seat=True)
    MembershipFactory(account=account, has_seat=False, is_active=False)
    InvitationFactory(account=account, invited_by=owner_of(account))
    InvitationFactory(
        account=account, with_seat=False, expires_at=timezone.now() - timedelta(days=1)
    )
    # Another account of the same owner, for the switcher, and a stranger's account.
    AccountFactory(name="Beta Ltd", owner=owner_of(account))
    AccountFactory(name="Gamma Ltd")
    assert Membership.objects.filter(account=account).count() == SMALL
    return account


def grow(account: Account, total: int) -> None:
    """Bulk-add members (and invitations) until the account has `total` members."""
    owner = owner_of(account)
    start = Membership.objects.filter(account=account).count()
    users = User.objects.bulk_create(
        User(email=f"bulk{i}@example.com", full_name=f"Bulk Person {i:03d}", password="!")
        for i in range(start, total)
    )
    roles = [
        Membership.Role.MEMBER,
        Membership.Role.MEMBER,
        Membership.Role.BILLING_ADMIN,
        Membership.Role.OWNER,
    ]
    memberships = []
    for i, user in enumerate(users):
        active = i % 7 != 0
        memberships.append(
            Membership(
                account=account,
                user=user,
                role=roles[i % len(roles)],
                is_active=active,
                has_seat=active and i % 2 == 0,
                deactivated_at=None if active else timezone.now(),
            )
        )
    Membership.objects.bulk_create(memberships)
    now = timezone.now()
    Invitation.objects.bulk_create(
        Invitation(
            account=account,
            email=f"invitee-bulk{i}@example.com",
            role=roles[i % len(roles)],
            with_seat=i % 3 != 0,
            nonce=f"{i:032x}",
            invited_by=owner if i % 2 else None,
            created_at=now,
            expires_at=now + (timedelta(days=3) if i % 5 else -timedelta(days=1)),
        )
        for i in range(40)
    )
    seats = Membership.objects.filter(account=account, has_seat=True).count()
    Account.objects.filter(pk=account.pk).update(seats_paid=seats + 100)
    assert Membership.objects.filter(account=account).count() == total


@pytest.fixture
def owner_page(account):
    client = Client()
    client.force_login(owner_of(account))
    client.get("/")  # the session's first request: settle it before measuring
    return client


@pytest.fixture
def owner_api(account):
    client = APIClient()
    client.force_login(owner_of(account))
    client.get("/api/v1/me/")
    return client


@pytest.fixture
def measure(django_assert_max_num_queries, django_assert_num_queries):
    """GET `path` at 5 members, grow to 200, GET again: return both responses.

    The first request must stay under the bound, the second must use exactly as many
    queries as the first.
    """

    def run(client, path: str, name: str, account: Account):
        with django_assert_max_num_queries(MAX_QUERIES[name]) as small:
            small_response = client.get(path)
        assert small_response.status_code == 200
        grow(account, LARGE)
        with django_assert_num_queries(len(small)):
            large_response = client.get(path)
        assert large_response.status_code == 200
        return small_response, large_response

    return run


def test_members_page_query_count_is_constant(account, owner_page, measure):
    small, large = measure(owner_page, "/settings/users/", "members-page", account)

    assert small.content.decode().count("<tr data-member=") == SMALL
    html = large.content.decode()
    assert html.count("<tr data-member=") == LARGE
    assert html.count("<tr data-invitation=") == 2 + 40  # pending, expired ones included


def test_members_api_query_count_is_constant(account, owner_api, measure):
    path = f"/api/v1/accounts/{account.pk}/members/"
    small, large = measure(owner_api, path, "members-api", account)

    assert small.json()["count"] == len(small.json()["results"]) == SMALL
    assert large.json()["count"] == LARGE
    assert len(large.json()["results"]) == 100  # the default page size


def test_members_api_on_one_page_query_count_is_constant(account, owner_api, measure):
    path = f"/api/v1/accounts/{account.pk}/members/?limit={LARGE}"
    _, large = measure(owner_api, path, "members-api", account)

    # ?limit=200 is within the cap (500): every member on one page.
    body = large.json()
    assert body["count"] == len(body["results"]) == LARGE
    assert body["next"] is None


def test_billing_page_query_count_is_constant(account, owner_page, measure):
    small, large = measure(owner_page, "/settings/billing/plan-and-seats/", "billing-page", account)

    assert len(small.context["seat_holders"]) == 3
    holders = Membership.objects.filter(account=account, has_seat=True).count()
    assert len(large.context["seat_holders"]) == holders > 50


def test_dashboard_query_count_is_constant(account, owner_page, measure):
    small, large = measure(owner_page, "/", "dashboard", account)

    assert small.context["counts"] == {"active": SMALL - 1, "inactive": 1}
    counts = large.context["counts"]
    assert counts["active"] + counts["inactive"] == LARGE
