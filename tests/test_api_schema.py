"""Every operation of /api/schema/ against the live server, as the owner of a demo-like
account (with the owner's API token; the developer API with the app's secret; one call
in six signed out): any server error, or any answer the schema does not describe (its
status, content type, headers or body), fails. Then what the schema says of pages,
nullable fields, errors and enums, checked on the schema itself."""

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import schemathesis
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from billing import services as billing
from billing.models import CreditNote, Invoice, Price, Product, Subscription
from marketplace import services as marketplace
from refunds import services as refunds
from support import services as support
from tests.factories import AccountFactory, InvitationFactory, MembershipFactory, owner_of
from tests.marketplace.conftest import developer, make_app, staff  # noqa: F401

EXAMPLES = 25  # per operation: about a minute for the whole schema on two cores
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def clock():
    """A Tuesday in mid-November, 12:00 in New York, ticking: the same day whenever the
    suite runs (the live server's thread reads the same clock)."""
    with time_machine.travel(datetime(2026, 11, 10, 17, 0, tzinfo=UTC), tick=True):
        yield


@pytest.fixture
def demo(clock, transactional_db, make_app, staff, billing_staff):  # noqa: F811
    """Acme as the demo has it: a plan, members, an invitation, paid purchases, a refund
    request credited and one open, an incident, an installed app; the owner's API token
    and the app's developer secret."""
    today = date(2026, 11, 10)
    account = AccountFactory(name="Acme Corporation", timezone="America/New_York", seats_paid=5)
    owner = owner_of(account)
    MembershipFactory(account=account, role="billing_admin")
    member = MembershipFactory(account=account, role="member", has_seat=False)
    invitation = InvitationFactory(account=account, invited_by=owner)
    plan = Price.objects.create(
        product=Product.objects.create(
            code="professional-cloud",
            name="Professional (cloud)",
            kind="subscription",
            edition="professional",
            deployment="cloud",
        ),
        currency="USD",
        amount=Decimal("29"),
        scheme="per_seat",
        interval="month",
    )
    enterprise = Price.objects.create(
        product=Product.objects.create(
            code="enterprise-cloud",
            name="Enterprise (cloud)",
            kind="subscription",
            edition="enterprise",
            deployment="cloud",
        ),
        currency="USD",
        amount=Decimal("49"),
        scheme="per_seat",
        interval="month",
    )
    Subscription.objects.create(
        account=account,
        price=plan,
        quantity=5,
        current_period_start=today.replace(day=1),
        current_period_end=date(2026, 12, 1),
    )
    shop = {}
    for code, kind, amount, extra in [
        ("credits-100k", "credit_pack", "100", {"units": 100_000}),
        ("aurius-plugin", "plugin", "49", {}),
        ("storage-50gb", "quota_addon", "20", {}),
        ("extra-incident", "support_incident", "150", {}),
    ]:
        product = Product.objects.create(code=code, name=code.title(), kind=kind, **extra)
        shop[code] = Price.objects.create(
            product=product, currency="USD", amount=Decimal(amount), interval="one_off"
        )
    shop["sms-usage"] = Price.objects.create(
        product=Product.objects.create(code="sms-usage", name="SMS messages", kind="usage"),
        currency="USD",
        amount=Decimal("0.04"),
        interval="month",
    )
    order = billing.purchase_place(
        actor=owner,
        account=account,
        items=[{"price": shop[code].pk} for code in ("credits-100k", "aurius-plugin")],
    )
    billing.payment_record_manual(actor=billing_staff, order=order, reference="DEMO-1")
    credited = refunds.refund_request_submit(
        actor=owner,
        account=account,
        line_ids=[order.lines.get(kind="plugin").pk],
        reason="no_longer_needed",
        payout_method="credit",
        text="We did not use it.",
    )
    for line in credited.lines.all():
        refunds.refund_line_decide(actor=billing_staff, line=line, approve=True)
    refunds.refund_request_decide(actor=billing_staff, request=credited)
    refund = refunds.refund_request_submit(
        actor=owner,
        account=account,
        line_ids=[order.lines.get(kind="credit_pack").pk],
        reason="no_longer_needed",
        payout_method="original",
    )
    incident = support.incident_open(
        actor=owner,
        account=account,
        subject="Imports fail",
        description="The CSV import stops at row 10.",
        severity="P3",
    )
    app = make_app("sms", "usage", "0.05", unit_name="message")
    make_app("deal-digest", "subscription", "31", category="sales")
    installation = marketplace.installation_install(
        actor=owner, account=account, app=app, plan=app.plans.get(), usage_cap="5.00"
    ).installation
    secret = marketplace.app_api_key_rotate(actor=staff, app=app)
    invoice = Invoice.objects.get(order=order)
    numbers = {
        "invoices": invoice.number,
        "credit-notes": CreditNote.objects.get(invoice=invoice).number,
        "refund-requests": refund.number,
        "incidents": incident.number,
    }
    common = {
        "account_id": account.pk,
        "membership_id": member.pk,
        "invitation_id": invitation.pk,
        "subscription_id": Subscription.objects.get(account=account).pk,
        "order_id": order.pk,
        "installation_id": installation.pk,
        "slug": app.slug,
    }

    def path_parameters(path: str) -> dict:
        """The path parameters naming a row of the demo's, for the operation at `path`."""
        number = next((n for part, n in numbers.items() if f"/{part}/" in path), None)
        return {**common, "number": number} if number else common

    return {
        "path_parameters": path_parameters,
        # What a body names a row by, and the demo's rows it may name.
        "body": {
            "price": [plan.pk, enterprise.pk, *(price.pk for price in shop.values())],
            "lines": list(order.lines.values_list("pk", flat=True)),
            "membership": list(account.memberships.values_list("pk", flat=True)),
            "product": ["credits-100k", "sms-usage"],
            "app": ["deal-digest", "sms"],
            "plan": ["main"],
        },
        "token": Token.objects.create(user=owner).key,
        "app_secret": secret,
    }


def _cases(operation, path_parameters: dict):
    """Valid and invalid requests; half of them about the demo's own rows, the rest about
    ids that are not the account's (its own account always: any other answers 404)."""
    names = {parameter.name for parameter in operation.path_parameters}
    aimed = {name: str(value) for name, value in path_parameters.items() if name in names}
    return st.one_of(
        *(
            operation.as_strategy(mode, path_parameters=params)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
            for params in (aimed, {k: v for k, v in aimed.items() if k == "account_id"})
        )
    )


def _aim(value, rows: dict, data):
    """The body with some of the ids and codes it names swapped for the demo's rows, so a
    request gets past "no such price" to the service behind it."""
    if isinstance(value, list):
        return [_aim(item, rows, data) for item in value]
    if not isinstance(value, dict):
        return value
    aimed = {}
    for key, item in value.items():
        if key in rows and data.draw(st.booleans(), label=f"aim {key}"):
            choice = st.sampled_from(rows[key])
            item = data.draw(
                st.lists(choice, min_size=1, max_size=3, unique=True)
                if isinstance(item, list)
                else choice,
                label=key,
            )
        aimed[key] = _aim(item, rows, data)
    return aimed


def test_every_operation_answers_what_its_schema_says(live_server, demo, subtests):
    # One test, one subtest per operation, rather than schemathesis' own parametrize: the
    # demo is built once (a test per operation would build it seventy times), and its
    # fixture-based loader does not run on pytest 9.2.
    schema = schemathesis.openapi.from_url(
        f"{live_server.url}/api/schema/",
        # Credentials are the demo's, sent below: no made-up Authorization headers.
        config=schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}}),
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 60
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            case=_cases(operation, demo["path_parameters"](operation.path)),
            signed_in=st.sampled_from([True] * 5 + [False]),
            data=st.data(),
        )
        def run(case, signed_in, data):
            if isinstance(case.body, dict):
                case.body = _aim(case.body, demo["body"], data)
            headers = {}
            if signed_in and case.path.startswith("/api/v1/developer/"):
                headers["Authorization"] = f"Bearer {demo['app_secret']}"
            elif signed_in:
                headers["Authorization"] = f"Token {demo['token']}"
            case.call_and_validate(base_url=live_server.url, headers=headers, checks=CHECKS)

        with subtests.test(msg=operation.label):
            run()


# --- the schema itself ------------------------------------------------------------------

PAGED = [
    "/api/v1/accounts/{account_id}/members/",
    "/api/v1/accounts/{account_id}/orders/",
    "/api/v1/accounts/{account_id}/payments/",
    "/api/v1/accounts/{account_id}/invoices/",
    "/api/v1/accounts/{account_id}/credit-notes/",
    "/api/v1/accounts/{account_id}/refund-requests/",
    "/api/v1/accounts/{account_id}/incidents/",
    "/api/v1/accounts/{account_id}/installations/",
    "/api/v1/marketplace/apps/",
    "/api/v1/developer/installations/",
]


@pytest.fixture(scope="module")
def served(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def _component(schema: dict, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def _body(operation: dict, status: str) -> dict:
    return operation["responses"][status]["content"]["application/json"]["schema"]


@pytest.mark.parametrize("path", PAGED)
def test_a_list_that_answers_a_page_is_documented_as_one(served, path):
    get = served["paths"][path]["get"]
    page = _component(served, _body(get, "200")["$ref"])
    assert set(page["properties"]) == {"count", "next", "previous", "results"}
    assert page["properties"]["results"]["type"] == "array"
    assert page["properties"]["next"]["nullable"] is True
    assert {"limit", "offset"} <= {parameter["name"] for parameter in get["parameters"]}


@pytest.mark.parametrize(
    ("component", "field"),
    [
        ("AccountOut", "reseller"),
        ("SubscriptionOut", "pending_plan"),
        ("DocumentLineOut", "period_end"),
        ("InstallationOut", "pending_plan"),
    ],
)
def test_a_field_that_can_be_null_is_documented_nullable(served, component, field):
    assert served["components"]["schemas"][component]["properties"][field]["nullable"] is True


def test_every_operation_documents_the_errors_it_can_answer(served):
    for path, method, operation in _operations(served):
        where = f"{method.upper()} {path}"
        if path != "/api/v1/licences/activate/":  # the key is the credential
            for status in ("401", "403"):
                assert _body(operation, status) == {"$ref": "#/components/schemas/ErrorOut"}, where
        if "{" in path:
            assert _body(operation, "404") == {"$ref": "#/components/schemas/ErrorOut"}, where
        if method != "get":
            assert _body(operation, "400") == {"$ref": "#/components/schemas/BadRequestOut"}, where
    bad_request = served["components"]["schemas"]["BadRequestOut"]["oneOf"]
    assert {"$ref": "#/components/schemas/ValidationErrorOut"} in bad_request
    assert served["components"]["schemas"]["ErrorOut"]["required"] == ["detail"]


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        # Another account's purchase looks missing.
        ("post", "/api/v1/refunds/quote/", {"404"}),
        ("post", "/api/v1/refund-requests/", {"404"}),
        # The licence screen: everything but billing and refunds answers 402.
        ("get", "/api/v1/accounts/{account_id}/members/", {"402"}),
        ("post", "/api/v1/accounts/{account_id}/incidents/", {"402"}),
        # A bad category answers 400.
        ("get", "/api/v1/marketplace/apps/", {"400"}),
        # Throttled even where the other operations are not.
        ("post", "/api/v1/licences/activate/", {"400", "429"}),
        ("post", "/api/v1/developer/installations/{installation_id}/usage/", {"402", "429"}),
    ],
)
def test_the_answers_beyond_the_usual_errors_are_documented(served, method, path, statuses):
    assert statuses <= set(served["paths"][path][method]["responses"])


def test_billing_stays_open_on_the_licence_screen(served):
    for path in ("/api/v1/accounts/{account_id}/billing/", "/api/v1/accounts/{account_id}/orders/"):
        assert "402" not in served["paths"][path]["get"]["responses"]


def test_a_developers_usage_past_the_cap_names_the_field(served):
    operation = served["paths"]["/api/v1/developer/installations/{installation_id}/usage/"]["post"]
    assert _body(operation, "402") == {"$ref": "#/components/schemas/ValidationErrorOut"}


@pytest.mark.parametrize(
    ("component", "field", "enum"),
    [
        ("IncidentListOut", "state", "IncidentStateEnum"),
        ("IncidentListOut", "channel", "IncidentChannelEnum"),
        ("RefundRequestDetailOut", "state", "RefundRequestStateEnum"),
        ("RefundRequestDetailOut", "channel", "RefundRequestChannelEnum"),
        ("AppLicenceOut", "state", "InstallationStateEnum"),
        ("AccountOut", "status", "AccountStatusEnum"),
        ("PaymentOut", "status", "PaymentStatusEnum"),
        ("LedgerEntryOut", "kind", "LedgerEntryKindEnum"),
    ],
)
def test_a_choice_set_has_its_own_name(served, component, field, enum):
    assert served["components"]["schemas"][component]["properties"][field] == {
        "$ref": f"#/components/schemas/{enum}"
    }


def test_no_enum_is_named_after_the_serializer_it_is_in(served):
    # drf-spectacular's name for two choice sets under one field name: rename each in
    # SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].
    named_after = re.compile(r"Out[A-Z]\w*Enum$")  # SupportRefusalOutKindEnum, say
    assert [name for name in served["components"]["schemas"] if named_after.search(name)] == []


def test_an_id_in_a_path_is_a_positive_integer(served):
    [parameter] = served["paths"]["/api/v1/accounts/{account_id}/"]["get"]["parameters"]
    assert parameter["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
