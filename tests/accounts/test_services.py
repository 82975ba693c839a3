from datetime import timedelta

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import selectors, services
from accounts.errors import NotAllowed, PortalError, SeatLimitError
from accounts.models import AuditEvent, Invitation, Membership
from accounts.request_context import client_ip
from tests.factories import (
    AccountFactory,
    InvitationFactory,
    MembershipFactory,
    UserFactory,
    owner_of,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def account():
    return AccountFactory(seats_paid=3)


@pytest.fixture
def owner(account):
    return owner_of(account)


def usage(account):
    return selectors.seat_usage(account=account, now=timezone.now())


# --- seats ---------------------------------------------------------------------------


class TestSeatLimit:
    def test_last_free_seat_can_be_given_and_the_next_is_refused(self, account, owner):
        MembershipFactory(account=account, has_seat=True)  # 2 of 3
        last = MembershipFactory(account=account, has_seat=False)
        services.membership_set_seat(actor=owner, membership=last, has_seat=True)
        assert usage(account).used == 3
        extra = MembershipFactory(account=account, has_seat=False)
        with pytest.raises(SeatLimitError) as exc:
            services.membership_set_seat(actor=owner, membership=extra, has_seat=True)
        assert "3 of 3 seats are in use" in exc.value.message
        assert "Add seats under Account Settings > Billing" in exc.value.message
        extra.refresh_from_db()
        assert extra.has_seat is False

    def test_pending_licensed_invitation_reserves_a_seat(self, account, owner):
        MembershipFactory(account=account, has_seat=True)  # 2 of 3
        services.invitation_create(actor=owner, account=account, email="a@example.com")
        assert usage(account).used == 3
        with pytest.raises(SeatLimitError) as exc:
            services.invitation_create(actor=owner, account=account, email="b@example.com")
        assert "1 reserved by pending invitations" in exc.value.message
        assert not Invitation.objects.filter(email="b@example.com").exists()

    def test_invitation_without_a_seat_is_allowed_when_seats_are_full(self, account, owner):
        MembershipFactory.create_batch(2, account=account, has_seat=True)  # 3 of 3
        invitation, _ = services.invitation_create(
            actor=owner, account=account, email="c@example.com", with_seat=False
        )
        assert invitation.with_seat is False

    def test_expired_invitation_releases_its_seat(self, account, owner):
        MembershipFactory(account=account, has_seat=True)
        InvitationFactory(account=account, expires_at=timezone.now() - timedelta(minutes=1))
        assert usage(account).used == 2
        invitation, _ = services.invitation_create(
            actor=owner, account=account, email="d@example.com"
        )
        assert invitation.with_seat and usage(account).used == 3

    def test_reactivation_beyond_the_seats_is_refused_but_allowed_without_seat(
        self, account, owner
    ):
        gone = MembershipFactory(account=account, has_seat=True)
        services.membership_deactivate(actor=owner, membership=gone)
        assert usage(account).used == 1
        MembershipFactory.create_batch(2, account=account, has_seat=True)  # 3 of 3
        with pytest.raises(SeatLimitError):
            services.membership_reactivate(actor=owner, membership=gone)
        services.membership_reactivate(actor=owner, membership=gone, with_seat=False)
        gone.refresh_from_db()
        assert gone.is_active and not gone.has_seat

    def test_taking_a_seat_frees_it(self, account, owner):
        member = MembershipFactory(account=account, has_seat=True)
        services.membership_set_seat(actor=owner, membership=member, has_seat=False)
        assert usage(account).used == 1

    def test_database_refuses_a_seat_on_an_inactive_membership(self, account):
        with pytest.raises(IntegrityError), transaction.atomic():
            MembershipFactory(account=account, has_seat=True, is_active=False)


# --- support contact -----------------------------------------------------------------


class TestSupportContact:
    def test_the_creator_is_the_first_contact(self, account, owner):
        assert selectors.support_contact_get(account=account).user == owner

    def test_owner_moves_the_contact_and_there_is_still_one(self, account, owner):
        member = MembershipFactory(account=account)
        services.support_contact_set(actor=owner, account=account, membership=member)
        contacts = Membership.objects.filter(account=account, is_support_contact=True)
        assert list(contacts) == [member]
        event = AuditEvent.objects.get(action="account.support_contact_changed")
        assert event.changes == {"support_contact": [owner.email, member.user.email]}

    def test_database_allows_only_one_contact(self, account):
        with pytest.raises(IntegrityError), transaction.atomic():
            MembershipFactory(account=account, is_support_contact=True)

    def test_database_refuses_an_inactive_contact(self, account):
        with pytest.raises(IntegrityError), transaction.atomic():
            Membership.objects.filter(account=account, is_support_contact=True).update(
                is_active=False
            )

    @pytest.mark.parametrize("role", ["billing_admin", "member"])
    def test_only_an_owner_can_change_it(self, account, role):
        actor = MembershipFactory(account=account, role=role)
        with pytest.raises(NotAllowed):
            services.support_contact_set(actor=actor.user, account=account, membership=actor)
        assert not Membership.objects.get(pk=actor.pk).is_support_contact

    def test_contact_must_be_active(self, account, owner):
        member = MembershipFactory(account=account, has_seat=False, is_active=False)
        with pytest.raises(PortalError, match="must be an active member"):
            services.support_contact_set(actor=owner, account=account, membership=member)

    def test_contact_must_be_of_this_account(self, account, owner):
        stranger = MembershipFactory()
        with pytest.raises(PortalError, match="not a member"):
            services.support_contact_set(actor=owner, account=account, membership=stranger)

    def test_the_contact_cannot_be_deactivated(self, account, owner):
        member = MembershipFactory(account=account)
        services.support_contact_set(actor=owner, account=account, membership=member)
        with pytest.raises(PortalError, match="choose another support contact first"):
            services.membership_deactivate(actor=owner, membership=member)


# --- roles ---------------------------------------------------------------------------


class TestRoles:
    def test_owner_changes_a_role_and_it_is_audited_with_the_ip(self, account, owner):
        member = MembershipFactory(account=account)
        token = client_ip.set("203.0.113.9")
        try:
            services.membership_set_role(actor=owner, membership=member, role="billing_admin")
        finally:
            client_ip.reset(token)
        member.refresh_from_db()
        assert member.role == "billing_admin"
        event = AuditEvent.objects.get(action="membership.role_changed")
        assert event.actor == owner
        assert event.account == account
        assert event.object_type == "accounts.membership"
        assert event.object_id == str(member.pk)
        assert event.changes == {"role": ["member", "billing_admin"]}
        assert event.ip_address == "203.0.113.9"

    def test_no_change_writes_nothing(self, account, owner):
        member = MembershipFactory(account=account)
        before = AuditEvent.objects.count()
        services.membership_set_role(actor=owner, membership=member, role="member")
        assert AuditEvent.objects.count() == before

    @pytest.mark.parametrize("role", ["billing_admin", "member"])
    def test_non_owners_cannot_manage(self, account, role):
        actor = MembershipFactory(account=account, role=role)
        other = MembershipFactory(account=account)
        with pytest.raises(NotAllowed):
            services.membership_set_role(actor=actor.user, membership=other, role="owner")
        with pytest.raises(NotAllowed):
            services.membership_deactivate(actor=actor.user, membership=other)
        with pytest.raises(NotAllowed):
            services.invitation_create(actor=actor.user, account=account, email="x@example.com")
        other.refresh_from_db()
        assert other.role == "member" and other.is_active

    def test_owner_of_another_account_cannot_manage(self, account):
        stranger = owner_of(AccountFactory())
        member = MembershipFactory(account=account)
        with pytest.raises(NotAllowed):
            services.membership_set_role(actor=stranger, membership=member, role="owner")

    def test_the_last_owner_cannot_step_down_or_leave(self, account, owner):
        membership = Membership.objects.get(account=account, user=owner)
        with pytest.raises(PortalError, match="only owner"):
            services.membership_set_role(actor=owner, membership=membership, role="member")
        second = MembershipFactory(account=account, role="owner")
        services.membership_set_role(actor=owner, membership=membership, role="member")
        with pytest.raises(PortalError, match="only owner"):
            services.membership_deactivate(actor=second.user, membership=second)

    def test_unknown_role_names_the_field(self, account, owner):
        member = MembershipFactory(account=account)
        with pytest.raises(PortalError) as exc:
            services.membership_set_role(actor=owner, membership=member, role="emperor")
        assert exc.value.field == "role"

    def test_deactivation_frees_the_seat_and_is_audited(self, account, owner):
        member = MembershipFactory(account=account, has_seat=True)
        services.membership_deactivate(actor=owner, membership=member)
        member.refresh_from_db()
        assert not member.is_active and not member.has_seat and member.deactivated_at
        assert AuditEvent.objects.filter(action="membership.deactivated").count() == 1


# --- invitations ---------------------------------------------------------------------


class TestInvitations:
    def test_invitation_mails_a_link_that_accepts(
        self, account, owner, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            invitation, token = services.invitation_create(
                actor=owner, account=account, email="New.Person@Example.com", role="billing_admin"
            )
        assert invitation.email == "new.person@example.com"
        assert len(mail.outbox) == 1
        assert mail.outbox[0].to == ["new.person@example.com"]
        assert f"/invitations/{token}/" in mail.outbox[0].body
        invitation.refresh_from_db()
        assert invitation.sent_at is not None
        assert selectors.invitation_get_by_token(token=token) == invitation

    def test_the_mail_job_is_safe_to_run_twice(
        self, account, owner, django_capture_on_commit_callbacks
    ):
        from accounts.tasks import send_invitation_email

        with django_capture_on_commit_callbacks(execute=True):
            invitation, _ = services.invitation_create(
                actor=owner, account=account, email="twice@example.com"
            )
        invitation.refresh_from_db()
        assert send_invitation_email(invitation.pk, invitation.nonce) is False
        assert len(mail.outbox) == 1
        # A message queued before a resend carries the old nonce: it sends nothing.
        old_nonce = invitation.nonce
        with django_capture_on_commit_callbacks(execute=True):
            services.invitation_resend(actor=owner, invitation=invitation)
        assert len(mail.outbox) == 2
        assert send_invitation_email(invitation.pk, old_nonce) is False
        assert len(mail.outbox) == 2

    def test_tokens_are_not_stored_and_the_broker_carries_none(
        self, account, owner, django_capture_on_commit_callbacks
    ):
        from accounts.models import Invitation

        with django_capture_on_commit_callbacks() as callbacks:
            invitation, token = services.invitation_create(
                actor=owner, account=account, email="secret@example.com"
            )
        row = Invitation.objects.filter(pk=invitation.pk).values().get()
        assert token.split(".")[1] not in str(row)
        assert len(callbacks) == 1
        assert services.invitation_from_token(token) == invitation
        tampered = token[:-1] + ("1" if token[-1] != "1" else "2")
        assert services.invitation_from_token(tampered) is None
        assert services.invitation_from_token("garbage") is None
        assert services.invitation_from_token("99999999999999999999.x") is None

    def test_accept_adds_the_account_to_an_existing_login(self, account):
        user = UserFactory(email="joiner@example.com")
        other = AccountFactory(owner=user)
        invitation = InvitationFactory(account=account, email="joiner@example.com", role="member")
        membership = services.invitation_accept(invitation=invitation, user=user)
        assert membership.account == account and membership.has_seat
        assert {m.account for m in selectors.membership_list_for_user(user=user)} == {
            account,
            other,
        }
        invitation.refresh_from_db()
        assert invitation.status == "accepted" and invitation.accepted_by == user

    def test_accept_is_case_insensitive_on_the_email(self, account):
        user = UserFactory(email="case@example.com")
        invitation = InvitationFactory(account=account, email="CASE@example.com")
        membership = services.invitation_accept(invitation=invitation, user=user)
        assert membership.user == user and membership.account == account and membership.is_active

    def test_expired_invitation_is_refused(self, account):
        user = UserFactory(email="late@example.com")
        invitation = InvitationFactory(
            account=account,
            email="late@example.com",
            expires_at=timezone.now() - timedelta(seconds=1),
        )
        with pytest.raises(PortalError) as exc:
            services.invitation_accept(invitation=invitation, user=user)
        assert exc.value.code == "expired"
        assert not Membership.objects.filter(account=account, user=user).exists()

    def test_reused_invitation_is_refused(self, account):
        user = UserFactory(email="twice@example.com")
        invitation = InvitationFactory(account=account, email="twice@example.com")
        services.invitation_accept(invitation=invitation, user=user)
        with pytest.raises(PortalError) as exc:
            services.invitation_accept(invitation=invitation, user=user)
        assert exc.value.code == "used"

    def test_wrong_email_is_refused(self, account):
        intruder = UserFactory(email="intruder@example.com")
        invitation = InvitationFactory(account=account, email="invited@example.com")
        with pytest.raises(PortalError) as exc:
            services.invitation_accept(invitation=invitation, user=intruder)
        assert exc.value.code == "wrong_email"
        invitation.refresh_from_db()
        assert invitation.status == "pending"

    def test_revoked_invitation_is_refused(self, account, owner):
        user = UserFactory(email="revoked@example.com")
        invitation = InvitationFactory(account=account, email="revoked@example.com")
        services.invitation_revoke(actor=owner, invitation=invitation)
        with pytest.raises(PortalError) as exc:
            services.invitation_accept(invitation=invitation, user=user)
        assert exc.value.code == "revoked"

    def test_signup_from_invitation_creates_a_verified_login(self, account):
        from allauth.account.models import EmailAddress

        invitation = InvitationFactory(account=account, email="fresh@example.com")
        user, membership = services.user_signup_from_invitation(
            invitation=invitation, full_name="Fresh Person", password="a-long-enough-passphrase"
        )
        assert user.check_password("a-long-enough-passphrase")
        assert EmailAddress.objects.get(user=user).verified
        assert membership.account == account

    def test_signup_rejects_a_weak_password_naming_the_field(self, account):
        invitation = InvitationFactory(account=account, email="weak@example.com")
        with pytest.raises(PortalError) as exc:
            services.user_signup_from_invitation(
                invitation=invitation, full_name="W", password="123"
            )
        assert exc.value.field == "password"
        invitation.refresh_from_db()
        assert invitation.status == "pending"

    def test_invite_an_existing_member_is_refused(self, account, owner):
        with pytest.raises(PortalError) as exc:
            services.invitation_create(actor=owner, account=account, email=owner.email)
        assert exc.value.field == "email"

    def test_a_second_pending_invitation_for_one_email_is_refused(self, account, owner):
        services.invitation_create(actor=owner, account=account, email="dup@example.com")
        with pytest.raises(PortalError, match="already has an invitation"):
            services.invitation_create(actor=owner, account=account, email="DUP@example.com")

    def test_resend_replaces_the_link(self, account, owner):
        invitation, old = services.invitation_create(
            actor=owner, account=account, email="lost@example.com"
        )
        invitation, new = services.invitation_resend(actor=owner, invitation=invitation)
        assert old != new
        assert selectors.invitation_get_by_token(token=old) is None
        assert selectors.invitation_get_by_token(token=new) == invitation

    def test_accepting_when_seats_were_reduced_joins_without_a_seat(self, account, owner):
        invitation = InvitationFactory(account=account, email="squeezed@example.com")
        MembershipFactory.create_batch(2, account=account, has_seat=True)  # 3 of 3 + invitation
        user = UserFactory(email="squeezed@example.com")
        membership = services.invitation_accept(invitation=invitation, user=user)
        assert membership.is_active and not membership.has_seat

    def test_sweep_expires_once_and_tells_the_inviter(
        self, account, owner, django_capture_on_commit_callbacks
    ):
        InvitationFactory(
            account=account, invited_by=owner, expires_at=timezone.now() - timedelta(hours=1)
        )
        InvitationFactory(account=account)  # still valid
        with django_capture_on_commit_callbacks(execute=True):
            assert services.invitations_expire() == 1
        with django_capture_on_commit_callbacks(execute=True):
            assert services.invitations_expire() == 0
        assert [m.to for m in mail.outbox] == [[owner.email]]
        assert "expired" in mail.outbox[0].subject
        assert AuditEvent.objects.filter(action="invitation.expired").count() == 1


# --- accounts and profile ------------------------------------------------------------


class TestAccounts:
    def test_account_create_validates_and_audits(self):
        user = UserFactory()
        with pytest.raises(PortalError) as exc:
            services.account_create(owner=user, name="X", timezone_name="Mars/Olympus")
        assert exc.value.field == "timezone"
        with pytest.raises(PortalError) as exc:
            services.account_create(owner=user, name="X", currency="XYZ")
        assert exc.value.field == "currency"
        with pytest.raises(PortalError) as exc:
            services.account_create(owner=user, name="  ")
        assert exc.value.field == "name"
        account = services.account_create(owner=user, name="Initech", timezone_name="Asia/Tokyo")
        assert account.tzinfo.key == "Asia/Tokyo"
        assert AuditEvent.objects.filter(action="account.created", account=account).exists()

    def test_api_token_rotation_invalidates_the_old_key(self):
        from rest_framework.authtoken.models import Token

        user = UserFactory()
        first = services.api_token_rotate(user=user)
        second = services.api_token_rotate(user=user)
        assert first.key != second.key
        assert list(Token.objects.filter(user=user).values_list("key", flat=True)) == [second.key]
        services.api_token_revoke(user=user)
        assert not Token.objects.filter(user=user).exists()
