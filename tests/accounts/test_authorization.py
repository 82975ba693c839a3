"""Who may do what, on the customer pages and on the API.

"Another account's object answers 404, exactly as one that does not exist": every
request naming an object of account B, made by an owner of account A, is compared
with the same request naming an id that exists nowhere (status and body), and B is
checked to be untouched afterwards. Then the roles inside one account, anonymous
callers, and CSRF on every form post.
"""

import re
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.middleware import SESSION_ACCOUNT_KEY
from accounts.models import Account, AuditEvent, Invitation, Membership, User
from tests.factories import (
    PASSWORD,
    AccountFactory,
    InvitationFactory,
    MembershipFactory,
    UserFactory,
    owner_of,
)
from tests.snapshots import db_state

pytestmark = pytest.mark.django_db

MISSING = 999_999  # an id no row has
API = "/api/v1/accounts"

# `{% csrf_token %}` renders a freshly masked token each time: blank it before comparing pages.
CSRF_INPUT = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]*"')
CSP_NONCE = re.compile(rb'nonce="[^"]*"')


def page_body(response) -> bytes:
    body = CSRF_INPUT.sub(b'name="csrfmiddlewaretoken" value=""', response.content)
    return CSP_NONCE.sub(b'nonce=""', body)  # new for every response, like the CSRF token


def account_state(account: Account) -> dict:
    return {
        "account": Account.objects.filter(pk=account.pk).values().get(),
        "memberships": list(Membership.objects.filter(account=account).order_by("pk").values()),
        "invitations": list(Invitation.objects.filter(account=account).order_by("pk").values()),
        "audit": AuditEvent.objects.filter(account=account).count(),
    }


@pytest.fixture
def world():
    """Account A (the caller's) and account B (someone else's), each with members and invitations."""
    a = AccountFactory(name="Alpha Ltd", seats_paid=10)
    b = AccountFactory(name="Bravo Ltd", seats_paid=10)
    return SimpleNamespace(
        a=a,
        b=b,
        owner_a=owner_of(a),
        member_a=MembershipFactory(account=a, role=Membership.Role.MEMBER, has_seat=True),
        invitation_a=InvitationFactory(account=a),
        owner_b_membership=Membership.objects.get(account=b, role=Membership.Role.OWNER),
        member_b=MembershipFactory(account=b, role=Membership.Role.MEMBER, has_seat=True),
        inactive_b=MembershipFactory(account=b, has_seat=False, is_active=False),
        invitation_b=InvitationFactory(account=b),
    )


def assert_b_untouched(world, before: dict) -> None:
    assert account_state(world.b) == before
    world.member_b.refresh_from_db()
    assert (world.member_b.role, world.member_b.has_seat, world.member_b.is_active) == (
        Membership.Role.MEMBER,
        True,
        True,
    )
    assert not world.member_b.is_support_contact
    world.inactive_b.refresh_from_db()
    assert not world.inactive_b.is_active and not world.inactive_b.has_seat
    world.owner_b_membership.refresh_from_db()
    assert world.owner_b_membership.is_support_contact and world.owner_b_membership.is_active
    world.invitation_b.refresh_from_db()
    assert world.invitation_b.status == Invitation.Status.PENDING
    assert Invitation.objects.filter(account=world.b).count() == 1


@pytest.fixture
def owner_client(world):
    client = Client()
    client.force_login(world.owner_a)
    return client


@pytest.fixture
def owner_api(world, api_client):
    api_client.force_login(world.owner_a)
    return api_client


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


# --- another account's objects on the pages ------------------------------------------

# action -> (which of B's memberships it is aimed at, form data)
PAGE_MEMBER_ACTIONS = {
    "role": ("member_b", {"role": "owner"}),
    "seat": ("member_b", {"has_seat": "0"}),
    "deactivate": ("member_b", {}),
    "reactivate": ("inactive_b", {"with_seat": "on"}),
    "contact": ("member_b", {}),
}


class TestOtherAccountPages:
    @pytest.mark.parametrize("action", PAGE_MEMBER_ACTIONS)
    def test_member_action_is_404_like_a_missing_member(self, world, owner_client, action):
        attr, data = PAGE_MEMBER_ACTIONS[action]
        before = account_state(world.b)

        foreign = owner_client.post(f"/settings/users/{getattr(world, attr).pk}/{action}/", data)
        missing = owner_client.post(f"/settings/users/{MISSING}/{action}/", data)

        assert foreign.status_code == missing.status_code == 404
        assert page_body(foreign) == page_body(missing)
        assert_b_untouched(world, before)

    @pytest.mark.parametrize("action", ["resend", "revoke"])
    def test_invitation_action_is_404_like_a_missing_invitation(self, world, owner_client, action):
        before = account_state(world.b)
        nonce = world.invitation_b.nonce

        foreign = owner_client.post(f"/settings/invitations/{world.invitation_b.pk}/{action}/")
        missing = owner_client.post(f"/settings/invitations/{MISSING}/{action}/")

        assert foreign.status_code == missing.status_code == 404
        assert page_body(foreign) == page_body(missing)
        assert_b_untouched(world, before)
        world.invitation_b.refresh_from_db()
        assert world.invitation_b.nonce == nonce

    def test_switching_to_another_account_is_404_like_a_missing_account(self, world, owner_client):
        before = account_state(world.b)
        owner_client.get("/")  # settle the session on A

        foreign = owner_client.post("/switch/", {"account_id": world.b.pk})
        missing = owner_client.post("/switch/", {"account_id": MISSING})

        assert foreign.status_code == missing.status_code == 404
        assert page_body(foreign) == page_body(missing)
        assert owner_client.session.get(SESSION_ACCOUNT_KEY) != world.b.pk
        dashboard = owner_client.get("/")
        assert dashboard.context["account"] == world.a
        assert_b_untouched(world, before)

    def test_a_former_owner_of_b_cannot_switch_back_to_it(self, world):
        # Deactivated in B: B is as foreign to them as to anyone.
        Membership.objects.create(
            account=world.b, user=world.owner_a, role=Membership.Role.OWNER, is_active=False
        )
        client = client_for(world.owner_a)
        foreign = client.post("/switch/", {"account_id": world.b.pk})
        missing = client.post("/switch/", {"account_id": MISSING})
        assert foreign.status_code == missing.status_code == 404
        assert page_body(foreign) == page_body(missing)
        assert client.session.get(SESSION_ACCOUNT_KEY) != world.b.pk


# --- another account's objects on the API --------------------------------------------


def _no_body(ids):
    return None


# name -> (method, path template, body builder). Placeholders: account, member, inactive,
# invitation.
API_ENDPOINTS = {
    "account-detail": ("get", "{account}/", _no_body),
    "members-list": ("get", "{account}/members/", _no_body),
    "member-get": ("get", "{account}/members/{member}/", _no_body),
    "member-patch": (
        "patch",
        "{account}/members/{member}/",
        lambda ids: {"role": "owner", "has_seat": False},
    ),
    "member-deactivate": ("post", "{account}/members/{member}/deactivate/", _no_body),
    "member-reactivate": (
        "post",
        "{account}/members/{inactive}/reactivate/",
        lambda ids: {"with_seat": True},
    ),
    "invitations-list": ("get", "{account}/invitations/", _no_body),
    "invitations-create": (
        "post",
        "{account}/invitations/",
        lambda ids: {"email": "newcomer@example.com", "role": "owner", "with_seat": True},
    ),
    "invitation-delete": ("delete", "{account}/invitations/{invitation}/", _no_body),
    "invitation-resend": ("post", "{account}/invitations/{invitation}/resend/", _no_body),
    "support-contact-get": ("get", "{account}/support-contact/", _no_body),
    "support-contact-put": (
        "put",
        "{account}/support-contact/",
        lambda ids: {"membership": ids["member"]},
    ),
}
# Endpoints that name an object inside the account (tried with A's id and B's object).
API_OBJECT_ENDPOINTS = [
    name
    for name, (_, path, _) in API_ENDPOINTS.items()
    if any(key in path for key in ("{member}", "{inactive}", "{invitation}"))
]


def call(client, name: str, ids: dict):
    method, path, body = API_ENDPOINTS[name]
    return getattr(client, method)(f"{API}/{path.format(**ids)}", body(ids), format="json")


def b_ids(world) -> dict:
    return {
        "account": world.b.pk,
        "member": world.member_b.pk,
        "inactive": world.inactive_b.pk,
        "invitation": world.invitation_b.pk,
    }


def missing_ids(account_id=MISSING) -> dict:
    return {"account": account_id, "member": MISSING, "inactive": MISSING, "invitation": MISSING}


class TestOtherAccountApi:
    @pytest.mark.parametrize("name", API_ENDPOINTS)
    def test_other_account_is_404_like_a_missing_account(self, world, owner_api, name):
        before = account_state(world.b)

        foreign = call(owner_api, name, b_ids(world))
        missing = call(owner_api, name, missing_ids())

        assert foreign.status_code == missing.status_code == 404, foreign.content
        assert foreign.json() == missing.json()
        assert_b_untouched(world, before)

    @pytest.mark.parametrize("name", API_OBJECT_ENDPOINTS)
    def test_other_accounts_object_under_own_account_is_404_like_a_missing_one(
        self, world, owner_api, name
    ):
        before_b, before_a = account_state(world.b), account_state(world.a)

        foreign = call(owner_api, name, {**b_ids(world), "account": world.a.pk})
        missing = call(owner_api, name, missing_ids(world.a.pk))

        assert foreign.status_code == missing.status_code == 404, foreign.content
        assert foreign.json() == missing.json()
        assert_b_untouched(world, before_b)
        assert account_state(world.a) == before_a

    def test_support_contact_of_own_account_cannot_name_another_accounts_member(
        self, world, owner_api
    ):
        before_b, before_a = account_state(world.b), account_state(world.a)
        url = f"{API}/{world.a.pk}/support-contact/"

        foreign = owner_api.put(url, {"membership": world.member_b.pk}, format="json")
        missing = owner_api.put(url, {"membership": MISSING}, format="json")

        assert foreign.status_code == missing.status_code == 400
        assert "membership" in foreign.json()
        assert foreign.json() == missing.json()
        assert_b_untouched(world, before_b)
        assert account_state(world.a) == before_a
        assert owner_api.get(url).json()["user"]["email"] == world.owner_a.email

    @pytest.mark.parametrize("name", API_ENDPOINTS)
    def test_former_owner_of_b_gets_404_on_b(self, world, name):
        Membership.objects.create(
            account=world.b, user=world.owner_a, role=Membership.Role.OWNER, is_active=False
        )
        before = account_state(world.b)
        client = api_for(world.owner_a)

        foreign = call(client, name, b_ids(world))
        missing = call(client, name, missing_ids())

        assert foreign.status_code == missing.status_code == 404, foreign.content
        assert foreign.json() == missing.json()
        assert account_state(world.b) == before

    def test_token_authentication_is_scoped_the_same_way(self, world):
        token = Token.objects.create(user=world.owner_a)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        assert client.get(f"{API}/{world.a.pk}/").status_code == 200
        foreign = client.get(f"{API}/{world.b.pk}/members/")
        missing = client.get(f"{API}/{MISSING}/members/")
        assert foreign.status_code == missing.status_code == 404
        assert foreign.json() == missing.json()

    def test_answers_do_not_depend_on_the_sessions_current_account(self, world):
        """Session and token callers get the same JSON for the same URL.

        The pages activate the current account's time zone; the API must not inherit
        it, or one account's data comes back in another account's zone (and token
        clients see different values from browser sessions).
        """
        tokyo = AccountFactory(name="Aaa Tokyo KK", timezone="Asia/Tokyo", owner=world.owner_a)
        session = api_for(world.owner_a)
        switched = session.post("/switch/", {"account_id": tokyo.pk})  # browsing Tokyo
        assert switched.status_code == 302
        token = APIClient()
        token.credentials(
            HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=world.owner_a).key}"
        )
        for path in (f"{API}/{world.a.pk}/members/", f"{API}/{world.a.pk}/invitations/"):
            assert session.get(path).json() == token.get(path).json(), path

    def test_account_list_and_me_show_only_own_accounts(self, world, owner_api):
        accounts = owner_api.get(f"{API}/").json()
        assert [a["id"] for a in accounts] == [world.a.pk]
        me = owner_api.get("/api/v1/me/").json()
        assert [m["account"] for m in me["memberships"]] == [world.a.pk]


# --- roles inside one account --------------------------------------------------------

INVITE = {"email": "newcomer@example.com", "role": "member", "with_seat": "on"}


@pytest.fixture
def billing_admin(world):
    return MembershipFactory(account=world.a, role=Membership.Role.BILLING_ADMIN, has_seat=False)


class TestPlainMember:
    def test_cannot_invite_on_the_page(self, world):
        before = db_state()
        response = client_for(world.member_a.user).post("/settings/users/", INVITE)
        assert response.status_code == 403
        assert db_state() == before

    def test_cannot_invite_through_the_api(self, world):
        before = db_state()
        response = api_for(world.member_a.user).post(
            f"{API}/{world.a.pk}/invitations/",
            {"email": "newcomer@example.com", "role": "member"},
            format="json",
        )
        assert response.status_code == 403
        assert db_state() == before
        assert not Invitation.objects.filter(email="newcomer@example.com").exists()

    def test_cannot_see_users_page_nor_the_members_list(self, world):
        page = client_for(world.member_a.user)
        assert page.get("/settings/users/").status_code == 403
        assert page.get("/settings/billing/").status_code == 403
        api = api_for(world.member_a.user)
        assert api.get(f"{API}/{world.a.pk}/members/").status_code == 403
        assert api.get(f"{API}/{world.a.pk}/invitations/").status_code == 403

    @pytest.mark.parametrize("target", ["self", "owner"])
    def test_cannot_change_roles_on_the_page(self, world, target):
        membership = (
            world.member_a
            if target == "self"
            else Membership.objects.get(account=world.a, user=world.owner_a)
        )
        new_role = "member" if target == "owner" else "owner"
        before = db_state()
        response = client_for(world.member_a.user).post(
            f"/settings/users/{membership.pk}/role/", {"role": new_role}
        )
        assert response.status_code == 403
        assert db_state() == before
        membership.refresh_from_db()
        assert membership.role == ("member" if target == "self" else "owner")

    @pytest.mark.parametrize("target", ["self", "owner"])
    def test_cannot_change_roles_through_the_api(self, world, target):
        membership = (
            world.member_a
            if target == "self"
            else Membership.objects.get(account=world.a, user=world.owner_a)
        )
        new_role = "member" if target == "owner" else "owner"
        before = db_state()
        response = api_for(world.member_a.user).patch(
            f"{API}/{world.a.pk}/members/{membership.pk}/", {"role": new_role}, format="json"
        )
        assert response.status_code == 403
        assert db_state() == before

    def test_cannot_change_the_support_contact(self, world):
        before = db_state()
        response = api_for(world.member_a.user).put(
            f"{API}/{world.a.pk}/support-contact/", {"membership": world.member_a.pk}, format="json"
        )
        assert response.status_code == 403
        assert db_state() == before


class TestBillingAdmin:
    def test_can_read_the_members_list_through_the_api(self, world, billing_admin):
        api = api_for(billing_admin.user)
        response = api.get(f"{API}/{world.a.pk}/members/")
        assert response.status_code == 200
        assert response.json()["count"] == Membership.objects.filter(account=world.a).count() == 3
        assert api.get(f"{API}/{world.a.pk}/members/{world.member_a.pk}/").status_code == 200
        assert client_for(billing_admin.user).get("/settings/billing/").status_code == 200

    def test_another_accounts_member_is_404_like_a_missing_one(self, world, billing_admin):
        api = api_for(billing_admin.user)
        foreign = api.get(f"{API}/{world.a.pk}/members/{world.member_b.pk}/")
        missing = api.get(f"{API}/{world.a.pk}/members/{MISSING}/")
        assert foreign.status_code == missing.status_code == 404
        assert foreign.json() == missing.json()

    def test_cannot_invite(self, world, billing_admin):
        before = db_state()
        api = api_for(billing_admin.user)
        response = api.post(
            f"{API}/{world.a.pk}/invitations/",
            {"email": "newcomer@example.com", "role": "member"},
            format="json",
        )
        assert response.status_code == 403
        assert client_for(billing_admin.user).post("/settings/users/", INVITE).status_code == 403
        assert db_state() == before

    def test_cannot_change_roles_or_seats(self, world, billing_admin):
        before = db_state()
        api = api_for(billing_admin.user)
        for body in ({"role": "owner"}, {"has_seat": False}):
            response = api.patch(
                f"{API}/{world.a.pk}/members/{world.member_a.pk}/", body, format="json"
            )
            assert response.status_code == 403
        response = api.patch(
            f"{API}/{world.a.pk}/members/{billing_admin.pk}/", {"role": "owner"}, format="json"
        )
        assert response.status_code == 403
        page = client_for(billing_admin.user).post(
            f"/settings/users/{billing_admin.pk}/role/", {"role": "owner"}
        )
        assert page.status_code == 403
        assert db_state() == before


# --- anonymous callers ---------------------------------------------------------------


class TestAnonymous:
    @pytest.mark.parametrize(
        "path",
        ["/", "/settings/profile/", "/settings/users/", "/settings/billing/", "/new-account/"],
    )
    def test_pages_redirect_to_login(self, world, path):
        response = Client().get(path)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={path}"

    @pytest.mark.parametrize(
        "path",
        [
            "/switch/",
            "/new-account/",
            "/settings/profile/",
            "/settings/profile/api-token/",
            "/settings/users/",
            "/settings/users/{member}/role/",
            "/settings/users/{member}/deactivate/",
            "/settings/invitations/{invitation}/revoke/",
        ],
    )
    def test_form_posts_redirect_to_login_and_change_nothing(self, world, path):
        path = path.format(member=world.member_a.pk, invitation=world.invitation_a.pk)
        before = db_state()
        response = Client().post(
            path, {"account_id": world.a.pk, "role": "owner", "action": "rotate", **INVITE}
        )
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={path}"
        assert db_state() == before

    @pytest.mark.parametrize("name", API_ENDPOINTS)
    def test_api_refuses_anonymous_callers(self, world, name):
        before = db_state()
        ids = {
            "account": world.a.pk,
            "member": world.member_a.pk,
            "inactive": world.member_a.pk,
            "invitation": world.invitation_a.pk,
        }
        response = call(APIClient(), name, ids)
        assert response.status_code in (401, 403)
        assert "credentials were not provided" in response.json()["detail"]
        assert db_state() == before

    @pytest.mark.parametrize("path", ["/api/v1/me/", f"{API}/"])
    def test_api_me_and_accounts_refuse_anonymous_callers(self, path):
        assert APIClient().get(path).status_code in (401, 403)


# --- CSRF ------------------------------------------------------------------------------

CSRF_FAILED = b"CSRF verification failed"
NEW_PASSWORD = "an-entirely-new-passphrase-42"


def csrf_client(user=None, first_page="/settings/profile/") -> Client:
    """A browser-like client: it holds the CSRF cookie, but the posts carry no token."""
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    client.get(first_page if user is not None else "/accounts/login/")
    assert settings.CSRF_COOKIE_NAME in client.cookies
    return client


class TestCsrf:
    """'CSRF is enforced on every form post.'"""

    @pytest.fixture
    def csrf_world(self, world):
        world.second_a = AccountFactory(name="Alpha Two", owner=world.owner_a)
        world.inactive_a = MembershipFactory(account=world.a, has_seat=False, is_active=False)
        world.invitee = UserFactory(email=world.invitation_a.email)
        return world

    def _owner_posts(self, w):
        member, inactive, inv = w.member_a.pk, w.inactive_a.pk, w.invitation_a.pk
        return {
            "switch": ("/switch/", {"account_id": w.second_a.pk}),
            "new-account": (
                "/new-account/",
                {"company": "Sneaky Co", "timezone": "UTC", "currency": "USD"},
            ),
            "profile": ("/settings/profile/", {"full_name": "Changed By Attacker"}),
            "api-token": ("/settings/profile/api-token/", {"action": "rotate"}),
            "invite": ("/settings/users/", INVITE),
            "member-role": (f"/settings/users/{member}/role/", {"role": "owner"}),
            "member-seat": (f"/settings/users/{member}/seat/", {"has_seat": "0"}),
            "member-deactivate": (f"/settings/users/{member}/deactivate/", {}),
            "member-reactivate": (f"/settings/users/{inactive}/reactivate/", {"with_seat": "on"}),
            "member-contact": (f"/settings/users/{member}/contact/", {}),
            "invitation-resend": (f"/settings/invitations/{inv}/resend/", {}),
            "invitation-revoke": (f"/settings/invitations/{inv}/revoke/", {}),
            "logout": ("/accounts/logout/", {}),
            "password-change": (
                "/accounts/password/change/",
                {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
            ),
        }

    @pytest.mark.parametrize(
        "name",
        [
            "switch",
            "new-account",
            "profile",
            "api-token",
            "invite",
            "member-role",
            "member-seat",
            "member-deactivate",
            "member-reactivate",
            "member-contact",
            "invitation-resend",
            "invitation-revoke",
            "logout",
            "password-change",
        ],
    )
    def test_signed_in_form_post_without_token_is_refused(self, csrf_world, name):
        path, data = self._owner_posts(csrf_world)[name]
        client = csrf_client(csrf_world.owner_a)
        account_before = client.session.get(SESSION_ACCOUNT_KEY)
        before = db_state()

        response = client.post(path, data)

        assert response.status_code == 403
        assert CSRF_FAILED in response.content
        assert db_state() == before
        assert client.session.get(SESSION_ACCOUNT_KEY) == account_before
        assert client.session.get(SESSION_KEY) == str(csrf_world.owner_a.pk)  # still signed in
        csrf_world.owner_a.refresh_from_db()
        assert csrf_world.owner_a.check_password(PASSWORD)

    def test_accepting_an_invitation_signed_in_without_token_is_refused(self, csrf_world):
        client = csrf_client(
            csrf_world.invitee, first_page=f"/invitations/{csrf_world.invitation_a.token}/"
        )
        before = db_state()
        response = client.post(f"/invitations/{csrf_world.invitation_a.token}/")
        assert response.status_code == 403
        assert CSRF_FAILED in response.content
        assert db_state() == before
        csrf_world.invitation_a.refresh_from_db()
        assert csrf_world.invitation_a.status == Invitation.Status.PENDING

    def test_signing_up_from_an_invitation_without_token_is_refused(self, world):
        client = csrf_client()
        before = db_state()
        response = client.post(
            f"/invitations/{world.invitation_a.token}/",
            {"full_name": "New Person", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        )
        assert response.status_code == 403
        assert CSRF_FAILED in response.content
        assert db_state() == before
        assert SESSION_KEY not in client.session

    def test_login_without_token_is_refused(self, world):
        client = csrf_client()
        response = client.post(
            "/accounts/login/", {"login": world.owner_a.email, "password": PASSWORD}
        )
        assert response.status_code == 403
        assert CSRF_FAILED in response.content
        assert SESSION_KEY not in client.session
        assert client.get("/").status_code == 302  # still anonymous

    def test_signup_without_token_is_refused(self, world):
        client = csrf_client()
        before = db_state()
        response = client.post(
            "/accounts/signup/",
            {
                "email": "fresh@example.com",
                "password1": NEW_PASSWORD,
                "password2": NEW_PASSWORD,
                "full_name": "Fresh Person",
                "company": "Fresh Co",
                "timezone": "UTC",
                "currency": "USD",
            },
        )
        assert response.status_code == 403
        assert CSRF_FAILED in response.content
        assert db_state() == before
        assert not User.objects.filter(email="fresh@example.com").exists()

    def test_the_harness_lets_a_post_with_the_token_through(self, world):
        # Control: the refusals above are CSRF, not something else in the set-up.
        client = csrf_client(world.owner_a)
        token = client.cookies[settings.CSRF_COOKIE_NAME].value
        response = client.post(
            "/settings/profile/", {"full_name": "Renamed", "csrfmiddlewaretoken": token}
        )
        assert response.status_code == 302
        world.owner_a.refresh_from_db()
        assert world.owner_a.full_name == "Renamed"

    def test_api_with_session_auth_needs_the_token(self, world):
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(world.owner_a)
        before = db_state()
        response = client.post(
            f"{API}/{world.a.pk}/invitations/",
            {"email": "newcomer@example.com", "role": "member"},
            format="json",
        )
        assert response.status_code == 403
        assert "CSRF" in response.json()["detail"]
        assert db_state() == before

    def test_api_with_session_auth_and_the_token_is_accepted(self, world):
        # Control for the test above.
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(world.owner_a)
        client.get("/settings/profile/")
        token = client.cookies[settings.CSRF_COOKIE_NAME].value
        response = client.post(
            f"{API}/{world.a.pk}/invitations/",
            {"email": "newcomer@example.com", "role": "member"},
            format="json",
            HTTP_X_CSRFTOKEN=token,
        )
        assert response.status_code == 201, response.content
