"""Customer pages, end to end through the test client."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse

from accounts.models import Account, Invitation, Membership, User
from tests.factories import (
    PASSWORD,
    AccountFactory,
    InvitationFactory,
    MembershipFactory,
    UserFactory,
    owner_of,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def account():
    return AccountFactory(name="Acme", seats_paid=3)


@pytest.fixture
def owner_client(client, account):
    client.force_login(owner_of(account))
    return client


def test_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302 and response.url.startswith(reverse("account_login"))


def test_sign_up_creates_a_company_account_after_email_verification(client):
    response = client.post(
        reverse("account_signup"),
        {
            "email": "founder@startup.example",
            "password1": "a-strong-passphrase-1",
            "password2": "a-strong-passphrase-1",
            "full_name": "Fay Founder",
            "company": "Startup Ltd",
            "timezone": "Europe/Paris",
            "currency": "EUR",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(email="founder@startup.example")
    account = Account.objects.get(name="Startup Ltd")
    membership = Membership.objects.get(user=user, account=account)
    assert membership.role == "owner" and membership.has_seat and membership.is_support_contact
    assert account.timezone == "Europe/Paris" and account.currency == "EUR"
    # Mandatory verification: the link in the mail signs them in.
    link = re.search(r"http://testserver(/accounts/confirm-email/\S+)", mail.outbox[-1].body).group(
        1
    )
    client.post(link)
    assert EmailAddress.objects.get(user=user).verified
    page = client.get("/")
    assert page.status_code == 200 and "Startup Ltd" in page.content.decode()


def test_sign_in_with_email_and_password(client, account):
    response = client.post(
        reverse("account_login"), {"login": owner_of(account).email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert "Acme" in client.get("/").content.decode()


def test_dashboard_shows_seats_and_contact(owner_client, account):
    body = owner_client.get("/").content.decode()
    assert "1 of 3" in body
    assert owner_of(account).email in body


def test_switcher_changes_the_current_account(client, account):
    user = owner_of(account)
    other = AccountFactory(name="Other Co", owner=UserFactory())
    MembershipFactory(account=other, user=user, has_seat=False)
    client.force_login(user)
    assert "Users &amp; seats" in client.get(reverse("settings_profile")).content.decode()
    response = client.post(reverse("account_switch"), {"account_id": other.pk})
    assert response.status_code == 302
    body = client.get("/").content.decode()
    assert "<h1>Other Co</h1>" in body
    # A member there: no Users & seats tab, and the page is forbidden.
    assert client.get(reverse("settings_users")).status_code == 403


def test_users_page_invites_and_manages(owner_client, account):
    response = owner_client.post(
        reverse("settings_users"),
        {"email": "new@example.com", "role": "member", "with_seat": "on"},
    )
    assert response.status_code == 302
    assert Invitation.objects.get(account=account).email == "new@example.com"
    member = MembershipFactory(account=account, has_seat=False)
    owner_client.post(reverse("member_action", args=[member.pk, "seat"]), {"has_seat": "1"})
    owner_client.post(reverse("member_action", args=[member.pk, "role"]), {"role": "billing_admin"})
    owner_client.post(reverse("member_action", args=[member.pk, "contact"]))
    member.refresh_from_db()
    assert member.has_seat and member.role == "billing_admin" and member.is_support_contact
    page = owner_client.get(reverse("settings_users")).content.decode()
    assert "3 of 3" in page and "new@example.com" in page


def test_seat_refusal_is_shown_on_the_page(owner_client, account):
    MembershipFactory.create_batch(2, account=account, has_seat=True)
    spare = MembershipFactory(account=account, has_seat=False)
    response = owner_client.post(
        reverse("member_action", args=[spare.pk, "seat"]), {"has_seat": "1"}, follow=True
    )
    assert response.redirect_chain == [(reverse("settings_users"), 302)]
    body = response.content.decode()
    assert "3 of 3 seats are in use" in body and "Add seats" in body


def test_billing_tab_for_owner_and_billing_admin_only(client, account):
    admin = MembershipFactory(account=account, role="billing_admin", has_seat=True)
    plain = MembershipFactory(account=account, role="member", has_seat=False)
    client.force_login(admin.user)
    assert client.get(reverse("settings_billing")).status_code == 200
    assert "1 free" in client.get(reverse("billing_plan")).content.decode()
    client.force_login(plain.user)
    assert client.get(reverse("settings_billing")).status_code == 403
    assert client.get(reverse("billing_plan")).status_code == 403
    assert client.get(reverse("settings_profile")).status_code == 200


def test_reseller_account_says_who_bills_it(client):
    from tests.factories import ResellerFactory

    account = AccountFactory(reseller=ResellerFactory(name="Northwind"))
    client.force_login(owner_of(account))
    assert "bought through <strong>Northwind</strong>" in client.get("/").content.decode()


def test_profile_saves_the_name_and_makes_an_api_token(owner_client, account):
    owner_client.post(reverse("settings_profile"), {"full_name": "Olivia O."})
    assert User.objects.get(pk=owner_of(account).pk).full_name == "Olivia O."
    owner_client.post(reverse("api_token"), {"action": "rotate"})
    page = owner_client.get(reverse("settings_profile")).content.decode()
    key = re.search(r'data-testid="api-token">(\w+)<', page).group(1)
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/me/").json()["email"] == owner_of(account).email
    # Shown once only.
    assert key not in owner_client.get(reverse("settings_profile")).content.decode()


def test_user_without_an_account_is_asked_to_create_one(client):
    user = UserFactory()
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 302 and response.url == reverse("account_new")
    response = client.post(
        reverse("account_new"), {"company": "Solo", "timezone": "UTC", "currency": "USD"}
    )
    assert response.status_code == 302
    assert Membership.objects.get(user=user).account.name == "Solo"


class TestInvitationPage:
    def test_new_person_signs_up_from_the_link(self, client, account):
        invitation = InvitationFactory(account=account, email="newbie@example.com")
        url = reverse("invitation_accept", args=[invitation.token])
        assert "Create your login" in client.get(url).content.decode()
        response = client.post(
            url,
            {
                "full_name": "New Bie",
                "password1": "long-pass-phrase-9",
                "password2": "long-pass-phrase-9",
            },
        )
        assert response.status_code == 302
        assert client.get("/").status_code == 200
        assert Membership.objects.get(user__email="newbie@example.com").account == account

    def test_existing_login_is_asked_to_sign_in_then_accepts(self, client, account):
        user = UserFactory(email="known@example.com")
        invitation = InvitationFactory(account=account, email="known@example.com")
        url = reverse("invitation_accept", args=[invitation.token])
        body = client.get(url).content.decode()
        assert "already a login" in body and f"?next={url}" in body
        client.force_login(user)
        response = client.post(url)
        assert response.status_code == 302
        assert Membership.objects.filter(user=user, account=account, is_active=True).exists()
        # The link is spent.
        assert client.get(url).status_code == 410

    def test_wrong_login_is_told_and_nothing_changes(self, client, account):
        invitation = InvitationFactory(account=account, email="right@example.com")
        client.force_login(UserFactory(email="wrong@example.com"))
        url = reverse("invitation_accept", args=[invitation.token])
        assert "sign out, then open the link again" in client.get(url).content.decode()
        response = client.post(url)
        assert response.status_code == 400
        invitation.refresh_from_db()
        assert invitation.status == "pending"

    def test_unknown_and_expired_links(self, client, account):
        from datetime import timedelta

        from django.utils import timezone

        assert client.get(reverse("invitation_accept", args=["nope"])).status_code == 404
        old = InvitationFactory(account=account, expires_at=timezone.now() - timedelta(days=1))
        response = client.get(reverse("invitation_accept", args=[old.token]))
        assert response.status_code == 410 and "expired" in response.content.decode()


def test_staff_need_mfa_for_the_console(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    response = client.get("/admin/")
    assert response.status_code == 302 and response.url.startswith(reverse("mfa_activate_totp"))
    from allauth.mfa.models import Authenticator

    Authenticator.objects.create(user=staff, type=Authenticator.Type.TOTP, data={"secret": "x"})
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/accounts/auditevent/").status_code == 200


def test_staff_roles_exist_with_permissions():
    from django.contrib.auth.models import Group

    admin = Group.objects.get(name="Administrator")
    reviewer = Group.objects.get(name="Billing reviewer")
    agent = Group.objects.get(name="Support agent")
    assert admin.permissions.filter(codename="change_membership").exists()
    assert reviewer.permissions.filter(codename="view_auditevent").exists()
    assert not reviewer.permissions.filter(codename="change_membership").exists()
    assert agent.permissions.filter(codename="view_account").exists()


def test_admin_account_edit_is_audited(client):
    from allauth.mfa.models import Authenticator

    from accounts.models import AuditEvent

    staff = UserFactory(is_staff=True, is_superuser=True)
    Authenticator.objects.create(user=staff, type=Authenticator.Type.TOTP, data={"secret": "x"})
    account = AccountFactory(seats_paid=2)
    client.force_login(staff)
    url = reverse("admin:accounts_account_change", args=[account.pk])
    form = {
        "name": account.name,
        "status": "active",
        "timezone": "UTC",
        "currency": "USD",
        "reseller": "",
        "seats_paid": "7",
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "1",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-id": Membership.objects.get(account=account).pk,
        "memberships-0-account": account.pk,
    }
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    account.refresh_from_db()
    assert account.seats_paid == 7
    event = AuditEvent.objects.get(action="account.seats_paid_changed")
    assert event.changes == {"seats_paid": [2, 7]} and event.actor == staff


def test_password_reset_by_mail_then_sign_in(client, account):
    email = owner_of(account).email
    client.post(reverse("account_reset_password"), {"email": email})
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+)", mail.outbox[-1].body)
    response = client.get(link.group(1), follow=True)
    form_url = response.redirect_chain[-1][0] if response.redirect_chain else link.group(1)
    response = client.post(
        form_url, {"password1": "brand-new-passphrase-7", "password2": "brand-new-passphrase-7"}
    )
    assert response.status_code == 302
    client.logout()
    response = client.post(
        reverse("account_login"), {"login": email, "password": "brand-new-passphrase-7"}
    )
    assert response.status_code == 302
    from accounts.models import AuditEvent

    assert AuditEvent.objects.filter(action="user.password_reset").exists()


def test_sign_out_and_password_change(client, account):
    user = owner_of(account)
    client.force_login(user)
    response = client.post(
        reverse("account_change_password"),
        {
            "oldpassword": PASSWORD,
            "password1": "another-passphrase-3",
            "password2": "another-passphrase-3",
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("another-passphrase-3")
    client.post(reverse("account_logout"))
    assert client.get("/").status_code == 302


def test_api_account_list_gives_each_accounts_seat_usage(api_client, django_assert_num_queries):
    user = UserFactory()
    first = AccountFactory(owner=user, seats_paid=4)
    MembershipFactory(account=first, has_seat=True)
    InvitationFactory(account=first)
    second = AccountFactory(seats_paid=2)
    MembershipFactory(account=second, user=user, has_seat=False)
    api_client.force_authenticate(user)
    with django_assert_num_queries(1):
        rows = api_client.get("/api/v1/accounts/").json()
    used = {row["id"]: (row["seats_used"], row["seats_paid"]) for row in rows}
    assert used == {first.pk: (3, 4), second.pk: (1, 2)}
    detail = api_client.get(f"/api/v1/accounts/{first.pk}/").json()
    assert detail["seats_used"] == 3
