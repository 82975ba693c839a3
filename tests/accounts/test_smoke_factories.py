import pytest

from tests.factories import AccountFactory, InvitationFactory, MembershipFactory, owner_of

pytestmark = pytest.mark.django_db


def test_factories_build_a_consistent_account():
    account = AccountFactory(seats_paid=3)
    member = MembershipFactory(account=account)
    invitation = InvitationFactory(account=account)
    assert owner_of(account).memberships.get().is_support_contact
    assert member.account == account
    assert invitation.token and invitation.status == "pending"
