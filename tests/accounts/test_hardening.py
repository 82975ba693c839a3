"""Regression tests for the security review of the walking skeleton."""

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import RequestFactory, override_settings
from django.urls import reverse

from accounts import services
from accounts.errors import PortalError
from accounts.models import Account, AuditEvent, Invitation, Membership, User
from accounts.request_context import ip_from_request
from tests.factories import (
    PASSWORD,
    AccountFactory,
    InvitationFactory,
    MembershipFactory,
    UserFactory,
    owner_of,
)

pytestmark = pytest.mark.django_db


def staff_client(client, *, superuser=False, group=None):
    staff = UserFactory(is_staff=True, is_superuser=superuser)
    if group:
        staff.groups.add(Group.objects.get(name=group))
    Authenticator.objects.create(user=staff, type=Authenticator.Type.TOTP, data={"secret": "x"})
    client.force_login(staff)
    return staff


class TestStaffConsole:
    def test_passwords_never_reach_the_audit_trail(self, client):
        staff_client(client, superuser=True)
        secret = "Sup3r-Secret-pass!"
        response = client.post(
            reverse("admin:accounts_user_add"),
            {"email": "new.staff@example.com", "password1": secret, "password2": secret},
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        for event in AuditEvent.objects.all():
            assert secret not in str(event.changes)

    def test_an_administrator_cannot_make_anyone_superuser(self, client):
        admin_user = staff_client(client, group="Administrator")
        url = reverse("admin:accounts_user_change", args=[admin_user.pk])
        response = client.post(
            url,
            {
                "email": "changed@example.com",
                "full_name": "Me",
                "is_active": "on",
                "is_staff": "on",
                "is_superuser": "on",
                "date_joined_0": "2026-01-01",
                "date_joined_1": "00:00:00",
            },
        )
        assert response.status_code == 302, response.content.decode()[:3000]
        admin_user.refresh_from_db()
        assert admin_user.full_name == "Me"  # the save went through...
        assert not admin_user.is_superuser  # ...without the fields only superusers may set
        assert admin_user.email != "changed@example.com"
        password_page = client.get(f"/admin/accounts/user/{admin_user.pk}/password/")
        assert password_page.status_code == 403

    def test_api_keys_are_not_in_the_console(self):
        from rest_framework.authtoken.models import TokenProxy

        assert not admin.site.is_registered(TokenProxy)

    def test_accounts_are_not_added_in_the_console(self, client):
        staff_client(client, superuser=True)
        assert client.get("/admin/accounts/account/add/").status_code == 403

    def test_status_moves_follow_the_table_and_are_audited(self, client):
        staff = staff_client(client, group="Administrator")
        account = AccountFactory(status="deactivated", seats_paid=2)
        url = reverse("admin:accounts_account_change", args=[account.pk])
        form = self._account_form(account, status="license_screen")
        response = client.post(url, form)
        assert response.status_code == 200
        assert "cannot go from Deactivated" in response.content.decode()
        account.refresh_from_db()
        assert account.status == "deactivated"
        response = client.post(url, self._account_form(account, status="active"))
        assert response.status_code == 302
        event = AuditEvent.objects.get(action="account.status_changed")
        assert event.changes == {"status": ["deactivated", "active"]} and event.actor == staff

    def test_seats_paid_cannot_drop_below_seats_in_use(self, client):
        staff_client(client, group="Administrator")
        account = AccountFactory(seats_paid=3)
        MembershipFactory.create_batch(2, account=account, has_seat=True)
        url = reverse("admin:accounts_account_change", args=[account.pk])
        response = client.post(url, self._account_form(account, seats_paid="2"))
        assert response.status_code == 200
        assert "3 of 3 licensed seats in use" in response.content.decode()
        account.refresh_from_db()
        assert account.seats_paid == 3

    @staticmethod
    def _account_form(account, **changes):
        membership = Membership.objects.filter(account=account).first()
        form = {
            "name": account.name,
            "status": account.status,
            "timezone": account.timezone,
            "reseller": "",
            "seats_paid": str(account.seats_paid),
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-id": membership.pk,
            "memberships-0-account": account.pk,
        }
        form.update(changes)
        return form


class TestClientAddress:
    def _request(self, xff=None, remote="10.0.0.5"):
        meta = {"REMOTE_ADDR": remote}
        if xff is not None:
            meta["HTTP_X_FORWARDED_FOR"] = xff
        return RequestFactory().get("/", **meta)

    def test_without_proxies_the_socket_address_counts(self):
        assert ip_from_request(self._request(xff="1.2.3.4")) == "10.0.0.5"

    @override_settings(TRUSTED_PROXY_COUNT=1)
    def test_behind_one_proxy_the_entry_it_appended_counts(self):
        # The client wrote "6.6.6.6" itself; the proxy appended what it saw.
        assert ip_from_request(self._request(xff="6.6.6.6, 198.51.100.7")) == "198.51.100.7"

    @override_settings(TRUSTED_PROXY_COUNT=1)
    def test_garbage_falls_back_to_the_socket_address(self):
        assert ip_from_request(self._request(xff="foo")) == "10.0.0.5"
        assert ip_from_request(self._request(xff="", remote="not-an-ip")) is None


class TestNames:
    @pytest.mark.parametrize("name", ["Eve\r\nBcc: all@example.com", "Tab\there", "Nul\x00"])
    def test_control_characters_are_refused_naming_the_field(self, name):
        with pytest.raises(PortalError) as exc:
            services.user_update_profile(user=UserFactory(), full_name=name)
        assert exc.value.field == "full_name"
        with pytest.raises(PortalError) as exc:
            services.account_create(owner=UserFactory(), name=name)
        assert exc.value.field == "name"

    def test_profile_page_shows_the_error(self, client):
        account = AccountFactory()
        client.force_login(owner_of(account))
        response = client.post(reverse("settings_profile"), {"full_name": "A\r\nB"})
        assert response.status_code == 400
        assert "line breaks" in response.content.decode()

    def test_invitation_mail_subject_is_one_line(self, django_capture_on_commit_callbacks):
        from django.core import mail

        account = AccountFactory()
        owner = owner_of(account)
        User.objects.filter(pk=owner.pk).update(full_name="Odd\u2028Name")
        owner.refresh_from_db()
        with django_capture_on_commit_callbacks(execute=True):
            services.invitation_create(actor=owner, account=account, email="x@example.com")
        assert "\n" not in mail.outbox[0].subject and "\u2028" not in mail.outbox[0].subject


class TestInvitationEdges:
    def test_address_held_as_a_secondary_email_must_sign_in(self, client):
        account = AccountFactory()
        holder = UserFactory()
        EmailAddress.objects.create(user=holder, email="second@example.com", verified=False)
        invitation = InvitationFactory(account=account, email="second@example.com")
        url = reverse("invitation_accept", args=[invitation.token])
        assert "already a login" in client.get(url).content.decode()
        with pytest.raises(PortalError) as exc:
            services.user_signup_from_invitation(
                invitation=invitation, full_name="X", password="a-long-passphrase-1"
            )
        assert exc.value.code == "exists"
        assert Invitation.objects.get(pk=invitation.pk).status == "pending"

    def test_a_form_from_another_accounts_tab_changes_nothing(self, client):
        user = UserFactory()
        first = AccountFactory(owner=user, name="First")
        second = AccountFactory(owner=user, name="Second")
        client.force_login(user)
        client.post(reverse("account_switch"), {"account_id": second.pk})
        # The invite form was rendered while "First" was current.
        response = client.post(
            reverse("settings_users"),
            {"account_id": first.pk, "email": "stale@example.com", "role": "owner"},
            follow=True,
        )
        assert "Nothing was changed" in response.content.decode()
        assert not Invitation.objects.filter(email="stale@example.com").exists()


def test_sign_in_asks_for_the_code_once_two_factor_is_on(client):
    from allauth.mfa.totp.internal.auth import TOTP

    account = AccountFactory()
    user = owner_of(account)
    TOTP.activate(user, "JBSWY3DPEHPK3PXP")
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302 and "/2fa/authenticate/" in response.url
    assert "_auth_user_id" not in client.session


@override_settings(DEBUG=False)
def test_demo_data_refuses_without_debug():
    with pytest.raises(CommandError, match="Refusing to load demo logins"):
        call_command("demo_data")
    assert not Account.objects.exists()
