"""The customer marketplace API, as the schema run (tests/test_api_schema.py) found it: an
app or plan named by a "digit" that is no id (a superscript two: str.isdigit() says yes,
int() refuses) is refused under its field, where it answered 500; so is a number past
the largest id. Cancel, uninstall and refund answer only their own method, where they
also answered the installation's GET and PATCH."""

import pytest

from marketplace import services
from marketplace.models import Installation

from .conftest import plan_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(api_client, owner):
    api_client.force_authenticate(owner)
    return api_client


@pytest.mark.parametrize("ref", ["²", str(2**63), "9" * 30])
def test_an_app_named_by_a_number_that_is_no_id_is_refused_under_app(api, account, make_app, ref):
    make_app("digest", "free")
    response = api.post(
        f"/api/v1/accounts/{account.pk}/installations/", {"app": ref}, format="json"
    )
    assert response.status_code == 400, response.content[:300]
    assert "no published app" in response.json()["app"][0]
    assert not Installation.objects.exists()


@pytest.mark.parametrize("ref", ["²", str(2**63)])
def test_a_plan_named_by_a_number_that_is_no_id_is_refused_under_plan(api, account, make_app, ref):
    app = make_app("digest", "free")
    response = api.post(
        f"/api/v1/accounts/{account.pk}/installations/",
        {"app": app.slug, "plan": ref},
        format="json",
    )
    assert response.status_code == 400, response.content[:300]
    assert "has no plan" in response.json()["plan"][0]


def test_an_app_and_plan_named_by_their_ids_still_install(api, account, make_app):
    app = make_app("digest", "free")
    response = api.post(
        f"/api/v1/accounts/{account.pk}/installations/",
        {"app": str(app.pk), "plan": str(plan_of(app).pk)},
        format="json",
    )
    assert response.status_code == 201, response.content[:300]
    assert response.json()["installation"]["app"] == "digest"


def test_cancel_uninstall_and_refund_answer_their_own_method_only(api, owner, account, make_app):
    app = make_app("digest", "subscription", "30", trial_days=14)
    inst = services.installation_install(
        actor=owner, account=account, app=app, plan=plan_of(app)
    ).installation
    base = f"/api/v1/accounts/{account.pk}/installations/{inst.pk}"
    for action in ("cancel", "uninstall", "refund"):
        patched = api.patch(f"{base}/{action}/", {"usage_cap": "5.00"}, format="json")
        assert patched.status_code == 405, (action, patched.status_code)
    for action in ("cancel", "uninstall"):
        assert api.get(f"{base}/{action}/").status_code == 405
    assert api.get(f"{base}/refund/").status_code == 200
    assert api.post(f"{base}/refund/").status_code == 405
    after = Installation.objects.get(pk=inst.pk)
    assert (after.state, after.usage_cap) == (inst.state, inst.usage_cap)
