"""The developer API: an app's own secret, usage with an Idempotency-Key, the customer's
cap, and an installation's licence. Another app's installation answers 404."""

from decimal import Decimal

import pytest
from django.core import mail

from billing.models import UsageRecord
from marketplace import services
from marketplace.models import AppUsage

from .conftest import plan_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def usage_app(make_app, staff):
    app = make_app("sms", "usage", "0.05", unit_name="message")
    return app, services.app_api_key_rotate(actor=staff, app=app)


@pytest.fixture
def installed(usage_app, owner, account):
    app, secret = usage_app
    outcome = services.installation_install(
        actor=owner, account=account, app=app, plan=plan_of(app), usage_cap="1.00"
    )
    return outcome.installation, secret


def report(client, secret, inst_id, quantity, key="k-1"):
    return client.post(
        f"/api/v1/developer/installations/{inst_id}/usage/",
        {"quantity": quantity},
        format="json",
        headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": key},
    )


def test_the_same_key_twice_is_one_record(api_client, installed):
    inst, secret = installed
    first = report(api_client, secret, inst.pk, 4)
    again = report(api_client, secret, inst.pk, 4)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert AppUsage.objects.count() == 1 and UsageRecord.objects.count() == 1
    inst.refresh_from_db()
    assert inst.usage_units == 4 and inst.usage_amount == Decimal("0.20")
    changed = report(api_client, secret, inst.pk, 5)
    assert changed.status_code == 400
    assert "Idempotency-Key" in changed.json()


def test_a_key_is_required(api_client, installed):
    inst, secret = installed
    response = api_client.post(
        f"/api/v1/developer/installations/{inst.pk}/usage/",
        {"quantity": 1},
        format="json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()


def test_use_beyond_the_cap_is_refused_and_the_customer_mailed(
    api_client, installed, django_capture_on_commit_callbacks
):
    inst, secret = installed  # cap 1.00 at 0.05 a message: 20 messages
    with django_capture_on_commit_callbacks(execute=True):
        assert report(api_client, secret, inst.pk, 16, "a").status_code == 201  # 80%
        assert report(api_client, secret, inst.pk, 4, "b").status_code == 201  # 100%
    refused = report(api_client, secret, inst.pk, 1, "c")
    assert refused.status_code == 402
    assert "cap" in refused.json()["quantity"][0]
    subjects = [m.subject for m in mail.outbox]
    assert any("80%" in s for s in subjects) and any("100%" in s for s in subjects)
    inst.refresh_from_db()
    assert inst.usage_amount == Decimal("1.00")


def test_the_customer_raises_the_cap_but_never_below_this_months_use(
    api_client, installed, owner, account
):
    inst, secret = installed
    report(api_client, secret, inst.pk, 10)
    api_client.force_authenticate(owner)
    url = f"/api/v1/accounts/{account.pk}/installations/{inst.pk}/"
    too_low = api_client.patch(url, {"usage_cap": "0.10"}, format="json")
    assert too_low.status_code == 400 and "usage_cap" in too_low.json()
    assert api_client.patch(url, {"usage_cap": "5.00"}, format="json").status_code == 200
    api_client.force_authenticate(None)
    assert report(api_client, secret, inst.pk, 30, "more").status_code == 201


def test_licence_read_and_other_apps_get_404(api_client, installed, make_app, staff):
    inst, secret = installed
    response = api_client.get(
        f"/api/v1/developer/installations/{inst.pk}/", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 200
    data = response.json()
    assert data["state"] == "active" and data["active"] is True
    assert data["plan"]["pricing_model"] == "usage"
    assert data["scopes"] == ["contacts:read"]
    other = make_app("other", "free")
    other_secret = services.app_api_key_rotate(actor=staff, app=other)
    for path in (f"{inst.pk}/", f"{inst.pk}/usage/"):
        url = f"/api/v1/developer/installations/{path}"
        answer = (
            api_client.get(url, headers={"Authorization": f"Bearer {other_secret}"})
            if path.endswith("/") and "usage" not in path
            else report(api_client, other_secret, inst.pk, 1)
        )
        assert answer.status_code == 404


def test_customer_tokens_and_bad_secrets_are_refused(api_client, installed, owner):
    inst, _secret = installed
    url = f"/api/v1/developer/installations/{inst.pk}/"
    assert api_client.get(url, headers={"Authorization": "Bearer mkp_nope_nope"}).status_code == 401
    assert api_client.get(url).status_code == 401
    api_client.force_authenticate(owner)  # a customer's session is not an app
    assert api_client.get(url).status_code in (401, 403)


def test_a_cancelled_installation_records_no_use(api_client, installed, owner):
    inst, secret = installed
    services.installation_cancel(actor=owner, installation=inst)
    response = report(api_client, secret, inst.pk, 1)
    assert response.status_code == 400
    assert "cancelled" in response.json()["installation"][0]
