"""'Malformed input on every endpoint gives 400 with field errors, never 500.'

The API answers 400 with a JSON body naming the offending field (`non_field_errors`
when the body as a whole is wrong, `detail` when it is not JSON at all); the pages
answer 400 with the form error in the HTML. Nothing changes on a refused request.
Clients are built with `raise_request_exception=False`, so a crash shows as a 500
status in the assertion rather than as a traceback.
"""

import json
from types import SimpleNamespace

import pytest
from django.test import Client
from django.utils.html import escape
from rest_framework.test import APIClient

from accounts.models import Account, Invitation
from tests.factories import AccountFactory, InvitationFactory, MembershipFactory, owner_of
from tests.snapshots import db_state

pytestmark = pytest.mark.django_db

API = "/api/v1/accounts"
TOO_BIG = 2**63  # one past the largest id a 64-bit primary key can hold
LONG_EMAIL = "a" * 250 + "@example.com"  # passes the email validator, longer than the column


class Raw(str):
    """A request body sent as is, with content type application/json."""


@pytest.fixture
def world():
    account = AccountFactory(name="Alpha Ltd", seats_paid=10)
    return SimpleNamespace(
        account=account,
        owner=owner_of(account),
        member=MembershipFactory(account=account, has_seat=False),
        inactive=MembershipFactory(account=account, has_seat=False, is_active=False),
        invitation=InvitationFactory(account=account),
    )


@pytest.fixture
def api(world):
    client = APIClient()
    client.raise_request_exception = False
    client.force_login(world.owner)
    return client


@pytest.fixture
def page(world):
    client = Client(raise_request_exception=False)
    client.force_login(world.owner)
    return client


def send(client, method: str, path: str, body):
    if isinstance(body, Raw):
        return getattr(client, method)(path, str(body), content_type="application/json")
    return getattr(client, method)(path, json.dumps(body), content_type="application/json")


def assert_400_naming(response, field: str) -> None:
    assert response.status_code == 400, (response.status_code, response.content[:500])
    body = response.json()
    assert isinstance(body, dict) and field in body, body
    if field == "detail":
        assert "JSON parse error" in body["detail"]
    else:
        assert body[field] and all(isinstance(message, str) for message in body[field])


# Shapes every body-reading endpoint must refuse as a whole.
WHOLE_BODY_CASES = [
    pytest.param([], "non_field_errors", id="list-body"),
    pytest.param(["x"], "non_field_errors", id="list-of-strings"),
    pytest.param("text", "non_field_errors", id="string-body"),
    pytest.param(42, "non_field_errors", id="number-body"),
    pytest.param(None, "non_field_errors", id="null-body"),
    pytest.param(Raw("{role: owner"), "detail", id="not-json"),
    pytest.param(Raw("role=owner&has_seat=1"), "detail", id="form-encoded-as-json"),
    pytest.param(Raw("{'role': 'owner'}"), "detail", id="python-literal"),
]


# --- PATCH /accounts/<id>/members/<id>/ ------------------------------------------------

MEMBER_PATCH_CASES = [
    pytest.param({}, "non_field_errors", id="empty-object"),
    # An empty body is an empty object to DRF: "give role, has_seat or both".
    pytest.param(Raw(""), "non_field_errors", id="empty-body"),
    pytest.param({"role": "superuser"}, "role", id="unknown-role"),
    pytest.param({"role": "OWNER"}, "role", id="role-wrong-case"),
    pytest.param({"role": ""}, "role", id="role-empty"),
    pytest.param({"role": None}, "role", id="role-null"),
    pytest.param({"role": ["owner"]}, "role", id="role-list"),
    pytest.param({"role": {"name": "owner"}}, "role", id="role-object"),
    pytest.param({"role": 1}, "role", id="role-number"),
    pytest.param({"has_seat": "maybe"}, "has_seat", id="seat-string"),
    pytest.param({"has_seat": None}, "has_seat", id="seat-null"),
    pytest.param({"has_seat": []}, "has_seat", id="seat-list"),
    pytest.param({"has_seat": {}}, "has_seat", id="seat-object"),
    pytest.param({"has_seat": 2}, "has_seat", id="seat-two"),
    pytest.param({"role": "billing_admin", "has_seat": "maybe"}, "has_seat", id="one-bad-of-two"),
]


@pytest.mark.parametrize(("body", "field"), MEMBER_PATCH_CASES + WHOLE_BODY_CASES)
def test_member_patch_refuses_malformed_input(world, api, body, field):
    before = db_state()
    response = send(api, "patch", f"{API}/{world.account.pk}/members/{world.member.pk}/", body)
    assert_400_naming(response, field)
    assert db_state() == before
    world.member.refresh_from_db()
    assert (world.member.role, world.member.has_seat) == ("member", False)


def test_member_patch_that_is_refused_changes_nothing_at_all(world, api):
    """Role and seat in one PATCH: if the seat is refused, the role must not stay changed."""
    Account.objects.filter(pk=world.account.pk).update(seats_paid=2)  # owner + 1 invitation
    before = db_state()

    response = send(
        api,
        "patch",
        f"{API}/{world.account.pk}/members/{world.member.pk}/",
        {"role": "billing_admin", "has_seat": True},
    )

    assert response.status_code == 400
    assert {"seat", "has_seat"} & set(response.json())
    world.member.refresh_from_db()
    assert world.member.role == "member", "the PATCH was refused but its role change was kept"
    assert db_state() == before


# --- POST /accounts/<id>/members/<id>/reactivate/ ---------------------------------------

REACTIVATE_CASES = [
    pytest.param({"with_seat": "maybe"}, "with_seat", id="string"),
    pytest.param({"with_seat": None}, "with_seat", id="null"),
    pytest.param({"with_seat": []}, "with_seat", id="list"),
    pytest.param({"with_seat": {}}, "with_seat", id="object"),
]


@pytest.mark.parametrize(("body", "field"), REACTIVATE_CASES + WHOLE_BODY_CASES)
def test_reactivate_refuses_malformed_input(world, api, body, field):
    before = db_state()
    response = send(
        api, "post", f"{API}/{world.account.pk}/members/{world.inactive.pk}/reactivate/", body
    )
    assert_400_naming(response, field)
    assert db_state() == before
    world.inactive.refresh_from_db()
    assert not world.inactive.is_active


# --- POST /accounts/<id>/invitations/ ----------------------------------------------------

OK = {"email": "newcomer@example.com", "role": "member", "with_seat": True}

INVITATION_CASES = [
    pytest.param({}, "email", id="empty-object"),
    pytest.param(Raw(""), "email", id="empty-body"),
    pytest.param({"role": "member"}, "email", id="email-missing"),
    pytest.param({**OK, "email": ""}, "email", id="email-empty"),
    pytest.param({**OK, "email": "   "}, "email", id="email-blank"),
    pytest.param({**OK, "email": "not-an-email"}, "email", id="email-invalid"),
    pytest.param({**OK, "email": "two@@example.com"}, "email", id="email-double-at"),
    pytest.param({**OK, "email": "a b@example.com"}, "email", id="email-space"),
    pytest.param({**OK, "email": "nul\x00@example.com"}, "email", id="email-nul"),
    pytest.param({**OK, "email": None}, "email", id="email-null"),
    pytest.param({**OK, "email": ["newcomer@example.com"]}, "email", id="email-list"),
    pytest.param({**OK, "email": {"address": "x@example.com"}}, "email", id="email-object"),
    pytest.param({**OK, "email": 42}, "email", id="email-number"),
    pytest.param({**OK, "email": LONG_EMAIL}, "email", id="email-longer-than-column"),
    pytest.param({**OK, "role": "superuser"}, "role", id="unknown-role"),
    pytest.param({**OK, "role": "Owner"}, "role", id="role-wrong-case"),
    pytest.param({**OK, "role": None}, "role", id="role-null"),
    pytest.param({**OK, "role": ["member"]}, "role", id="role-list"),
    pytest.param({**OK, "with_seat": "maybe"}, "with_seat", id="seat-string"),
    pytest.param({**OK, "with_seat": None}, "with_seat", id="seat-null"),
    pytest.param({**OK, "with_seat": [True]}, "with_seat", id="seat-list"),
]


@pytest.mark.parametrize(("body", "field"), INVITATION_CASES + WHOLE_BODY_CASES)
def test_invitation_create_refuses_malformed_input(world, api, body, field):
    before = db_state()
    response = send(api, "post", f"{API}/{world.account.pk}/invitations/", body)
    assert_400_naming(response, field)
    assert db_state() == before


def test_invitation_create_accepts_the_well_formed_request(world, api):
    # Control for the cases above.
    response = send(api, "post", f"{API}/{world.account.pk}/invitations/", OK)
    assert response.status_code == 201, response.content
    assert Invitation.objects.filter(account=world.account, email=OK["email"]).exists()


# --- PUT /accounts/<id>/support-contact/ ---------------------------------------------------

SUPPORT_CONTACT_CASES = [
    pytest.param({}, "membership", id="missing"),
    pytest.param(Raw(""), "membership", id="empty-body"),
    pytest.param({"membership": "abc"}, "membership", id="string"),
    pytest.param({"membership": ""}, "membership", id="empty-string"),
    pytest.param({"membership": 1.5}, "membership", id="fraction"),
    pytest.param({"membership": True}, "membership", id="bool"),
    pytest.param({"membership": None}, "membership", id="null"),
    pytest.param({"membership": [1]}, "membership", id="list"),
    pytest.param({"membership": {"id": 1}}, "membership", id="object"),
    pytest.param({"membership": -1}, "membership", id="negative"),
    pytest.param({"membership": 0}, "membership", id="zero"),
    pytest.param({"membership": 999_999}, "membership", id="nonexistent"),
    pytest.param({"membership": TOO_BIG}, "membership", id="beyond-bigint"),
    pytest.param({"membership": 10**30}, "membership", id="huge"),
    pytest.param({"membership": "1e3"}, "membership", id="exponent-string"),
]


@pytest.mark.parametrize(("body", "field"), SUPPORT_CONTACT_CASES + WHOLE_BODY_CASES)
def test_support_contact_refuses_malformed_input(world, api, body, field):
    before = db_state()
    response = send(api, "put", f"{API}/{world.account.pk}/support-contact/", body)
    assert_400_naming(response, field)
    assert db_state() == before
    assert owner_of(world.account).memberships.get(account=world.account).is_support_contact


def test_support_contact_refuses_a_deactivated_member(world, api):
    before = db_state()
    response = send(
        api, "put", f"{API}/{world.account.pk}/support-contact/", {"membership": world.inactive.pk}
    )
    assert_400_naming(response, "membership")
    assert db_state() == before


# --- ids in the URL ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(f"{API}/{TOO_BIG}/", id="account-beyond-bigint"),
        pytest.param(f"{API}/{10**30}/members/", id="account-huge"),
        pytest.param(f"{API}/{{account}}/members/{TOO_BIG}/", id="member-beyond-bigint"),
        pytest.param(f"{API}/{{account}}/invitations/{10**30}/resend/", id="invitation-huge"),
    ],
)
def test_api_ids_out_of_range_are_404_not_500(world, api, path):
    path = path.format(account=world.account.pk)
    method = "post" if path.endswith("resend/") else "get"
    response = getattr(api, method)(path)
    assert response.status_code == 404, (response.status_code, response.content[:300])


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(f"{API}/abc/", id="account-not-a-number"),
        pytest.param(f"{API}/{TOO_BIG}/", id="account-beyond-bigint"),
        pytest.param(f"{API}/{{account}}/members/\u00b2/", id="member-superscript"),
        pytest.param("/api/v1/no-such-endpoint/", id="no-such-endpoint"),
    ],
)
def test_an_api_url_no_view_matches_answers_404_in_json(world, api, path):
    """The schema documents every API 404 as `{"detail": ...}`: a URL no view matches
    (its id not a number, say) answers it too, not the site's 404 page."""
    response = api.get(path.format(account=world.account.pk))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_a_page_no_view_matches_is_still_the_sites_404_page(page):
    response = page.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    "query",
    [
        "limit=abc",
        "limit=-1",
        "limit=0",
        "limit=1.5",
        "offset=-5",
        "offset=abc",
        f"offset={10**20}",
        f"limit={10**20}",
        f"limit={TOO_BIG}",
        "limit=\u00b2",
    ],
)
def test_members_list_pagination_parameters_never_500(world, api, query):
    response = api.get(f"{API}/{world.account.pk}/members/?{query}")
    assert response.status_code in (200, 400), (response.status_code, response.content[:300])
    if response.status_code == 400:
        assert {"limit", "offset"} & set(response.json())


# --- pages -----------------------------------------------------------------------------------

INVITE_FORM_CASES = [
    pytest.param(
        {"email": "not-an-email", "role": "member"}, "Enter a valid email address.", id="bad-email"
    ),
    pytest.param({"email": "", "role": "member"}, "This field is required.", id="no-email"),
    pytest.param(
        {"email": "x@example.com", "role": "superuser"}, "Select a valid choice.", id="unknown-role"
    ),
    pytest.param({"email": "x@example.com"}, "This field is required.", id="no-role"),
    pytest.param({"email": LONG_EMAIL, "role": "member"}, None, id="email-longer-than-column"),
]


@pytest.mark.parametrize(("data", "message"), INVITE_FORM_CASES)
def test_invite_form_shows_the_error(world, page, data, message):
    before = db_state()
    response = page.post("/settings/users/", data)
    assert response.status_code == 400, response.status_code
    html = response.content.decode()
    errors = response.context["invite_form"].errors
    assert errors and set(errors) <= {"email", "role"}
    for messages in errors.values():
        for text in messages:
            assert escape(text) in html
    if message:
        assert message in html
    assert db_state() == before


@pytest.mark.parametrize(
    ("action", "target", "data"),
    [
        pytest.param("role", "member", {"role": "superuser"}, id="role-unknown"),
        pytest.param("role", "member", {}, id="role-missing"),
        pytest.param("role", "owner", {"role": "god"}, id="owner-role-unknown"),
        pytest.param("seat", "member", {"has_seat": "2"}, id="seat-unknown"),
        pytest.param("seat", "member", {}, id="seat-missing"),
    ],
)
def test_member_action_with_bad_input_is_400_and_changes_nothing(world, page, action, target, data):
    membership = world.member if target == "member" else world.owner.memberships.get()
    before = db_state()
    response = page.post(f"/settings/users/{membership.pk}/{action}/", data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing changed." in html
    assert ("role:" if action == "role" else "has_seat:") in html
    assert db_state() == before


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        pytest.param(
            {"timezone": "Mars/Olympus_Mons"},
            "timezone",
            "Select a valid choice.",
            id="unknown-timezone",
        ),
        pytest.param({"timezone": ""}, "timezone", "This field is required.", id="no-timezone"),
        pytest.param(
            {"currency": "XYZ"}, "currency", "Select a valid choice.", id="unknown-currency"
        ),
        pytest.param(
            {"currency": "usd"}, "currency", "Select a valid choice.", id="currency-wrong-case"
        ),
        pytest.param({"company": "   "}, "company", "This field is required.", id="blank-name"),
        pytest.param({"company": "x" * 201}, "company", "at most 200 characters", id="long-name"),
        pytest.param(
            {"company": "Acme\x00"}, "company", "Null characters are not allowed.", id="nul-in-name"
        ),
    ],
)
def test_new_account_refuses_bad_input(world, page, data, field, message):
    before = db_state()
    response = page.post(
        "/new-account/", {"company": "Acme", "timezone": "UTC", "currency": "USD", **data}
    )
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert message in response.content.decode()
    assert db_state() == before


@pytest.mark.parametrize(
    ("full_name", "message"),
    [
        pytest.param("x" * 151, "at most 150 characters", id="too-long"),
        pytest.param("Ann\x00", "Null characters are not allowed.", id="nul"),
    ],
)
def test_profile_refuses_bad_input(world, page, full_name, message):
    before = db_state()
    response = page.post("/settings/profile/", {"full_name": full_name})
    assert response.status_code == 400
    assert "full_name" in response.context["form"].errors
    assert message in response.content.decode()
    assert db_state() == before


@pytest.mark.parametrize(
    "account_id",
    [
        pytest.param("", id="empty"),
        pytest.param("abc", id="letters"),
        pytest.param("-1", id="negative"),
        pytest.param("1.0", id="fraction"),
        pytest.param(" 1", id="space"),
        pytest.param("\u00b2", id="superscript-two"),  # str.isdigit() is True, int() fails
        pytest.param(str(TOO_BIG), id="beyond-bigint"),
    ],
)
def test_switch_with_a_malformed_account_id_is_404_not_500(world, page, account_id):
    response = page.post("/switch/", {"account_id": account_id})
    assert response.status_code == 404, response.status_code


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param(
            {
                "full_name": "New Person",
                "password1": "Tr0ub4dor&3-long",
                "password2": "something-else-42",
            },
            "password2",
            id="passwords-differ",
        ),
        pytest.param(
            {"full_name": "New Person", "password1": "123", "password2": "123"},
            "password1",
            id="weak-password",
        ),
        pytest.param(
            {"full_name": "", "password1": "Tr0ub4dor&3-long", "password2": "Tr0ub4dor&3-long"},
            "full_name",
            id="no-name",
        ),
    ],
)
def test_invitation_signup_refuses_bad_input(world, data, field):
    client = Client(raise_request_exception=False)
    before = db_state()
    response = client.post(f"/invitations/{world.invitation.token}/", data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert db_state() == before
