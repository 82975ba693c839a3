import pytest
from django.test import Client
from tests.factories import AccountFactory, InvitationFactory, MembershipFactory, owner_of, UserFactory
from accounts.models import Membership, Invitation

pytestmark = pytest.mark.django_db


def test_probe(api_client):
    a = AccountFactory(seats_paid=2)
    owner = owner_of(a)
    m = MembershipFactory(account=a, has_seat=False)
    MembershipFactory(account=a, has_seat=True)
    api_client.force_login(owner)
    c = Client(raise_request_exception=False)
    c.force_login(owner)
    r = c.post("/switch/", {"account_id": str(10**30)})
    print("switch huge", r.status_code)
    r = api_client.get(f"/api/v1/accounts/{10**30}/")
    print("acc huge", r.status_code)
    r = api_client.patch(f"/api/v1/accounts/{a.pk}/members/{m.pk}/", {"role": "billing_admin", "has_seat": True}, format="json")
    m.refresh_from_db()
    print("patch", r.status_code, r.content[:300], m.role, m.has_seat)
    a.seats_paid = 10; a.save()
    try:
        r = api_client.post(f"/api/v1/accounts/{a.pk}/invitations/", {"email": "a"*300+"@example.com"}, format="json")
        print("inv long", r.status_code, r.content[:300], Invitation.objects.count())
    except Exception as e:
        print("EXC", repr(e)[:200])
    r = c.post("/settings/users/", {"email": "b"*300+"@example.com", "role": "member"})
    print("page inv long", r.status_code, Invitation.objects.count())
